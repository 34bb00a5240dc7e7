"""Fault injection: error statuses (before or after the request takes effect), latency, dropped streams."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from airflow_provider_fasttrack.lite.config import FaultConfig
from airflow_provider_fasttrack.lite.errors import LiteError

__all__ = ["FaultInjector", "InjectedFault"]


@dataclass(frozen=True)
class InjectedFault:
    """One error to answer instead of (``before``) or in place of (``after``) the real response."""

    status: int
    phase: Literal["before", "after"]
    retry_after: float

    def error(self) -> LiteError:
        """The problem+json error for this status."""
        if self.status == 429:
            return LiteError("rate-limit-exceeded", "Injected fault: too many requests.")
        if self.status == 503:
            return LiteError("service-unavailable", "Injected fault: temporarily unavailable.")
        if self.status == 403:
            return LiteError("not-enough-permission", "Injected fault: no permission.")
        return LiteError("internal-error", "Injected fault.", status=self.status)

    def headers(self) -> dict[str, str]:
        """``Retry-After`` for 429 answers."""
        if self.status == 429:
            return {"Retry-After": f"{self.retry_after:g}"}
        return {}


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._random = random.Random(config.seed)
        #: what was injected so far: ``error_before``, ``error_after``, ``delayed``, ``dropped_stream``, ``requests``
        self.counts: Counter[str] = Counter()

    def applies_to(self, path: str) -> bool:
        """Whether faults may be injected on this path."""
        if any(path.startswith(prefix) for prefix in self.config.exempt_paths):
            return False
        return not self.config.paths or any(fnmatchcase(path, pattern) for pattern in self.config.paths)

    def error(self, *, can_be_after: bool = True) -> InjectedFault | None:
        """An error to inject on this request, or ``None``."""
        cfg = self.config
        self.counts["requests"] += 1
        if cfg.error_rate <= 0 or self._random.random() >= cfg.error_rate:
            return None
        status = self._random.choice(cfg.error_statuses)
        phase: Literal["before", "after"]
        if cfg.error_phase == "both":
            phase = "after" if self._random.random() < 0.5 else "before"
        else:
            phase = cfg.error_phase
        if phase == "after" and not can_be_after:
            phase = "before"
        self.counts[f"error_{phase}"] += 1
        return InjectedFault(status, phase, cfg.retry_after_seconds)

    def latency(self) -> float:
        """Seconds to delay this request (0 for most)."""
        cfg = self.config
        if cfg.latency_rate > 0 and self._random.random() < cfg.latency_rate:
            self.counts["delayed"] += 1
            return cfg.latency_seconds
        return 0.0

    def drop_stream_after(self) -> int | None:
        """For a new event stream: after how many events the server closes it (``None``: never)."""
        cfg = self.config
        if cfg.drop_event_stream_rate > 0 and self._random.random() < cfg.drop_event_stream_rate:
            self.counts["dropped_stream"] += 1
            return cfg.drop_event_stream_after
        return None
