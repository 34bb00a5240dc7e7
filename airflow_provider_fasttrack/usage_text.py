"""A pipeline run's usage as plain text: the one table that Slack, the ``fasttrack usage`` command and the demo show.

One row per session (``task`` or ``task[map index]``): queued, preparing and running time, occupied slots,
GPU-hours, CPU-core-hours and peak memory, then a totals row; :func:`totals_line` is the run in one line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from airflow_provider_fasttrack.slots import is_memory_slot
from airflow_provider_fasttrack.usage import RunUsage, SessionUsage

__all__ = [
    "aligned",
    "format_bytes",
    "format_hours",
    "format_occupied_slots",
    "format_seconds",
    "session_row",
    "totals_line",
    "usage_table",
]

HEADER = ("task", "queued", "preparing", "running", "slots", "GPU-h", "CPU-core-h", "peak mem")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_seconds(seconds: float | None) -> str:
    """``12s``, ``3m05s``, ``2h07m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_bytes(value: float | None) -> str:
    """``512.0 MiB``, ``1.5 GiB``; ``-`` when unknown."""
    if value is None:
        return "-"
    size, unit = float(value), 0
    while size >= 1024 and unit < len(_BINARY_UNITS) - 1:
        size, unit = size / 1024, unit + 1
    return f"{size:.0f} {_BINARY_UNITS[unit]}" if unit == 0 else f"{size:.1f} {_BINARY_UNITS[unit]}"


def format_hours(value: float) -> str:
    """Resource-hours, to the thousandth: ``0.485``."""
    return f"{value:.3f}"


def format_occupied_slots(slots: Mapping[str, float]) -> str:
    """A session's occupied slots as a person reads them: ``cpu=2 mem=4.0GiB cuda.shares=0.5``."""
    parts = []
    for name in sorted(slots, key=lambda n: (n != "cpu", n != "mem", n)):
        value = slots[name]
        text = format_bytes(value).replace(" ", "") if is_memory_slot(name) else f"{value:g}"
        parts.append(f"{name}={text}")
    return " ".join(parts) or "-"


def session_row(usage: SessionUsage) -> tuple[str, ...]:
    """One session's cells of the usage table, in the order of :data:`HEADER`."""
    label = usage.task_id if usage.map_index < 0 else f"{usage.task_id}[{usage.map_index}]"
    mem = usage.stats.get("mem")
    return (
        label,
        format_seconds(usage.queued_seconds),
        format_seconds(usage.preparing_seconds),
        format_seconds(usage.running_seconds),
        format_occupied_slots(usage.occupied_slots),
        format_hours(usage.gpu_hours),
        format_hours(usage.cpu_core_hours),
        format_bytes(mem.peak) if mem is not None and mem.unit == "bytes" else "-",
    )


def aligned(rows: Sequence[Sequence[str]], *, left: Sequence[int] = (0,)) -> list[str]:
    """Rows of cells as lines of aligned columns: the ``left`` columns flush left, the others flush right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
    return [
        "  ".join(
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def usage_table(run: RunUsage, *, max_rows: int | None = None) -> list[str]:
    """The table's lines: a header, one row per session (the first ``max_rows`` of them), a totals row.

    Rows left out are counted in a line before the totals, which cover every session.
    """
    shown = run.sessions if max_rows is None else run.sessions[: max(max_rows, 0)]
    rows: list[Sequence[str]] = [HEADER, *(session_row(u) for u in shown)]
    total = (
        "total",
        format_seconds(run.queued_seconds),
        "",
        "",
        "",
        format_hours(run.gpu_hours),
        format_hours(run.cpu_core_hours),
        "",
    )
    *lines, total_row = aligned([*rows, total], left=(0, 4))
    hidden = len(run.sessions) - len(shown)
    if hidden:
        lines.append(f"... {hidden} more session{'s' if hidden != 1 else ''} not shown")
    lines.append(total_row)
    return lines


def totals_line(run: RunUsage) -> str:
    """The run in one line: sessions, GPU-hours, CPU-core-hours, queued and wall time, the critical path."""
    count = len(run.sessions)
    text = (
        f"{count} session{'s' if count != 1 else ''}, {format_hours(run.gpu_hours)} GPU-h, "
        f"{format_hours(run.cpu_core_hours)} CPU-core-h, queued {format_seconds(run.queued_seconds)}, "
        f"wall {format_seconds(run.wall_seconds)}"
    )
    if run.critical_path:
        text += (
            f", critical path {' -> '.join(run.critical_path)} ({format_seconds(run.critical_path_seconds)})"
        )
    return text
