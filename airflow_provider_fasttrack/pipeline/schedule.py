"""Schedules: cron or preset -> a built-in timetable, and FastTrack's maximum repetition count -> ``end_date``.

The count is turned into the logical date of the last allowed scheduled run, so the DAG serialises with a
built-in timetable and needs no plugin: the scheduler stops creating runs after ``end_date`` by itself.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pendulum

if TYPE_CHECKING:
    from pendulum import DateTime

__all__ = ["CRON_PRESETS", "UNTIMED_PRESETS", "aware", "last_run_date", "schedule_problem", "timetable_for"]

#: Presets that stand for a cron expression.
CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}
#: Presets without a time of day: one run, or one run after another.
UNTIMED_PRESETS = {"@once", "@continuous"}


def schedule_problem(schedule: str) -> str | None:
    """Why ``schedule`` is not a cron expression or preset, or ``None`` when it is one."""
    if schedule in UNTIMED_PRESETS or schedule in CRON_PRESETS:
        return None
    if schedule.startswith("@"):
        presets = ", ".join(sorted([*CRON_PRESETS, *UNTIMED_PRESETS]))
        return f"{schedule!r} is not a schedule preset ({presets})"
    from croniter import croniter

    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        return f"{schedule!r} is not a cron expression (minute hour day month weekday, e.g. '0 3 * * *')"
    return None


def aware(value: dt.datetime | None, timezone: str) -> DateTime | None:
    """``value`` in ``timezone`` when it carries none."""
    if value is None:
        return None
    if value.tzinfo is None:
        return pendulum.instance(value, tz=pendulum.timezone(timezone))
    return pendulum.instance(value)


def timetable_for(schedule: str | None, timezone: str) -> Any:
    """The ``schedule`` argument of the DAG: ``None``, ``@once``/``@continuous``, or a cron trigger timetable."""
    if schedule is None or schedule in UNTIMED_PRESETS:
        return schedule
    from airflow.sdk.definitions.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(CRON_PRESETS.get(schedule, schedule), timezone=timezone)


def last_run_date(schedule: str, start_date: dt.datetime, timezone: str, max_runs: int) -> DateTime:
    """The logical date of scheduled run number ``max_runs`` counted from ``start_date`` (inclusive)."""
    from airflow.timetables.base import DagRunInfo, TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    timetable = CronTriggerTimetable(
        CRON_PRESETS.get(schedule, schedule), timezone=pendulum.timezone(timezone)
    )
    restriction = TimeRestriction(earliest=aware(start_date, timezone), latest=None, catchup=True)
    info: DagRunInfo | None = None
    for _ in range(max_runs):
        info = timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
        if info is None:  # pragma: no cover - a cron timetable without latest never ends
            break
    assert info is not None
    return info.run_after
