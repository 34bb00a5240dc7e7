"""``BackendAISessionTrigger``: waits in the triggerer until a Backend.AI session ends.

Session events only wake it up; nothing is declared before the state is read back from the manager. With
``[fasttrack] session_events = shared`` (the default) the triggers of a triggerer share one event stream per
connection (:mod:`airflow_provider_fasttrack.triggers.event_stream`) and read the state once at start, after
an event of their session, after the stream (re)opened, and every ``[fasttrack] recheck_interval`` (±20 %)
otherwise. With ``per_task`` each trigger opens its own stream and reads the state every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fasttrack.exceptions import BackendAIError
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.masking import redacted, register
from airflow_provider_fasttrack.session_log import unseen_lines
from airflow_provider_fasttrack.settings import (
    DEFAULT_RECHECK_SECONDS,
    DEFAULT_RESUME_GRACE_SECONDS,
    RECHECK_INTERVAL_OPTION,
    RESUME_GRACE_OPTION,
    SESSION_EVENTS_MODES,
    SESSION_EVENTS_OPTION,
    SHARED_EVENTS,
    configured_choice,
    configured_seconds,
)
from airflow_provider_fasttrack.triggers.event_stream import WAKE_EVENTS, session_wake

__all__ = ["BackendAISessionTrigger"]


class BackendAISessionTrigger(BaseTrigger):
    """Fire one event when the session is terminal, or when ``deadline`` (epoch seconds) has passed.

    Event payloads: ``{"status": "terminal", "state": SessionState JSON, "log_offset": int}``,
    ``{"status": "timeout", ...}`` or ``{"status": "error", "message": str, ...}``. ``log_offset`` counts the
    session log lines already written to the task log (see :mod:`airflow_provider_fasttrack.session_log`).
    ``masks``: the secrets the task sent into the session; the trigger hides them in what it logs and fires
    (see :mod:`airflow_provider_fasttrack.masking`). ``deferred_at`` (epoch seconds): when the task deferred;
    no event fires sooner than ``[fasttrack] resume_grace`` after it (after the trigger's start when unset).
    """

    def __init__(
        self,
        session_id: str,
        session_name: str,
        backendai_conn_id: str,
        poll_interval: float = 10.0,
        deadline: float | None = None,
        log_interval: float | None = None,
        log_offset: int = 0,
        masks: Sequence[str] = (),
        deferred_at: float | None = None,
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self.session_name = session_name
        self.backendai_conn_id = backendai_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.log_interval = log_interval
        self.log_offset = log_offset
        self.masks = list(masks)
        self.deferred_at = deferred_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "session_id": self.session_id,
                "session_name": self.session_name,
                "backendai_conn_id": self.backendai_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "log_interval": self.log_interval,
                "log_offset": self.log_offset,
                "masks": self.masks,
                "deferred_at": self.deferred_at,
            },
        )

    def _hook(self) -> BackendAIHook:
        return BackendAIHook(self.backendai_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await register(self.masks)
        mode = configured_choice(SESSION_EVENTS_OPTION, SESSION_EVENTS_MODES)
        grace = configured_seconds(RESUME_GRACE_OPTION, DEFAULT_RESUME_GRACE_SECONDS)
        grace_ends = (self.deferred_at if self.deferred_at is not None else time.time()) + grace
        hook = self._hook()
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(hook.aclose)
            if mode == SHARED_EVENTS:
                recheck = configured_seconds(RECHECK_INTERVAL_OPTION, DEFAULT_RECHECK_SECONDS)
                wake = stack.enter_context(session_wake(self.backendai_conn_id, self.session_id))
                event = await self._wait(hook, wake, lambda: recheck * random.uniform(0.8, 1.2))
            else:
                wake = asyncio.Event()
                listener = asyncio.create_task(self._listen(hook, wake))
                stack.push_async_callback(_stop, listener)
                event = await self._wait(hook, wake, lambda: self.poll_interval)
        await asyncio.sleep(max(grace_ends - time.time(), 0.0))
        yield TriggerEvent(event)

    async def _wait(
        self, hook: BackendAIHook, wake: asyncio.Event, read_interval: Callable[[], float]
    ) -> dict[str, Any]:
        """The event's payload: the state is read at once, when ``wake`` is set and each ``read_interval()``;
        the log is relayed each ``log_interval`` in between."""
        base = {"session_id": self.session_id, "session_name": self.session_name}
        next_log = time.monotonic() + self.log_interval if self.log_interval else None
        next_read = 0.0
        while True:
            if wake.is_set() or time.monotonic() >= next_read:
                wake.clear()  # before the read: an event that comes during it wakes the next wait
                try:
                    state = await hook.aget_session_state(self.session_id)
                except BackendAIError as exc:
                    return {
                        **base,
                        "status": "error",
                        "message": redacted(str(exc)),
                        "log_offset": self.log_offset,
                    }
                if state.is_terminal:
                    return {
                        **base,
                        "status": "terminal",
                        "state": state.to_json(),
                        "log_offset": self.log_offset,
                    }
                next_read = time.monotonic() + read_interval()
            if self.deadline is not None and time.time() >= self.deadline:
                return {**base, "status": "timeout", "log_offset": self.log_offset}
            if next_log is not None and time.monotonic() >= next_log:
                await self._forward_logs(hook)
                next_log = time.monotonic() + (self.log_interval or 0)
            moments = [next_read] + ([next_log] if next_log is not None else [])
            wait = min(moments) - time.monotonic()
            if self.deadline is not None:
                wait = min(wait, self.deadline - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(wait, 0.0))

    async def _listen(self, hook: BackendAIHook, wake: asyncio.Event) -> None:
        """``per_task``: wake the main loop on each event of this session; reopen the stream when it drops."""
        backoff = 0.5
        while True:
            try:
                async for event in hook.astream_session_events(self.session_name, self.session_id):
                    backoff = 0.5
                    if event.name in WAKE_EVENTS:
                        wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a dropped stream never ends the wait: polling goes on
                self.log.debug("Session event stream ended (%s); reopening", exc)
            wake.set()  # the stream closed: re-check the real state now
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.poll_interval)

    async def _forward_logs(self, hook: BackendAIHook) -> None:
        try:  # one attempt: the next interval asks again, and an ended session may have no log to give
            text = await hook.aget_logs(self.session_id, retry=False)
        except BackendAIError as exc:
            self.log.warning("Could not fetch session logs: %s", exc)
            return
        lines, self.log_offset = unseen_lines(text, self.log_offset)
        for line in lines:
            self.log.info("[%s] %s", self.session_name, redacted(line))

    async def on_kill(self) -> None:
        """The user marked the task failed/success or cleared it: destroy the session."""
        hook = self._hook()
        try:
            destroyed = await hook.adestroy_session(self.session_id, forced=True)
        finally:
            await hook.aclose()
        self.log.info("Destroyed Backend.AI session %s: %s", self.session_id, destroyed)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
