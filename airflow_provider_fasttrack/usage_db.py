"""Pipeline runs' usage read from Airflow's metadata database, through Airflow's own models.

This is how the ``airflow`` command reads runs: on a machine with the deployment's Airflow configuration
(``AIRFLOW_HOME``, ``[database] sql_alchemy_conn``), with no API server, token or user account involved. Each
session task's :class:`~airflow_provider_fasttrack.usage.SessionUsage` is its ``backendai_usage`` XCom; the task
dependencies are those of the DAG version the run used.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

__all__ = ["RunSummary", "recent_runs", "run_counts", "run_usage"]


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


def _usage_of(dag_run: DagRun, session: Session) -> RunUsage:
    from airflow.models.dagbag import DBDagBag
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    rows = session.scalars(
        select(XComModel)
        .where(XComModel.dag_run_id == dag_run.id, XComModel.key == USAGE_XCOM_KEY)
        .order_by(XComModel.task_id, XComModel.map_index)
    ).all()
    sessions = [
        session_usage_from_xcom(XComModel.deserialize_value(row), task_id=row.task_id) for row in rows
    ]
    dag = DBDagBag().get_dag_for_run(dag_run, session=session)
    upstreams = task_upstreams(dag) if dag is not None else {}
    return build_run_usage(dag_run.dag_id, dag_run.run_id, sessions, upstreams)
