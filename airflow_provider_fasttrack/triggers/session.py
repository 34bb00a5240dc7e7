"""``BackendAISessionTrigger``: waits in the triggerer until a Backend.AI session ends.

It listens to the session event stream and polls the session's real state as a fallback; an event only wakes it
up, and nothing is declared before the state is read back from the manager. A dropped stream is reopened.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fasttrack.exceptions import BackendAIError
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.masking import redacted, register
from airflow_provider_fasttrack.session_log import unseen_lines
from airflow_provider_fasttrack.settings import (
    DEFAULT_RESUME_GRACE_SECONDS,
    RESUME_GRACE_OPTION,
    configured_seconds,
)

__all__ = ["BackendAISessionTrigger"]

WAKE_EVENTS = frozenset(
    {
        "session_started",
        "session_terminating",
        "session_terminated",
        "session_cancelled",
        "session_success",
        "session_failure",
    }
)


class BackendAISessionTrigger(BaseTrigger):
    """Fire one event when the session is terminal, or when ``deadline`` (epoch seconds) has passed.

    Event payloads: ``{"status": "terminal", "state": SessionState JSON, "log_offset": int}``,
    ``{"status": "timeout", ...}`` or ``{"status": "error", "message": str, ...}``. ``log_offset`` counts the
    session log lines already written to the task log (see :mod:`airflow_provider_fasttrack.session_log`).
    ``masks``: the secrets the task sent into the session; the trigger hides them in what it logs and fires
    (see :mod:`airflow_provider_fasttrack.masking`).
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
            },
        )

    def _hook(self) -> BackendAIHook:
        return BackendAIHook(self.backendai_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await register(self.masks)
        hook = self._hook()
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(hook, wake))
        next_log = time.monotonic() + self.log_interval if self.log_interval else None
        base = {"session_id": self.session_id, "session_name": self.session_name}
        grace_ends = time.monotonic() + configured_seconds(RESUME_GRACE_OPTION, DEFAULT_RESUME_GRACE_SECONDS)
        try:
            while True:
                try:
                    state = await hook.aget_session_state(self.session_id)
                except BackendAIError as exc:
                    await _sleep_until(grace_ends)
                    yield TriggerEvent(
                        {
                            **base,
                            "status": "error",
                            "message": redacted(str(exc)),
                            "log_offset": self.log_offset,
                        }
                    )
                    return
                if state.is_terminal:
                    await _sleep_until(grace_ends)
                    yield TriggerEvent(
                        {
                            **base,
                            "status": "terminal",
                            "state": state.to_json(),
                            "log_offset": self.log_offset,
                        }
                    )
                    return
                now = time.time()
                if self.deadline is not None and now >= self.deadline:
                    await _sleep_until(grace_ends)
                    yield TriggerEvent({**base, "status": "timeout", "log_offset": self.log_offset})
                    return
                if next_log is not None and time.monotonic() >= next_log:
                    await self._forward_logs(hook)
                    next_log = time.monotonic() + (self.log_interval or 0)
                wait = self.poll_interval
                if self.deadline is not None:
                    wait = min(wait, max(self.deadline - now, 0.0))
                if next_log is not None:
                    wait = min(wait, max(next_log - time.monotonic(), 0.0))
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=wait)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await hook.aclose()

    async def _listen(self, hook: BackendAIHook, wake: asyncio.Event) -> None:
        """Wake the main loop on each event of this session; reopen the stream when it drops."""
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


async def _sleep_until(moment: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``moment`` (at once if it has)."""
    await asyncio.sleep(max(moment - time.monotonic(), 0.0))
