"""Lifetime statistics of a kernel's processes, in the shape of the manager's ``live_stat`` / ``last_stat``.

Each sample reads the kernel's process tree (psutil): CPU time (``cpu_used``, msec, and its rate ``cpu_util``,
in millicores: 1000 is one core busy) and resident memory (``mem``, bytes). A kernel keeps the peak and the mean
of its samples, as an agent's ``stats.max`` / ``stats.avg``; values are decimal strings, as the manager sends them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psutil

__all__ = ["KernelStats", "tree_usage"]


def tree_usage(pid: int) -> tuple[float, int] | None:
    """CPU seconds (live processes and the children they reaped) and resident bytes of ``pid`` and its
    descendants; ``None`` once ``pid`` is gone."""
    try:
        root = psutil.Process(pid)
        if root.status() == psutil.STATUS_ZOMBIE:  # ended, not yet reaped: nothing left to measure
            return None
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    cpu, rss = 0.0, 0
    for process in processes:
        try:
            with process.oneshot():
                times = process.cpu_times()
                memory = process.memory_info()
        except psutil.Error:  # ended between the listing and the read
            continue
        cpu += times.user + times.system + times.children_user + times.children_system
        rss += memory.rss
    return cpu, rss


@dataclass
class _Metric:
    unit: str
    current: float = 0.0
    peak: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        self.current = value
        self.peak = max(self.peak, value) if self.count else value
        self.total += value
        self.count += 1

    def as_stat(self) -> dict[str, Any]:
        return {
            "current": _text(self.current),
            "unit_hint": self.unit,
            "stats.max": _text(self.peak),
            "stats.avg": _text(self.total / self.count),
        }


def _text(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


@dataclass
class KernelStats:
    """The samples of one kernel so far."""

    _cpu_seconds: float | None = None
    _at: float = 0.0
    _metrics: dict[str, _Metric] = field(default_factory=dict)

    def sample(self, pid: int) -> bool:
        """Read the process tree of ``pid`` once; False when it has ended (nothing recorded)."""
        usage = tree_usage(pid)
        if usage is None:
            return False
        cpu, rss = usage
        now = time.monotonic()
        self._metric("mem", "bytes").add(float(rss))
        self._metric("cpu_used", "msec").add(cpu * 1000)
        if self._cpu_seconds is not None and now > self._at:
            rate = max(cpu - self._cpu_seconds, 0.0) / (now - self._at)
            self._metric("cpu_util", "millicores").add(rate * 1000)
        self._cpu_seconds, self._at = cpu, now
        return True

    def _metric(self, name: str, unit: str) -> _Metric:
        return self._metrics.setdefault(name, _Metric(unit))

    def as_stat(self) -> dict[str, dict[str, Any]]:
        """``{metric: {"current", "unit_hint", "stats.max", "stats.avg"}}``."""
        return {name: metric.as_stat() for name, metric in sorted(self._metrics.items())}
