"""The provider's section of the Airflow configuration, ``[fasttrack]``, and how its values are read."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CONFIG_SECTION",
    "DEFAULT_RECHECK_SECONDS",
    "DEFAULT_RESUME_GRACE_SECONDS",
    "PER_TASK_EVENTS",
    "RECHECK_INTERVAL_OPTION",
    "RESUME_GRACE_OPTION",
    "SESSION_EVENTS_MODES",
    "SESSION_EVENTS_OPTION",
    "SHARED_EVENTS",
    "configured_choice",
    "configured_seconds",
]

CONFIG_SECTION = "fasttrack"

#: the least time between a deferral and the trigger's event (``[fasttrack] resume_grace``). Airflow's scheduler
#: (3.3) fails a task instance whose deferring worker's exit ("success") it processes only after the resumed try
#: is already queued or running (it forgives only the still-scheduled case), so an event fired within seconds of
#: the deferral can fail a task whose session ended quickly. Waiting a few seconds lets the scheduler see the exit
#: first. The operator waits as long in the worker before deferring, so a session that ends by then never
#: defers. Where no scheduler runs (``dag.test()``, ``airflow dags test``) it can be 0.
DEFAULT_RESUME_GRACE_SECONDS = 6.0
RESUME_GRACE_OPTION = "resume_grace"

#: how waiting session triggers learn of events (``[fasttrack] session_events``): ``shared``, one event stream
#: per triggerer process and connection for all of them; ``per_task``, a stream per trigger and a state read
#: every ``poll_interval``
SESSION_EVENTS_OPTION = "session_events"
SHARED_EVENTS = "shared"
PER_TASK_EVENTS = "per_task"
SESSION_EVENTS_MODES = (SHARED_EVENTS, PER_TASK_EVENTS)

#: with shared events, seconds between state reads of a waiting session when no event came (±20 %)
DEFAULT_RECHECK_SECONDS = 60.0
RECHECK_INTERVAL_OPTION = "recheck_interval"


def _configured(option: str, default: str) -> str:
    from airflow.configuration import conf

    return str(conf.get(CONFIG_SECTION, option, fallback=default)).strip()


def configured_seconds(option: str, default: float) -> float:
    """``[fasttrack] <option>`` as seconds (``default`` when unset, 0 when empty); a clear error if not a number."""
    value = _configured(option, f"{default:g}")
    try:
        seconds = float(value) if value else 0.0
    except ValueError:
        raise ValueError(f"[{CONFIG_SECTION}] {option} = {value!r} is not a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"[{CONFIG_SECTION}] {option} = {value!r} is not a number of seconds")
    return seconds


def configured_choice(option: str, choices: Sequence[str]) -> str:
    """``[fasttrack] <option>``, one of ``choices`` (the first when unset or empty); a clear error otherwise."""
    value = _configured(option, choices[0]) or choices[0]
    if value not in choices:
        raise ValueError(f"[{CONFIG_SECTION}] {option} = {value!r} is not one of {', '.join(choices)}")
    return value
