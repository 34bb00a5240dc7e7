"""What the FastTrack view shows of a DAG run, read from Airflow's database: the session tasks' usage and where
their outputs are (the XComs that session tasks push)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from airflow_provider_fasttrack.artifacts import ARTIFACTS_XCOM_KEY
from airflow_provider_fasttrack.usage import (
    USAGE_XCOM_KEY,
    RunUsage,
    build_run_usage,
    session_usage_from_xcom,
)
from airflow_provider_fasttrack.usage_db import run_upstreams, run_xcoms

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

__all__ = ["RunRecords", "TaskOutputs", "read_outputs", "read_run"]


@dataclass(frozen=True)
class TaskOutputs:
    """A session task's output folder in its pipeline vfolder."""

    task_id: str
    conn_id: str
    vfolder: str
    folder: str


@dataclass(frozen=True)
class RunRecords:
    """A run's usage, output folders (by task id) and the records that could not be read."""

    usage: RunUsage
    outputs: dict[str, TaskOutputs]
    unreadable: list[str]


def _outputs(task_id: str, value: Any) -> TaskOutputs:
    if not isinstance(value, dict) or not all(
        isinstance(value.get(k), str) for k in ("conn_id", "vfolder", "folder")
    ):
        raise ValueError("not a {conn_id, vfolder, folder} mapping")
    return TaskOutputs(task_id, value["conn_id"], value["vfolder"], value["folder"])


def read_outputs(session: Session, dag_run: DagRun) -> tuple[dict[str, TaskOutputs], list[str]]:
    """The run's output folders by task id, and the names of the output XComs that do not parse."""
    outputs: dict[str, TaskOutputs] = {}
    unreadable: list[str] = []
    for task_id, map_index, value in run_xcoms(session, dag_run, ARTIFACTS_XCOM_KEY):
        try:
            outputs[task_id] = _outputs(task_id, value)
        except ValueError:
            unreadable.append(f"{task_id}[{map_index}]: {ARTIFACTS_XCOM_KEY}")
    return outputs, unreadable


def read_run(session: Session, dag_run: DagRun) -> RunRecords:
    """The run's usage (critical path from the DAG version the run used) and output folders; a value that does not
    parse is named in ``unreadable``, not shown."""
    sessions = []
    unreadable: list[str] = []
    for task_id, map_index, value in run_xcoms(session, dag_run, USAGE_XCOM_KEY):
        try:
            sessions.append(session_usage_from_xcom(value, task_id=task_id))
        except ValueError:
            unreadable.append(f"{task_id}[{map_index}]: {USAGE_XCOM_KEY}")
    usage = build_run_usage(dag_run.dag_id, dag_run.run_id, sessions, run_upstreams(session, dag_run))
    outputs, unreadable_outputs = read_outputs(session, dag_run)
    return RunRecords(usage, outputs, unreadable + unreadable_outputs)
