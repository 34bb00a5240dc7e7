"""Keypair verification of signed requests, as the manager's auth middleware does it."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from airflow_provider_fasttrack.lite.config import KeypairConfig, LiteConfig
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.signing import SIGN_METHOD, parse_authorization, parse_date, sign

__all__ = ["API_VERSIONS", "LATEST_API_VERSION", "MAX_CLOCK_SKEW", "MANAGER_VERSION", "verify_request"]

API_VERSIONS = ("v7.20230615", "v8.20240315", "v8.20240915", "v9.20250722")
LATEST_API_VERSION = API_VERSIONS[-1]
MANAGER_VERSION = "26.9.6"
MAX_CLOCK_SKEW = timedelta(minutes=15)
#: what the manager (aiohttp's ``request.content_type``) signs for a request without a Content-Type
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def api_version(headers: Mapping[str, str]) -> str:
    """The request's API version (the latest when none is given); unknown ones are refused."""
    version = headers.get("x-backendai-version")
    if version is None:
        return LATEST_API_VERSION
    if version not in API_VERSIONS:
        raise LiteError("generic-bad-request", "Unsupported API version.")
    return version


def verify_request(
    config: LiteConfig, headers: Mapping[str, str], method: str, path_with_query: str
) -> KeypairConfig:
    """Check the version, the Date and the signature; returns the caller's keypair."""
    api_version(headers)
    raw_date = headers.get("date") or headers.get("x-backendai-date")
    if not raw_date:
        raise LiteError("invalid-auth-params", "Date or X-BackendAI-Date header is required.")
    try:
        when = parse_date(raw_date)
    except ValueError as exc:
        raise LiteError("invalid-auth-params", "Date header is not an ISO-8601 date/time.") from exc
    if abs(datetime.now(UTC) - when) > MAX_CLOCK_SKEW:
        raise LiteError("invalid-auth-params", "Date/time sync error")
    authorization = headers.get("authorization")
    if not authorization:
        raise LiteError("auth-failed", "Unauthorized access")
    try:
        method_name, access_key, signature = parse_authorization(authorization)
    except ValueError as exc:
        raise LiteError("invalid-auth-params", "Malformed authorization header") from exc
    if method_name != SIGN_METHOD:
        raise LiteError("invalid-auth-params", "Unsupported signMethod")
    keypair = config.keypair(access_key)
    if keypair is None:
        raise LiteError("auth-failed", "Access key not found")
    expected = sign(
        keypair.secret_key,
        method,
        path_with_query,
        raw_date,
        headers.get("host", ""),
        headers.get("content-type", "").strip() or DEFAULT_CONTENT_TYPE,
        headers.get("x-backendai-version", ""),
    )
    if not hmac.compare_digest(expected, signature):
        raise LiteError("auth-failed", "Signature mismatch")
    return keypair
