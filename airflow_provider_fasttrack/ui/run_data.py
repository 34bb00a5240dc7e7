"""What the FastTrack view shows of a DAG run, read from Airflow's database: the session tasks' usage and where
their outputs are (the XComs that session tasks push)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_provider_fasttrack.artifacts import ARTIFACTS_XCOM_KEY
from airflow_provider_fasttrack.usage import USAGE_XCOM_KEY, RunUsage, SessionUsage

__all__ = ["RunRecords", "TaskOutputs", "read_run", "run_usage"]


@dataclass(frozen=True)
class TaskOutputs:
    """A session task's output folder in its pipeline vfolder."""

    task_id: str
    conn_id: str
    vfolder: str
    folder: str


@dataclass(frozen=True)
class RunRecords:
    """A run's usage records, output folders (by task id) and the records that could not be read."""

    sessions: list[SessionUsage]
    outputs: dict[str, TaskOutputs]
    unreadable: list[str]


def _xcoms(session: Session, dag_id: str, run_id: str, key: str) -> list[tuple[str, int, Any]]:
    from airflow.models.xcom import XComModel

    rows = session.execute(
        select(XComModel.task_id, XComModel.map_index, XComModel.value)
        .where(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == key)
        .order_by(XComModel.task_id, XComModel.map_index)
    ).all()
    return [(row.task_id, row.map_index, XComModel.deserialize_value(row)) for row in rows]


def _usage(value: Any) -> SessionUsage:
    if isinstance(value, str | bytes):
        return SessionUsage.model_validate_json(value)
    return SessionUsage.model_validate(value)


def _outputs(task_id: str, value: Any) -> TaskOutputs:
    if not isinstance(value, dict) or not all(
        isinstance(value.get(k), str) for k in ("conn_id", "vfolder", "folder")
    ):
        raise ValueError("not a {conn_id, vfolder, folder} mapping")
    return TaskOutputs(task_id, value["conn_id"], value["vfolder"], value["folder"])


def read_run(session: Session, dag_id: str, run_id: str) -> RunRecords:
    """The run's usage and output XComs; a value that does not parse is named in ``unreadable``, not shown."""
    sessions: list[SessionUsage] = []
    outputs: dict[str, TaskOutputs] = {}
    unreadable: list[str] = []
    for task_id, map_index, value in _xcoms(session, dag_id, run_id, USAGE_XCOM_KEY):
        try:
            sessions.append(_usage(value))
        except (ValidationError, ValueError, TypeError):
            unreadable.append(f"{task_id}[{map_index}]: {USAGE_XCOM_KEY}")
    for task_id, map_index, value in _xcoms(session, dag_id, run_id, ARTIFACTS_XCOM_KEY):
        try:
            outputs[task_id] = _outputs(task_id, value)
        except ValueError:
            unreadable.append(f"{task_id}[{map_index}]: {ARTIFACTS_XCOM_KEY}")
    sessions.sort(key=lambda s: (s.created_at, s.task_id, s.map_index))
    return RunRecords(sessions, outputs, unreadable)


def run_usage(dag_id: str, run_id: str, sessions: list[SessionUsage]) -> RunUsage:
    """The run's totals over its sessions (no critical path: ``critical_path`` is left empty)."""
    ends = [s.ended_at for s in sessions if s.ended_at is not None]
    wall = (max(ends) - min(s.created_at for s in sessions)).total_seconds() if ends else None
    return RunUsage(
        dag_id=dag_id,
        run_id=run_id,
        sessions=sessions,
        gpu_hours=sum(s.gpu_hours for s in sessions),
        cpu_core_hours=sum(s.cpu_core_hours for s in sessions),
        queued_seconds=sum(s.queued_seconds or 0.0 for s in sessions),
        wall_seconds=wall,
        critical_path=[],
        critical_path_seconds=None,
    )
