"""Small value objects for what the Backend.AI API returns: session state and session events."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ACTIVE_STATUSES", "TERMINAL_STATUSES", "SessionEvent", "SessionState"]

TERMINAL_STATUSES = frozenset({"TERMINATED", "CANCELLED", "ERROR"})
ACTIVE_STATUSES = frozenset(
    {
        "PENDING",
        "DEPRIORITIZING",
        "RESERVED",
        "SCHEDULED",
        "PREPARING",
        "PULLING",
        "PREPARED",
        "CREATING",
        "RUNNING",
        "RESTARTING",
        "RUNNING_DEGRADED",
        "PREEMPTED",
        "RESCHEDULING",
        "TERMINATING",
    }
)


@dataclass(frozen=True)
class SessionState:
    """Where a session stands: status, batch result and exit code (once known)."""

    session_id: str
    status: str
    result: str = "UNDEFINED"
    exit_code: int | None = None
    status_info: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_successful(self) -> bool:
        return self.is_terminal and self.result == "SUCCESS"

    @property
    def reason(self) -> str:
        """The Backend.AI reason (``task-finished``, ``task-failed``, ``task-timeout``, ...) or the status."""
        return self.status_info or self.status.lower()

    def describe(self) -> str:
        text = f"session {self.session_id} {self.status} (result {self.result}, reason {self.reason}"
        if self.exit_code is not None:
            text += f", exit code {self.exit_code}"
        return text + ")"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionState:
        return cls(**data)

    @classmethod
    def from_compute_session(cls, session_id: str, node: dict[str, Any]) -> SessionState:
        """Build from a GraphQL ``compute_session`` node (``status_data.kernel.exit_code`` holds the code)."""
        exit_code = _kernel_exit_code(node.get("status_data"))
        if exit_code is None:
            for container in node.get("containers") or []:
                if container.get("cluster_role") in (None, "main"):
                    exit_code = _kernel_exit_code(container.get("status_data"))
                    break
        return cls(
            session_id=session_id,
            status=str(node.get("status") or "UNKNOWN"),
            result=str(node.get("result") or "UNDEFINED"),
            exit_code=int(exit_code) if exit_code is not None else None,
            status_info=node.get("status_info"),
        )


def _kernel_exit_code(status_data: Any) -> Any:
    """``status_data.kernel.exit_code``; GraphQL sends ``status_data`` as a JSON string."""
    if isinstance(status_data, str):
        try:
            status_data = json.loads(status_data) if status_data else {}
        except ValueError:
            return None
    if not isinstance(status_data, dict):
        return None
    return (status_data.get("kernel") or {}).get("exit_code")


@dataclass(frozen=True)
class SessionEvent:
    """One server-sent event of ``/events/session``."""

    name: str
    session_id: str
    session_name: str
    reason: str | None = None
    exit_code: int | None = None

    @property
    def is_terminal(self) -> bool:
        return self.name in {"session_terminated", "session_cancelled"}
