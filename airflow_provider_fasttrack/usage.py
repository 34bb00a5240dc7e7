"""What one Backend.AI session used, and what a pipeline run used in total.

A session task pushes one :class:`SessionUsage` (as JSON) under the XCom key :data:`USAGE_XCOM_KEY` when it ends;
the run's summary (Slack, the ``fasttrack`` CLI, the FastTrack view) is :class:`RunUsage` built from those.

Times come from the manager's status history: *queued* is created -> scheduled (waiting for resources),
*preparing* scheduled -> running (image pull, container start), *running* running -> terminating/terminated.
Resource-hours are the occupied slots (summed over the session's kernels) times the running time;
accelerator slots (``*.shares`` fractional GPUs, ``*.device`` whole ones) count as GPU-hours.
Statistics are Backend.AI's own lifetime figures of each kernel (``stats.max`` / ``stats.avg``).

:func:`session_usage` reads all of it from one GraphQL ``compute_session`` answer
(``BackendAIHook.get_session_usage``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_provider_fasttrack import slots as slotlib

__all__ = [
    "USAGE_XCOM_KEY",
    "MetricStat",
    "RunUsage",
    "SessionUsage",
    "build_run_usage",
    "format_usage",
    "run_usage_from_xcom",
    "session_usage",
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
    #: occupied slots summed over the session's kernels, as Backend.AI names them (``cpu``, ``mem`` in bytes, ...);
    #: the requested slots where the manager has already released the allocation (it does at termination)
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


def _json(value: Any, field: str) -> Any:
    """A GraphQL ``JSONString`` field (graphene sends it as a string), decoded; ``None`` stays ``None``."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value else None
        except ValueError:
            raise ValueError(f"compute_session.{field} is not JSON: {value[:80]!r}") from None
    return value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    decoded = _json(value, field)
    if decoded is None:
        return {}
    if not isinstance(decoded, Mapping):
        raise ValueError(f"compute_session.{field} is not a JSON object: {str(decoded)[:80]}")
    return decoded


def _time(value: Any, field: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"compute_session.{field} is not an ISO 8601 time: {str(value)[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _seconds(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return max((end - start).total_seconds(), 0.0) if start and end else None


def _slots(value: Any, field: str) -> slotlib.Slots:
    try:
        return slotlib.parse_slots(_mapping(value, field))
    except ValueError as error:
        raise ValueError(f"compute_session.{field}: {error}") from None


def _number(value: Any) -> float | None:
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return float(number) if number.is_finite() else None


def _stats(kernel_stats: list[Mapping[str, Any]]) -> dict[str, MetricStat]:
    """Per metric: the largest kernel peak (``stats.max``) and the mean of the kernels' means (``stats.avg``)."""
    peaks: dict[str, list[float]] = {}
    means: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for stats in kernel_stats:
        for name, metric in stats.items():
            if not isinstance(metric, Mapping):
                continue
            units.setdefault(str(name), str(metric.get("unit_hint") or ""))
            for key, found in (("stats.max", peaks), ("stats.avg", means)):
                number = _number(metric.get(key))
                found.setdefault(str(name), [])
                if number is not None:
                    found[str(name)].append(number)
    return {
        name: MetricStat(
            unit=unit,
            peak=max(peaks[name]) if peaks[name] else None,
            mean=sum(means[name]) / len(means[name]) if means[name] else None,
        )
        for name, unit in sorted(units.items())
    }


def session_usage(node: Mapping[str, Any], *, task_id: str, map_index: int = -1) -> SessionUsage:
    """What a session used, from a ``compute_session`` node with ``id name status result created_at
    terminated_at status_history occupying_slots requested_slots containers { occupied_slots last_stat }``.

    A malformed field is a ``ValueError`` that names it.
    """
    history = _mapping(node.get("status_history"), "status_history")
    created = _time(node.get("created_at"), "created_at")
    if created is None:
        raise ValueError("compute_session.created_at is missing")
    scheduled = _time(history.get("SCHEDULED"), "status_history.SCHEDULED")
    started = _time(history.get("RUNNING"), "status_history.RUNNING")
    ended = _time(node.get("terminated_at"), "terminated_at") or next(
        (
            moment
            for status in ("TERMINATED", "CANCELLED")
            if (moment := _time(history.get(status), f"status_history.{status}"))
        ),
        None,
    )
    terminating = _time(history.get("TERMINATING"), "status_history.TERMINATING")
    stopped = min((t for t in (terminating, ended) if t and started and t >= started), default=None)
    running = _seconds(started, stopped)
    containers = [c for c in (node.get("containers") or []) if isinstance(c, Mapping)]
    occupied: slotlib.Slots = {}
    for container in containers:
        occupied = slotlib.add(occupied, _slots(container.get("occupied_slots"), "containers.occupied_slots"))
    for field in ("occupying_slots", "requested_slots"):  # the manager releases allocations at termination
        if any(occupied.values()):
            break
        occupied = _slots(node.get(field), field)
    held = {name: float(amount) for name, amount in sorted(occupied.items()) if amount}
    hours = (running or 0.0) / 3600
    gpus = sum(amount for name, amount in held.items() if slotlib.is_accelerator_slot(name))
    return SessionUsage(
        task_id=task_id,
        map_index=map_index,
        session_id=str(node.get("id") or ""),
        session_name=str(node.get("name") or ""),
        status=str(node.get("status") or "UNKNOWN"),
        result=node.get("result"),
        created_at=created,
        scheduled_at=scheduled,
        started_at=started,
        ended_at=ended,
        queued_seconds=_seconds(created, scheduled or (ended if started is None else None)),
        preparing_seconds=_seconds(scheduled, started or (ended if scheduled else None)),
        running_seconds=running,
        occupied_slots=held,
        gpu_hours=gpus * hours,
        cpu_core_hours=held.get("cpu", 0.0) * hours,
        stats=_stats([_mapping(c.get("last_stat"), "containers.last_stat") for c in containers]),
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else str(dt.timedelta(seconds=round(seconds)))


def format_usage(usage: SessionUsage) -> str:
    """One line for a task log: times, slots, resource-hours and peak memory."""
    slots = ", ".join(
        f"{name}={amount / 2**30:.3g}g" if slotlib.is_memory_slot(name) else f"{name}={amount:g}"
        for name, amount in usage.occupied_slots.items()
    )
    mem = usage.stats.get("mem")
    peak = f"{mem.peak / 2**20:.1f} MiB" if mem is not None and mem.peak is not None else "not reported"
    return (
        f"Backend.AI usage of session {usage.session_name} ({usage.session_id}): "
        f"queued {_duration(usage.queued_seconds)}, preparing {_duration(usage.preparing_seconds)}, "
        f"running {_duration(usage.running_seconds)}; slots {slots or '-'}; "
        f"{usage.gpu_hours:.4f} GPU-hours, {usage.cpu_core_hours:.4f} CPU-core-hours; peak memory {peak}"
    )
