"""``BackendAIServiceTrigger``: waits in the triggerer until a Backend.AI model service is ready.

Ready is the manager's own test: ``service_endpoint`` is set and as many routes are healthy as ``replicas``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_fasttrack.exceptions import BackendAIError
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.masking import redacted, register

__all__ = ["BackendAIServiceTrigger", "service_failure", "service_is_ready"]


def service_is_ready(info: dict[str, Any]) -> bool:
    """``service_endpoint`` set and ``len(active_routes) == replicas`` (the one definition of ready)."""
    replicas = info.get("replicas", info.get("desired_session_count"))
    return bool(info.get("service_endpoint")) and len(info.get("active_routes") or []) == replicas


def service_failure(errors: dict[str, Any], max_failures: int) -> str | None:
    """Why the service is given up on: ``max_failures`` replicas failed; the last error's text. None otherwise."""
    items = errors.get("errors") or []
    if int(errors.get("retries") or len(items)) < max_failures or not items:
        return None
    error = items[-1].get("error") or {}
    logs = str(error.get("logs") or "").strip()
    text = str(error.get("repr") or error.get("name") or error)
    return f"{len(items)} replicas failed; the last: {text}" + (
        f"\nIts last log lines:\n{logs}" if logs else ""
    )


class BackendAIServiceTrigger(BaseTrigger):
    """Fire once: ``{"status": "ready", "service": info}``, ``failed`` (replicas keep failing), ``timeout``
    (``deadline``, epoch seconds, passed) or ``error`` (the manager could not be asked).

    ``masks``: the secrets the task sent into the service's environment; the events (a failed replica's last log
    lines among them) show ``***`` in their place (see :mod:`airflow_provider_fasttrack.masking`).
    """

    def __init__(
        self,
        service_id: str,
        backendai_conn_id: str,
        poll_interval: float = 5.0,
        deadline: float | None = None,
        max_failures: int = 3,
        delete_on_kill: bool = False,
        masks: Sequence[str] = (),
    ) -> None:
        super().__init__()
        self.service_id = service_id
        self.backendai_conn_id = backendai_conn_id
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.max_failures = max_failures
        self.delete_on_kill = delete_on_kill
        self.masks = list(masks)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "service_id": self.service_id,
                "backendai_conn_id": self.backendai_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "max_failures": self.max_failures,
                "delete_on_kill": self.delete_on_kill,
                "masks": self.masks,
            },
        )

    def _hook(self) -> BackendAIHook:
        return BackendAIHook(self.backendai_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await register(self.masks)
        hook = self._hook()
        base = {"service_id": self.service_id}
        try:
            while True:
                try:
                    info = await hook.aget_service(self.service_id)
                    if service_is_ready(info):
                        yield TriggerEvent(redacted({**base, "status": "ready", "service": info}))
                        return
                    why = service_failure(await hook.aservice_errors(self.service_id), self.max_failures)
                except BackendAIError as exc:
                    yield TriggerEvent(redacted({**base, "status": "error", "message": str(exc)}))
                    return
                if why is not None:
                    yield TriggerEvent(redacted({**base, "status": "failed", "message": why}))
                    return
                now = time.time()
                if self.deadline is not None and now >= self.deadline:
                    yield TriggerEvent({**base, "status": "timeout"})
                    return
                wait = self.poll_interval
                if self.deadline is not None:
                    wait = min(wait, max(self.deadline - now, 0.0))
                await asyncio.sleep(wait)
        finally:
            await hook.aclose()

    async def on_kill(self) -> None:
        """The user marked the task failed/success or cleared it: delete a service this task created."""
        if not self.delete_on_kill:
            return
        hook = self._hook()
        try:
            deleted = await hook.adelete_service(self.service_id)
        finally:
            await hook.aclose()
        self.log.info("Deleted Backend.AI model service %s: %s", self.service_id, deleted)
