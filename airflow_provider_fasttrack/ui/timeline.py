"""The run's sessions on one time axis: queued, preparing and running, drawn as SVG bars by the view's template.

Every number here is computed from the usage records' timestamps; the template only places them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from airflow_provider_fasttrack.usage import SessionUsage
from airflow_provider_fasttrack.usage_text import format_occupied_slots

__all__ = ["PHASES", "Row", "Segment", "Timeline", "timeline"]

#: the phases of a session, in order, and the class (colour) of their bars
PHASES = ("queued", "preparing", "running")
#: the drawing's width for the time axis, in SVG user units
WIDTH = 800.0


@dataclass(frozen=True)
class Segment:
    phase: str
    x: float
    width: float
    seconds: float


@dataclass(frozen=True)
class Row:
    label: str
    slots: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class Timeline:
    rows: tuple[Row, ...]
    seconds: float
    width: float = WIDTH


def _phases(usage: SessionUsage) -> list[tuple[str, dt.datetime, dt.datetime]]:
    marks = (usage.scheduled_at, usage.started_at, usage.ended_at)
    spans = []
    start = usage.created_at
    for phase, end in zip(PHASES, marks, strict=True):
        if end is None:
            continue
        if end > start:
            spans.append((phase, start, end))
        start = max(start, end)
    return spans


def timeline(sessions: list[SessionUsage]) -> Timeline:
    """One row per session, on an axis from the first session's creation to the last known time."""
    if not sessions:
        return Timeline(rows=(), seconds=0.0)
    origin = min(s.created_at for s in sessions)
    times = [t for s in sessions for t in (s.created_at, s.scheduled_at, s.started_at, s.ended_at) if t]
    total = max((max(times) - origin).total_seconds(), 1e-9)
    scale = WIDTH / total
    rows = []
    for usage in sessions:
        segments = tuple(
            Segment(
                phase,
                round((start - origin).total_seconds() * scale, 2),
                round(max((end - start).total_seconds() * scale, 0.5), 2),
                (end - start).total_seconds(),
            )
            for phase, start, end in _phases(usage)
        )
        label = usage.task_id if usage.map_index < 0 else f"{usage.task_id}[{usage.map_index}]"
        rows.append(Row(label, format_occupied_slots(usage.occupied_slots), segments))
    return Timeline(rows=tuple(rows), seconds=total)
