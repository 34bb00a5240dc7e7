"""Session usage as a session task reports it, built in tests from backendai-lite's own record of the session.

A task of a test DAG reads a finished session's ``compute_session`` from lite's GraphQL and pushes the
:class:`~airflow_provider_fasttrack.usage.SessionUsage` under ``backendai_usage``, as a session task does.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from airflow_provider_fasttrack.usage import USAGE_XCOM_KEY, MetricStat, SessionUsage

USAGE_QUERY = (
    "query($id: UUID!) { compute_session(id: $id) { id name status result occupied_slots created_at "
    "scheduled_at starts_at terminated_at } }"
)


def _time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def usage_from_compute_session(task_id: str, node: dict[str, Any], map_index: int = -1) -> SessionUsage:
    """A session's usage from its ``compute_session`` fields (slots as numbers, hours of the running time)."""
    created, scheduled = _time(node["created_at"]), _time(node["scheduled_at"])
    started, ended = _time(node["starts_at"]), _time(node["terminated_at"])
    slots = {name: float(value) for name, value in json.loads(node["occupied_slots"] or "{}").items()}
    running = _between(started, ended) or 0.0
    gpus = sum(v for k, v in slots.items() if k.endswith((".shares", ".device")))
    assert created is not None
    return SessionUsage(
        task_id=task_id,
        map_index=map_index,
        session_id=node["id"],
        session_name=node["name"],
        status=node["status"],
        result=node["result"],
        created_at=created,
        scheduled_at=scheduled,
        started_at=started,
        ended_at=ended,
        queued_seconds=_between(created, scheduled),
        preparing_seconds=_between(scheduled, started),
        running_seconds=running,
        occupied_slots=slots,
        gpu_hours=gpus * running / 3600,
        cpu_core_hours=slots.get("cpu", 0.0) * running / 3600,
        stats={"mem": MetricStat(unit="bytes", peak=slots.get("mem"))},
    )


def push_session_usage(session_task_id: str, **context: Any) -> None:
    """Push the usage of ``session_task_id``'s session (a PythonOperator callable, downstream of that task)."""
    from airflow_provider_fasttrack.hooks.backendai import ADMIN_GQL, BackendAIHook

    ti = context["ti"]
    session_id = ti.xcom_pull(task_ids=session_task_id, key="session_id")
    hook = BackendAIHook()
    try:
        data = hook._call(ADMIN_GQL, json={"query": USAGE_QUERY, "variables": {"id": session_id}})
    finally:
        hook.close()
    usage = usage_from_compute_session(session_task_id, data["data"]["compute_session"])
    ti.xcom_push(key=USAGE_XCOM_KEY, value=usage.model_dump(mode="json"))
