"""Backend.AI keypair request signing (HMAC-SHA256), shared by the hook and backendai-lite.

The string to sign is, joined with newlines::

    METHOD
    /path?query
    <Date header, verbatim>
    host:<Host header, with port>
    content-type:<mimetype without parameters>
    x-backendai-version:<API version>
    <sha256 of the empty string>

The body is not hashed by any current API version. The signing key is derived as
``HMAC(HMAC(secret, yyyymmdd(Date)), host)``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Generator
from datetime import UTC, datetime

import httpx

__all__ = [
    "AUTH_SCHEME",
    "BackendAIAuth",
    "EMPTY_SHA256",
    "authorization_header",
    "format_date",
    "parse_authorization",
    "parse_date",
    "sign",
    "string_to_sign",
]

AUTH_SCHEME = "BackendAI"
SIGN_METHOD = "HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def format_date(when: datetime | None = None) -> str:
    """The ``Date`` header value: ISO-8601 with an explicit UTC offset, second precision."""
    when = when or datetime.now(UTC)
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_date(value: str) -> datetime:
    """Parse a ``Date`` header written by :func:`format_date` (or any ISO-8601 with offset)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def string_to_sign(
    method: str, path_with_query: str, date: str, host: str, content_type: str, api_version: str
) -> str:
    """Build the canonical request text that gets signed."""
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return "\n".join(
        [
            method.upper(),
            path_with_query,
            date,
            f"host:{host}",
            f"content-type:{mimetype}",
            f"x-backendai-version:{api_version}",
            EMPTY_SHA256,
        ]
    )


def sign(
    secret_key: str,
    method: str,
    path_with_query: str,
    date: str,
    host: str,
    content_type: str,
    api_version: str,
) -> str:
    """Return the hex HMAC-SHA256 signature of a request."""
    day = parse_date(date).astimezone(UTC).strftime("%Y%m%d")
    key = hmac.new(secret_key.encode(), day.encode(), hashlib.sha256).digest()
    key = hmac.new(key, host.encode(), hashlib.sha256).digest()
    text = string_to_sign(method, path_with_query, date, host, content_type, api_version)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def authorization_header(access_key: str, signature: str) -> str:
    """The ``Authorization`` header value for a signed request."""
    return f"{AUTH_SCHEME} signMethod={SIGN_METHOD}, credential={access_key}:{signature}"


def parse_authorization(value: str) -> tuple[str, str, str]:
    """Split an ``Authorization`` header into ``(sign_method, access_key, signature)``.

    Raises ``ValueError`` when the header is not of the Backend.AI form.
    """
    scheme, _, params = value.strip().partition(" ")
    if scheme != AUTH_SCHEME or not params:
        raise ValueError("authorization scheme is not 'BackendAI'")
    fields: dict[str, str] = {}
    for part in params.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise ValueError(f"malformed authorization parameter {part.strip()!r}")
        fields[key.strip()] = val.strip()
    try:
        method = fields["signMethod"]
        access_key, signature = fields["credential"].split(":", 1)
    except (KeyError, ValueError) as exc:
        raise ValueError("authorization needs signMethod and credential=<access key>:<signature>") from exc
    return method, access_key, signature


class BackendAIAuth(httpx.Auth):
    """Signs every request with the keypair (``Date``, ``X-BackendAI-Version``, ``Authorization``)."""

    def __init__(self, access_key: str, secret_key: str, api_version: str) -> None:
        self.access_key = access_key
        self._secret_key = secret_key
        self.api_version = api_version

    def __repr__(self) -> str:
        return f"BackendAIAuth(access_key={self.access_key!r}, api_version={self.api_version!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.setdefault("Content-Type", "application/json")
        date = format_date()
        request.headers["Date"] = date
        request.headers["X-BackendAI-Version"] = self.api_version
        signature = sign(
            self._secret_key,
            request.method,
            request.url.raw_path.decode("ascii"),
            date,
            request.headers["Host"],
            request.headers["Content-Type"],
            self.api_version,
        )
        request.headers["Authorization"] = authorization_header(self.access_key, signature)
        yield request
