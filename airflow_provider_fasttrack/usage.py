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

from pydantic import BaseModel, ConfigDict

__all__ = ["USAGE_XCOM_KEY", "MetricStat", "RunUsage", "SessionUsage"]

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
