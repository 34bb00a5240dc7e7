"""The provider's section of the Airflow configuration, ``[fasttrack]``, and how its values are read."""

from __future__ import annotations

__all__ = ["CONFIG_SECTION", "DEFAULT_RESUME_GRACE_SECONDS", "RESUME_GRACE_OPTION", "configured_seconds"]

CONFIG_SECTION = "fasttrack"

#: the least time between a deferral and the trigger's event (``[fasttrack] resume_grace``). Airflow's scheduler
#: (3.3) fails a task instance whose deferring worker's exit ("success") it processes only after the resumed try
#: is already queued or running (it forgives only the still-scheduled case), so an event fired within seconds of
#: the deferral can fail a task whose session ended quickly. Waiting a few seconds lets the scheduler see the exit
#: first. Where no scheduler runs (``dag.test()``, ``airflow dags test``) it can be 0.
DEFAULT_RESUME_GRACE_SECONDS = 6.0
RESUME_GRACE_OPTION = "resume_grace"


def configured_seconds(option: str, default: float) -> float:
    """``[fasttrack] <option>`` as seconds (``default`` when unset, 0 when empty); a clear error if not a number."""
    from airflow.configuration import conf

    value = conf.get(CONFIG_SECTION, option, fallback=f"{default:g}").strip()
    try:
        seconds = float(value) if value else 0.0
    except ValueError:
        raise ValueError(f"[{CONFIG_SECTION}] {option} = {value!r} is not a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"[{CONFIG_SECTION}] {option} = {value!r} is not a number of seconds")
    return seconds
