"""Pipeline runs' usage read from Airflow's metadata database, through Airflow's own models.

This is how the ``airflow`` command reads runs: on a machine with the deployment's Airflow configuration
(``AIRFLOW_HOME``, ``[database] sql_alchemy_conn``), with no API server, token or user account involved. Each
session task's :class:`~airflow_provider_fasttrack.usage.SessionUsage` is its ``backendai_usage`` XCom; the task
dependencies are those of the DAG version the run used. The FastTrack view reads a run's XComs and dependencies
with the same functions.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_provider_fasttrack.usage import (
    USAGE_XCOM_KEY,
    RunUsage,
    build_run_usage,
    session_usage_from_xcom,
    task_upstreams,
)

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun
    from sqlalchemy.orm import Session

__all__ = ["RunSummary", "XComRecord", "recent_runs", "run_counts", "run_upstreams", "run_usage", "run_xcoms"]


class XComRecord(NamedTuple):
    """One XCom of a run: the task (and map index) that pushed it and its deserialized value."""

    task_id: str
    map_index: int
    value: Any


@dataclass(frozen=True)
class RunSummary:
    """One run of a pipeline: its Airflow state and times, and what its sessions used."""

    run_id: str
    state: str
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    usage: RunUsage

    @property
    def duration_seconds(self) -> float | None:
        if self.start_date is None or self.end_date is None:
            return None
        return (self.end_date - self.start_date).total_seconds()


def run_usage(dag_id: str, run_id: str) -> RunUsage:
    """The usage of one run; ``LookupError`` when the run is not in the database."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            raise LookupError(f"no run {run_id!r} of DAG {dag_id!r} in the Airflow database")
        return _usage_of(dag_run, session)


def recent_runs(dag_id: str, last: int) -> list[RunSummary]:
    """The ``last`` most recent runs of a pipeline, newest first."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        runs = session.scalars(
            select(DagRun)
            .where(DagRun.dag_id == dag_id)
            .order_by(DagRun.run_after.desc(), DagRun.id.desc())
            .limit(last)
        ).all()
        return [
            RunSummary(
                run_id=run.run_id,
                state=str(run.state),
                start_date=run.start_date,
                end_date=run.end_date,
                usage=_usage_of(run, session),
            )
            for run in runs
        ]


def run_counts(dag_id: str) -> dict[str, int]:
    """How many runs of a pipeline ended (or stand) in each state."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        rows = session.execute(
            select(DagRun.state, func.count()).where(DagRun.dag_id == dag_id).group_by(DagRun.state)
        ).all()
    counts = Counter({str(state): int(count) for state, count in rows})
    return dict(counts.most_common())


def run_xcoms(session: Session, dag_run: DagRun, key: str) -> list[XComRecord]:
    """Every XCom of the run under ``key`` (map indexes included), by task id and map index."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    rows = session.scalars(
        select(XComModel)
        .where(XComModel.dag_run_id == dag_run.id, XComModel.key == key)
        .order_by(XComModel.task_id, XComModel.map_index)
    ).all()
    return [XComRecord(row.task_id, row.map_index, XComModel.deserialize_value(row)) for row in rows]


def run_upstreams(session: Session, dag_run: DagRun) -> dict[str, set[str]]:
    """Each task's direct upstream task ids in the DAG version the run used (none when it is not stored)."""
    from airflow.models.dagbag import DBDagBag

    dag = DBDagBag().get_dag_for_run(dag_run, session=session)
    return task_upstreams(dag) if dag is not None else {}


def _usage_of(dag_run: DagRun, session: Session) -> RunUsage:
    sessions = [
        session_usage_from_xcom(record.value, task_id=record.task_id)
        for record in run_xcoms(session, dag_run, USAGE_XCOM_KEY)
    ]
    return build_run_usage(dag_run.dag_id, dag_run.run_id, sessions, run_upstreams(session, dag_run))
