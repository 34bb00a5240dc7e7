"""What clients asked of the server: requests by method and path, and the event streams open at once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Traffic"]


@dataclass
class Traffic:
    """Counts since the server started (``GET /lite/traffic``)."""

    #: ``"GET /events/session"`` -> how many such requests arrived
    requests: Counter[str] = field(default_factory=Counter)
    open_streams: int = 0
    most_open_streams: int = 0

    def request(self, method: str, path: str) -> None:
        self.requests[f"{method} {path}"] += 1

    def stream_opened(self) -> None:
        self.open_streams += 1
        self.most_open_streams = max(self.most_open_streams, self.open_streams)

    def stream_closed(self) -> None:
        self.open_streams -= 1

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "event_streams": {"open": self.open_streams, "most_open": self.most_open_streams},
        }
