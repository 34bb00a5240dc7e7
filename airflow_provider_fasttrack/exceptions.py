"""Errors raised by the provider.

Hierarchy::

    BackendAIError
    ├── BackendAIConnectionError      the manager could not be reached (after retries)
    └── BackendAIAPIError             the manager answered with an error (problem+json)
        ├── BackendAIAuthError            401 auth-failed, 400 invalid-auth-params, 403
        ├── BackendAINotFoundError        404 object-not-found
        ├── BackendAIRateLimitError       429 rate-limit-exceeded
        ├── BackendAIServerError          5xx
        └── BackendAIBadRequestError      other 4xx (invalid-api-params, quota-exceeded, ...)
    SessionFailedError                a session ended without success
    ResourceRequestError              a resource request that the cluster can never satisfy
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackendAIAPIError",
    "BackendAIAuthError",
    "BackendAIBadRequestError",
    "BackendAIConnectionError",
    "BackendAIError",
    "BackendAINotFoundError",
    "BackendAIRateLimitError",
    "BackendAIServerError",
    "ResourceRequestError",
    "SessionFailedError",
]

PROBLEM_TYPE_PREFIX = "https://api.backend.ai/probs/"


class BackendAIError(Exception):
    """Base class of every error of this provider."""


class BackendAIConnectionError(BackendAIError):
    """The manager could not be reached."""


class BackendAIAPIError(BackendAIError):
    """The manager answered with an error status; carries the problem+json fields."""

    def __init__(
        self,
        status_code: int,
        type: str = "",
        title: str = "",
        msg: str | None = None,
        data: Any = None,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.type = type
        self.title = title
        self.msg = msg
        self.data = data
        self.method = method
        self.path = path
        self.retry_after = retry_after
        super().__init__(str(self))

    @property
    def kind(self) -> str:
        """The last part of the problem type, e.g. ``object-not-found``."""
        return self.type.removeprefix(PROBLEM_TYPE_PREFIX)

    def __str__(self) -> str:
        text = f"{self.method} {self.path} -> {self.status_code} {self.kind or 'error'}: {self.title}".strip()
        if self.msg and self.msg != self.title:
            text += f" ({self.msg})"
        return text


class BackendAIAuthError(BackendAIAPIError):
    """The keypair or the request signature was refused."""


class BackendAINotFoundError(BackendAIAPIError):
    """The session, vfolder or file does not exist (or a session has terminated)."""


class BackendAIRateLimitError(BackendAIAPIError):
    """429: too many requests."""


class BackendAIServerError(BackendAIAPIError):
    """5xx from the manager."""


class BackendAIBadRequestError(BackendAIAPIError):
    """Any other 4xx: the request itself is wrong, retrying does not help."""


class SessionFailedError(BackendAIError):
    """A batch session ended without success."""


class ResourceRequestError(BackendAIError):
    """A resource request that the cluster or keypair can never provide."""
