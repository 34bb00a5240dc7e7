"""The transport under ``BackendAIHook``: connection settings, signed httpx clients, API version negotiation,
retries (tenacity) and error mapping, as one request function per operation with sync and async twins.

Endpoint methods live in :mod:`airflow_provider_fasttrack.hooks.backendai`, on top of :class:`BackendAIBaseHook`
(the split of the Databricks provider's ``databricks_base`` and ``databricks`` hooks). Each operation has exactly
one retry loop: :meth:`BackendAIBaseHook._call` retries, :meth:`BackendAIBaseHook._request_once` never does, and
an endpoint that needs its own loop (:meth:`BackendAIBaseHook.retrying`) sends single attempts inside it.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx
from airflow.sdk import BaseHook
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from airflow_provider_fasttrack.exceptions import (
    TRANSIENT_ERRORS,
    BackendAIAPIError,
    BackendAIAuthError,
    BackendAIBadRequestError,
    BackendAIConnectionError,
    BackendAIError,
    BackendAINotFoundError,
    BackendAIRateLimitError,
    BackendAIServerError,
)
from airflow_provider_fasttrack.hooks.connection import DEFAULT_CONN_ID
from airflow_provider_fasttrack.signing import BackendAIAuth

__all__ = [
    "ROOT",
    "SUPPORTED_API_VERSIONS",
    "BackendAIBaseHook",
    "ConnectionSettings",
    "error_from_response",
    "tls_context",
]

#: API versions this client speaks, oldest first; the newest one the manager also speaks is used.
SUPPORTED_API_VERSIONS = ("v7.20230615", "v8.20240315", "v8.20240915", "v9.20250722")

ROOT = ("GET", "/")

_ERRORS_BY_STATUS: dict[int, type[BackendAIAPIError]] = {
    401: BackendAIAuthError,
    403: BackendAIAuthError,
    404: BackendAINotFoundError,
    429: BackendAIRateLimitError,
}


def _version_key(version: str) -> tuple[int, int]:
    major, _, date = version.lstrip("v").partition(".")
    return int(major), int(date or 0)


@cache
def tls_context(verify: bool) -> ssl.SSLContext:
    """The process's TLS context for this verification setting, shared by every client of every hook: building
    one reads the CA bundle (about 30 ms of CPU), which a triggerer's hundreds of hooks would each do."""
    return httpx.create_ssl_context(verify=verify)


@dataclass(frozen=True)
class ConnectionSettings:
    """What a ``backendai`` Airflow connection holds. The secret key is excluded from the repr."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    api_version: str | None = None
    project: str | None = None
    domain: str | None = None
    scaling_group: str | None = None
    webui_url: str | None = None
    verify_tls: bool = True

    @classmethod
    def from_connection(cls, conn: Any) -> ConnectionSettings:
        extra = conn.extra_dejson or {}
        host = (conn.host or "").strip()
        if not host:
            raise BackendAIError(f"connection {conn.conn_id!r}: the endpoint (host) is empty")
        if "://" not in host:
            loopback = host.split(":")[0] in {"127.0.0.1", "localhost", "::1"}
            host = f"{'http' if loopback else 'https'}://{host}"
        if conn.port and not urlsplit(host).port:
            host = f"{host}:{conn.port}"
        if not conn.login or not conn.password:
            raise BackendAIError(
                f"connection {conn.conn_id!r}: access key (login) and secret key are required"
            )
        verify = extra.get("verify_tls", True)
        return cls(
            endpoint=host.rstrip("/"),
            access_key=conn.login,
            secret_key=conn.password,
            api_version=extra.get("api_version") or None,
            project=extra.get("project") or None,
            domain=extra.get("domain") or None,
            scaling_group=extra.get("scaling_group") or None,
            webui_url=(extra.get("webui_url") or "").rstrip("/") or None,
            verify_tls=str(verify).lower() not in {"false", "0", "no"},
        )


def error_from_response(response: httpx.Response) -> BackendAIAPIError:
    """Turn an error response (``application/problem+json`` or not) into a typed exception."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    if status >= 500:
        cls: type[BackendAIAPIError] = BackendAIServerError
    elif body.get("type", "").endswith(("/auth-failed", "/invalid-auth-params")):
        cls = BackendAIAuthError
    else:
        cls = _ERRORS_BY_STATUS.get(status, BackendAIBadRequestError)
    retry_after: float | None = None
    if "Retry-After" in response.headers:
        try:
            retry_after = float(response.headers["Retry-After"])
        except ValueError:
            retry_after = None
    return cls(
        status_code=status,
        type=str(body.get("type", "")),
        title=str(body.get("title") or response.reason_phrase),
        msg=body.get("msg"),
        data=body.get("data"),
        method=response.request.method,
        path=response.request.url.path,
        retry_after=retry_after,
    )


class BackendAIBaseHook(BaseHook):
    """Transport to a Backend.AI manager through a ``backendai`` connection (endpoints: ``BackendAIHook``).

    :param backendai_conn_id: the Airflow connection (endpoint, access key, secret key, defaults).
    :param timeout: seconds for connect/read of one request.
    :param retry_limit: attempts per operation on connection errors, 5xx and 429 (never other 4xx).
    :param retry_delay: first back-off in seconds (doubling, with jitter); ``Retry-After`` wins when sent.
    """

    def __init__(
        self,
        backendai_conn_id: str = DEFAULT_CONN_ID,
        *,
        timeout: float = 30.0,
        retry_limit: int = 8,
        retry_delay: float = 0.5,
        max_retry_delay: float = 20.0,
    ) -> None:
        super().__init__()
        if retry_limit < 1:
            raise ValueError("retry_limit must be at least 1")
        if retry_delay < 0:
            raise ValueError("retry_delay must not be negative")
        self.backendai_conn_id = backendai_conn_id
        self.timeout = timeout
        self.retry_limit = retry_limit
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self._api_version: str | None = None
        self._aclient: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None
        #: requests retried so far (connection errors, 5xx, 429)
        self.retries = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backendai_conn_id={self.backendai_conn_id!r})"

    # -- connection and clients ---------------------------------------------------------------

    @cached_property
    def settings(self) -> ConnectionSettings:
        return ConnectionSettings.from_connection(self.get_connection(self.backendai_conn_id))

    def get_conn(self) -> httpx.Client:
        return self.client

    async def asettings(self) -> ConnectionSettings:
        if "settings" not in self.__dict__:
            conn = await self.aget_connection(self.backendai_conn_id)
            self.__dict__["settings"] = ConnectionSettings.from_connection(conn)
        return self.settings

    @cached_property
    def client(self) -> httpx.Client:
        settings = self.settings
        return httpx.Client(
            base_url=settings.endpoint,
            timeout=self.timeout,
            verify=tls_context(settings.verify_tls),
            auth=BackendAIAuth(settings.access_key, settings.secret_key, self.api_version),
        )

    async def _async_client(self) -> httpx.AsyncClient:
        """The async client of the running event loop, created once per loop and kept (connections reused)."""
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            settings = await self.asettings()
            version = await self.anegotiate_version()
            if self._aclient is not None and self._aclient[0] is loop:  # a caller at the same time made it
                return self._aclient[1]
            client = httpx.AsyncClient(
                base_url=settings.endpoint,
                timeout=self.timeout,
                verify=tls_context(settings.verify_tls),
                auth=BackendAIAuth(settings.access_key, settings.secret_key, version),
            )
            self._aclient = (loop, client)
        return self._aclient[1]

    async def aclose(self) -> None:
        """Close the async client of the running loop."""
        if self._aclient is not None:
            loop, client = self._aclient
            self._aclient = None
            if loop is asyncio.get_running_loop():
                await client.aclose()

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]

    # -- version negotiation -----------------------------------------------------------------

    def _choose_version(self, server_version: str | None) -> str:
        if self.settings.api_version:
            return self.settings.api_version
        ours = SUPPORTED_API_VERSIONS[-1]
        if not server_version:
            return ours
        return min(ours, server_version, key=_version_key)

    @property
    def api_version(self) -> str:
        """The API version in use: the connection's pin, else min(manager's, ours), asked once."""
        if self._api_version is None:
            server = None
            if not self.settings.api_version:
                server = self._unsigned_root().get("version")
            self._api_version = self._choose_version(server)
        return self._api_version

    async def anegotiate_version(self) -> str:
        """Async version of :attr:`api_version`."""
        if self._api_version is None:
            settings = await self.asettings()
            server = None
            if not settings.api_version:
                async with httpx.AsyncClient(
                    base_url=settings.endpoint, timeout=self.timeout, verify=tls_context(settings.verify_tls)
                ) as client:
                    response = await self._asend(client, *ROOT)
                server = response.json().get("version")
            self._api_version = self._choose_version(server)
        return self._api_version

    def _unsigned_root(self) -> dict[str, Any]:
        settings = self.settings
        with httpx.Client(
            base_url=settings.endpoint, timeout=self.timeout, verify=tls_context(settings.verify_tls)
        ) as client:
            return dict(self._send(client, *ROOT).json())

    # -- requests: one retry loop per operation (sync and async) ----------------------------

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(min(retry_after, self.max_retry_delay))
        backoff = self.retry_delay * 2 ** (state.attempt_number - 1)
        return float(min(backoff, self.max_retry_delay) * random.uniform(0.5, 1.0))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.retries += 1
        self.log.warning("Backend.AI request failed (attempt %d), retrying: %s", state.attempt_number, exc)

    def _retry_kwargs(self) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(self.retry_limit),
            "wait": self._wait,
            "retry": retry_if_exception_type(TRANSIENT_ERRORS),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def retrying(self) -> Retrying:
        """The retry loop of one operation (connection errors, 5xx, 429; ``Retry-After`` honoured).

        Inside it send only single attempts (:meth:`_request_once`, ``_call(..., retry=False)``): a retrying
        call there would nest loops and multiply the attempts.
        """
        return Retrying(**self._retry_kwargs())

    @staticmethod
    def _request_once(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, no retry, errors as typed exceptions."""
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BackendAIConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    @staticmethod
    async def _arequest_once(
        client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """Async version of :meth:`_request_once`."""
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BackendAIConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    def _send(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request in its own retry loop."""
        for attempt in self.retrying():
            with attempt:
                response = self._request_once(client, method, path, **kwargs)
        return response

    async def _asend(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """Async version of :meth:`_send`."""
        async for attempt in AsyncRetrying(**self._retry_kwargs()):
            with attempt:
                response = await self._arequest_once(client, method, path, **kwargs)
        return response

    def _call(
        self,
        endpoint: tuple[str, str],
        *,
        path_args: Mapping[str, str] | None = None,
        retry: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Call a ``(METHOD, path)`` endpoint of the manager; the JSON answer (``{}`` when empty).

        ``retry=False`` sends one attempt, for use inside an operation's own :meth:`retrying` loop.
        """
        method, path = endpoint
        send = self._send if retry else self._request_once
        response = send(self.client, method, path.format(**(path_args or {})), **kwargs)
        return response.json() if response.content else {}

    async def _acall(
        self,
        endpoint: tuple[str, str],
        *,
        path_args: Mapping[str, str] | None = None,
        retry: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Async version of :meth:`_call`."""
        method, path = endpoint
        client = await self._async_client()
        send = self._asend if retry else self._arequest_once
        response = await send(client, method, path.format(**(path_args or {})), **kwargs)
        return response.json() if response.content else {}
