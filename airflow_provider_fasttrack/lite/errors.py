"""The manager's errors as ``application/problem+json`` responses."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

__all__ = ["PROBLEM_BASE", "LiteError", "problem_response"]

PROBLEM_BASE = "https://api.backend.ai/probs/"

#: specific not-found errors share the manager's ``object-not-found`` type, with their own title
TYPE_OF = {
    "session-not-found": "object-not-found",
    "vfolder-not-found": "object-not-found",
    "image-not-found": "object-not-found",
}

#: kind -> (HTTP status, title), as the real manager words them
KINDS: dict[str, tuple[int, str]] = {
    "object-not-found": (404, "No such object."),
    "session-not-found": (404, "No such session."),
    "vfolder-not-found": (404, "No such virtual folder."),
    "image-not-found": (404, "No such environment image."),
    "invalid-api-params": (400, "Missing or invalid API parameters."),
    "generic-bad-request": (400, "Bad request."),
    "auth-failed": (401, "Credential/signature mismatch."),
    "invalid-auth-params": (400, "Missing or invalid authorization parameters."),
    "insufficient-privilege": (403, "Insufficient privilege."),
    "not-enough-permission": (403, "Insufficient permission to perform this operation."),
    "rate-limit-exceeded": (429, "Rate limit exceeded."),
    "request-too-large": (413, "Request entity too large."),
    "not-implemented": (501, "This API is not implemented."),
    "server-frozen": (503, "The server is frozen due to maintenance. Please try again later."),
    "internal-error": (500, "Something has gone wrong."),
    "service-unavailable": (503, "Service unavailable."),
    "quota-exceeded": (400, "You have reached your resource limit."),
    "session-already-exists": (
        400,
        "The session already exists but you requested not to reuse existing one.",
    ),
    "unknown-resource-slot-type": (400, "Unknown resource slot type."),
    "vfolder-already-exists": (400, "The virtual folder already exists with the same name."),
    "vfolder-operation-failed": (400, "Virtual folder operation has failed due to bad request."),
}


class LiteError(Exception):
    """An API error of one of the manager's kinds."""

    def __init__(
        self, kind: str, msg: str | None = None, data: Any = None, *, status: int | None = None
    ) -> None:
        default_status, title = KINDS[kind]
        self.kind = TYPE_OF.get(kind, kind)
        self.status = status or default_status
        self.title = title
        self.msg = msg
        self.data = data
        super().__init__(f"{kind}: {msg or title}")

    def body(self) -> dict[str, Any]:
        """The problem+json document."""
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.kind,
            "title": self.title,
            "error_code": self.kind,
        }
        if self.msg:
            body["msg"] = self.msg
        if self.data is not None:
            body["data"] = self.data
        return body


def problem_response(error: LiteError, headers: dict[str, str] | None = None) -> JSONResponse:
    """Render an error as the manager does."""
    return JSONResponse(
        error.body(), status_code=error.status, media_type="application/problem+json", headers=headers
    )
