"""What one Backend.AI session used, and what a pipeline run used in total.

A session task pushes one :class:`SessionUsage` (as JSON) under the XCom key :data:`USAGE_XCOM_KEY` when it ends;
the run's summary (Slack, the ``fasttrack`` CLI, the FastTrack view) is :class:`RunUsage` built from those.

Times come from the manager's status history: *queued* is created -> scheduled (waiting for resources),
*preparing* scheduled -> running (image pull, container start), *running* running -> terminating/terminated.
Resource-hours are the occupied slots (summed over the session's kernels) times the running time;
accelerator slots (``*.shares`` fractional GPUs, ``*.device`` whole ones) count as GPU-hours.
Statistics are Backend.AI's own lifetime figures of each kernel (``stats.max`` / ``stats.avg``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "USAGE_XCOM_KEY",
    "MetricStat",
    "RunUsage",
    "SessionUsage",
    "build_run_usage",
    "run_usage_from_xcom",
    "session_usage_from_xcom",
    "task_upstreams",
]

#: the XCom key a session task's usage is pushed under
USAGE_XCOM_KEY = "backendai_usage"


class MetricStat(BaseModel):
    """One lifetime metric of a session (over its kernels): peak and mean, in ``unit``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: str
    peak: float | None = None
    mean: float | None = None


class SessionUsage(BaseModel):
    """What one session used, read from the manager once the session has ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: str
    map_index: int = -1
    session_id: str
    session_name: str
    status: str
    result: str | None = None
    created_at: dt.datetime
    scheduled_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    queued_seconds: float | None = None
    preparing_seconds: float | None = None
    running_seconds: float | None = None
    #: occupied slots summed over the session's kernels, as Backend.AI names them (``cpu``, ``mem`` in bytes, ...)
    occupied_slots: dict[str, float] = {}
    gpu_hours: float = 0.0
    cpu_core_hours: float = 0.0
    #: lifetime statistics by Backend.AI metric name (``cpu_util``, ``mem``, ``cuda_util``, ``cuda_mem``, ...)
    stats: dict[str, MetricStat] = {}


class RunUsage(BaseModel):
    """A pipeline run's sessions and their totals."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dag_id: str
    run_id: str
    sessions: list[SessionUsage]
    gpu_hours: float
    cpu_core_hours: float
    queued_seconds: float
    #: first session created -> last session ended
    wall_seconds: float | None
    #: task ids of the longest chain of dependent sessions, by created -> ended
    critical_path: list[str]
    critical_path_seconds: float | None


def session_usage_from_xcom(value: Any, *, task_id: str) -> SessionUsage:
    """A :class:`SessionUsage` from the value of a ``backendai_usage`` XCom (a JSON object or its text).

    Raises ``ValueError`` naming the task that pushed it when the value is not a session's usage.
    """
    try:
        if isinstance(value, str | bytes):
            return SessionUsage.model_validate_json(value)
        return SessionUsage.model_validate(value)
    except (ValidationError, json.JSONDecodeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        field = ".".join(str(part) for part in first["loc"]) or "value"
        raise ValueError(
            f"task {task_id}: the {USAGE_XCOM_KEY} XCom is not a session's usage ({field}: {first['msg']})"
        ) from None


def task_upstreams(dag: Any) -> dict[str, set[str]]:
    """Each task's direct upstream task ids, for a DAG (authored or serialized)."""
    return {task.task_id: set(task.upstream_task_ids) for task in dag.tasks}


def run_usage_from_xcom(ti: Any, dag: Any, run_id: str) -> RunUsage:
    """The usage of ``ti``'s run from every task's ``backendai_usage`` XComs (map indexes included), read with
    ``ti.xcom_pull`` as a task or a DAG callback reads them."""
    sessions = []
    for task_id in dag.task_ids:
        values = ti.xcom_pull(task_ids=[task_id], key=USAGE_XCOM_KEY) or []
        sessions += [session_usage_from_xcom(v, task_id=task_id) for v in values if v is not None]
    return build_run_usage(dag.dag_id, run_id, sessions, task_upstreams(dag))


def build_run_usage(
    dag_id: str,
    run_id: str,
    sessions: Iterable[SessionUsage],
    upstreams: Mapping[str, Iterable[str]],
) -> RunUsage:
    """A run's :class:`RunUsage` from its sessions' usage and the DAG's task dependencies.

    A session reported twice (the same ``session_id``) counts once. The totals add up every session's GPU-hours,
    CPU-core-hours and queued time. The wall time runs from the first session's creation to the last session's
    end.

    The critical path is the chain of session tasks, each downstream of the one before (directly or through tasks
    without sessions), whose spans add up to the most time. A task's span runs from its first session's creation
    to its last session's end (a mapped task's instances together); time between the tasks of the chain (Airflow
    scheduling, tasks without sessions) is not counted, so the path is never longer than the wall time. A task
    whose sessions have no end time yet is not on any path.
    """
    unique: dict[str, SessionUsage] = {}
    for usage in sessions:
        unique.setdefault(usage.session_id, usage)
    ordered = sorted(unique.values(), key=lambda u: (u.created_at, u.task_id, u.map_index))
    ended = [u.ended_at for u in ordered if u.ended_at is not None]
    wall = (max(ended) - min(u.created_at for u in ordered)).total_seconds() if ended else None
    path, path_seconds = _critical_path(ordered, upstreams)
    return RunUsage(
        dag_id=dag_id,
        run_id=run_id,
        sessions=ordered,
        gpu_hours=sum(u.gpu_hours for u in ordered),
        cpu_core_hours=sum(u.cpu_core_hours for u in ordered),
        queued_seconds=sum(u.queued_seconds or 0.0 for u in ordered),
        wall_seconds=wall,
        critical_path=path,
        critical_path_seconds=path_seconds,
    )


def _critical_path(
    sessions: list[SessionUsage], upstreams: Mapping[str, Iterable[str]]
) -> tuple[list[str], float | None]:
    spans: dict[str, tuple[dt.datetime, dt.datetime]] = {}
    for usage in sessions:
        if usage.ended_at is None:
            continue
        start, end = spans.get(usage.task_id, (usage.created_at, usage.ended_at))
        spans[usage.task_id] = (min(start, usage.created_at), max(end, usage.ended_at))
    if not spans:
        return [], None
    ancestors = {task: _ancestors(task, upstreams) & spans.keys() for task in spans}
    # an ancestor has fewer ancestors than its descendants: this order is topological
    longest: dict[str, tuple[float, list[str]]] = {}
    for task in sorted(spans, key=lambda t: (len(ancestors[t]), spans[t][0], t)):
        start, end = spans[task]
        own = max((end - start).total_seconds(), 0.0)
        before = max((longest[a] for a in ancestors[task]), key=lambda item: item[0], default=(0.0, []))
        longest[task] = (before[0] + own, [*before[1], task])
    seconds, path = max(longest.values(), key=lambda item: item[0])
    return path, seconds


def _ancestors(task: str, upstreams: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(upstreams.get(task, ()))
    while stack:
        current = stack.pop()
        if current not in seen and current != task:
            seen.add(current)
            stack.extend(upstreams.get(current, ()))
    return seen
