"""Schedules: cron or preset -> a built-in timetable, and FastTrack's maximum repetition count -> ``end_date``.

The count is turned into the logical date of the last allowed scheduled run, so the DAG serialises with a
built-in timetable and needs no plugin: the scheduler stops creating runs after ``end_date`` by itself.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pendulum

from airflow_provider_fasttrack.pipeline.validate import CRON_PRESETS, UNTIMED_PRESETS

if TYPE_CHECKING:
    from pendulum import DateTime

__all__ = ["aware", "last_run_date", "timetable_for"]


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
