"""Session and kernel events, broadcast to ``/events/session`` subscribers as the manager names them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventHub"]


@dataclass(frozen=True)
class Event:
    """One event: its SSE name and its data."""

    name: str
    data: dict[str, Any]
    session_name: str
    access_key: str
    group_name: str

    @property
    def scope(self) -> str:
        """``session`` or ``kernel``."""
        return "kernel" if self.name.startswith("kernel_") else "session"


@dataclass
class EventHub:
    """Fan-out of events to the open streams (events are not replayed: a stream sees what follows it)."""

    _queues: dict[asyncio.Queue[Event | None], Callable[[Event], bool] | None] = field(default_factory=dict)

    def subscribe(self, accepts: Callable[[Event], bool] | None = None) -> asyncio.Queue[Event | None]:
        """A queue that receives every event from now on that ``accepts`` (if given) takes, and ``None`` when
        the server stops. Events are matched when published, so a stream waits only for its own."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._queues[queue] = accepts
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        """Stop delivering to ``queue``."""
        self._queues.pop(queue, None)

    def session_event(
        self, name: str, session: dict[str, Any], reason: str, *, kernel: dict[str, Any] | None = None
    ) -> None:
        """Publish ``session_*`` (or ``kernel_*`` with ``kernel``) for a session row."""
        data: dict[str, Any] = {
            "reason": reason,
            "sessionName": session["name"],
            "ownerAccessKey": session["access_key"],
            "sessionId": session["id"],
            # the real manager always sends null here (it reads a misspelt key)
            "exitCode": None,
        }
        if kernel is not None:
            data["kernelId"] = kernel["id"]
            data["clusterRole"] = kernel["cluster_role"]
            data["clusterIdx"] = kernel["cluster_idx"]
        event = Event(name, data, session["name"], session["access_key"], session["group_name"])
        for queue, accepts in list(self._queues.items()):
            if accepts is None or accepts(event):
                queue.put_nowait(event)

    def close(self) -> None:
        """Tell every stream to end."""
        for queue in list(self._queues):
            queue.put_nowait(None)
