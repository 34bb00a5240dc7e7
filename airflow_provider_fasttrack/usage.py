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
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict

from airflow_provider_fasttrack import slots as slotlib

__all__ = ["USAGE_XCOM_KEY", "MetricStat", "RunUsage", "SessionUsage", "format_usage", "session_usage"]

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
