"""One session event stream per triggerer process, connection and event loop, shared by the waiting triggers.

Airflow's triggerer runs all of its triggers in one event loop. Each waiting session trigger subscribes here with
its session id and gets an :class:`asyncio.Event` that is set when an event of its session arrives. The manager
streams every session the keypair's user may see (``sessionName=*``); events are routed by ``sessionId``. The
stream opens with the first subscriber and closes with the last. A dropped stream is reopened with a growing,
jittered delay, and every (re)open wakes all subscribers: events sent while no stream was open are not replayed,
so each trigger reads its session's state once then, and that read decides, as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Iterator

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook

__all__ = ["WAKE_EVENTS", "SessionEventStream", "session_wake"]

#: the events after which a session may have ended: they wake its trigger to read the state
WAKE_EVENTS = frozenset(
    {
        "session_terminating",
        "session_terminated",
        "session_cancelled",
        "session_success",
        "session_failure",
    }
)
#: seconds before the first reopen of a dropped stream; each further failure doubles it, up to the most
REOPEN_FIRST_SECONDS = 0.5
REOPEN_MOST_SECONDS = 30.0
#: a stream that stayed open this long was healthy: the next reopen starts from the first delay again
HEALTHY_SECONDS = 30.0

log = logging.getLogger(__name__)


class SessionEventStream:
    """The ``/events/session`` stream of one connection in one event loop, fanned out by session id."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._wakes: dict[str, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, session_id: str) -> asyncio.Event:
        """An event set when ``session_id`` may have ended or the stream (re)opened; starts the stream."""
        wake = asyncio.Event()
        self._wakes.setdefault(session_id, set()).add(wake)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"events:{self.conn_id}")
        return wake

    def unsubscribe(self, session_id: str, wake: asyncio.Event) -> bool:
        """Forget ``wake``; when it was the last subscriber, close the stream and return True."""
        wakes = self._wakes.get(session_id, set())
        wakes.discard(wake)
        if not wakes:
            self._wakes.pop(session_id, None)
        if self._wakes:
            return False
        if self._task is not None:
            self._task.cancel()
            self._task = None
        return True

    def _wake_all(self) -> None:
        for wakes in self._wakes.values():
            for wake in wakes:
                wake.set()

    async def _run(self) -> None:
        hook = BackendAIHook(self.conn_id)
        delay = REOPEN_FIRST_SECONDS
        try:
            while True:
                opened = None
                try:
                    async with hook.aopen_session_events() as events:
                        opened = time.monotonic()
                        self._wake_all()
                        async for event in events:
                            if event.name in WAKE_EVENTS:
                                for wake in self._wakes.get(event.session_id, ()):
                                    wake.set()
                    log.info("The session event stream of %s closed; reopening", self.conn_id)
                except Exception as exc:  # any failure: the triggers' own state reads go on meanwhile
                    log.warning("The session event stream of %s failed (%s); reopening", self.conn_id, exc)
                if opened is not None and time.monotonic() - opened >= HEALTHY_SECONDS:
                    delay = REOPEN_FIRST_SECONDS
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, REOPEN_MOST_SECONDS)
        finally:
            await hook.aclose()


_streams: dict[tuple[str, asyncio.AbstractEventLoop], SessionEventStream] = {}


@contextlib.contextmanager
def session_wake(conn_id: str, session_id: str) -> Iterator[asyncio.Event]:
    """Subscribe to the shared stream of ``conn_id`` in the running event loop for as long as the block runs."""
    key = (conn_id, asyncio.get_running_loop())
    stream = _streams.setdefault(key, SessionEventStream(conn_id))
    wake = stream.subscribe(session_id)
    try:
        yield wake
    finally:
        if stream.unsubscribe(session_id, wake):
            _streams.pop(key, None)
