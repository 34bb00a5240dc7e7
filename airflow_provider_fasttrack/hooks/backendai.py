"""``BackendAIHook``: keypair-signed REST calls to a Backend.AI manager (or backendai-lite) over httpx.

One signed request function with retries (sync and async twins), then one short method per endpoint.
Every endpoint is listed once below as a ``(METHOD, path)`` constant.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx
from airflow.sdk import BaseHook
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from airflow_provider_fasttrack.exceptions import (
    BackendAIAPIError,
    BackendAIAuthError,
    BackendAIBadRequestError,
    BackendAIConnectionError,
    BackendAIError,
    BackendAINotFoundError,
    BackendAIRateLimitError,
    BackendAIServerError,
)
from airflow_provider_fasttrack.hooks.connection import CONNECTION_TYPE, DEFAULT_CONN_ID
from airflow_provider_fasttrack.hooks.models import SessionEvent, SessionState
from airflow_provider_fasttrack.mounts import Mount, mounts_to_request
from airflow_provider_fasttrack.signing import BackendAIAuth

__all__ = ["SUPPORTED_API_VERSIONS", "BackendAIAuth", "BackendAIHook", "ConnectionSettings"]

#: API versions this client speaks, oldest first; the newest one the manager also speaks is used.
SUPPORTED_API_VERSIONS = ("v7.20230615", "v8.20240315", "v8.20240915", "v9.20250722")

ROOT = ("GET", "/")
CREATE_SESSION = ("POST", "/session")
GET_SESSION = ("GET", "/session/{session}")
GET_SESSION_LOGS = ("GET", "/session/{session}/logs")
DESTROY_SESSION = ("DELETE", "/session/{session}")
SESSION_EVENTS = ("GET", "/events/session")
ADMIN_GQL = ("POST", "/admin/gql")
CHECK_PRESETS = ("POST", "/resource/check-presets")
LIST_VFOLDERS = ("GET", "/folders")
CREATE_VFOLDER = ("POST", "/folders")
LIST_VFOLDER_FILES = ("GET", "/folders/{name}/files")
REQUEST_UPLOAD = ("POST", "/folders/{name}/request-upload")
REQUEST_DOWNLOAD = ("POST", "/folders/{name}/request-download")

COMPUTE_SESSION_QUERY = (
    "query($id: UUID!) { compute_session(id: $id) { status result status_info status_data "
    "containers { cluster_role status status_data } } }"
)

SESSION_LIST_QUERY = (
    "query($filter: String) { compute_session_list(limit: 100, offset: 0, filter: $filter) "
    "{ items { id name status } } }"
)

_ERRORS_BY_STATUS: dict[int, type[BackendAIAPIError]] = {
    401: BackendAIAuthError,
    403: BackendAIAuthError,
    404: BackendAINotFoundError,
    429: BackendAIRateLimitError,
}


def _version_key(version: str) -> tuple[int, int]:
    major, _, date = version.lstrip("v").partition(".")
    return int(major), int(date or 0)


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


def _error_from_response(response: httpx.Response) -> BackendAIAPIError:
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


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendAIConnectionError | BackendAIServerError | BackendAIRateLimitError)


class BackendAIHook(BaseHook):
    """Talks to a Backend.AI manager through a ``backendai`` connection.

    :param backendai_conn_id: the Airflow connection (endpoint, access key, secret key, defaults).
    :param timeout: seconds for connect/read of one request.
    :param retry_limit: attempts per request on connection errors, 5xx and 429 (never other 4xx).
    :param retry_delay: first back-off in seconds (doubling, with jitter); ``Retry-After`` wins when sent.
    """

    conn_name_attr = "backendai_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONNECTION_TYPE
    hook_name = "Backend.AI"

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
        return f"BackendAIHook(backendai_conn_id={self.backendai_conn_id!r})"

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
            verify=settings.verify_tls,
            auth=BackendAIAuth(settings.access_key, settings.secret_key, self.api_version),
        )

    async def _async_client(self) -> httpx.AsyncClient:
        """The async client of the running event loop, created once per loop and kept (connections reused)."""
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aclient[0] is not loop:
            settings = await self.asettings()
            version = await self.anegotiate_version()
            client = httpx.AsyncClient(
                base_url=settings.endpoint,
                timeout=self.timeout,
                verify=settings.verify_tls,
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
                    base_url=settings.endpoint, timeout=self.timeout, verify=settings.verify_tls
                ) as client:
                    response = await self._asend(client, *ROOT)
                server = response.json().get("version")
            self._api_version = self._choose_version(server)
        return self._api_version

    def _unsigned_root(self) -> dict[str, Any]:
        settings = self.settings
        with httpx.Client(
            base_url=settings.endpoint, timeout=self.timeout, verify=settings.verify_tls
        ) as client:
            return dict(self._send(client, *ROOT).json())

    # -- the one request function (sync and async) --------------------------------------------

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
            "retry": retry_if_exception(_is_retryable),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    @staticmethod
    def _request_once(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, errors as typed exceptions."""
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise BackendAIConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.is_error:
            raise _error_from_response(response)
        return response

    def _send(self, client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in Retrying(**self._retry_kwargs()):
            with attempt:
                response = self._request_once(client, method, path, **kwargs)
        return response

    async def _asend(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        async for attempt in AsyncRetrying(**self._retry_kwargs()):
            with attempt:
                try:
                    response = await client.request(method, path, **kwargs)
                except httpx.TransportError as exc:
                    raise BackendAIConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
                if response.is_error:
                    raise _error_from_response(response)
        return response

    def _call(
        self, endpoint: tuple[str, str], *, path_args: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Any:
        method, path = endpoint
        response = self._send(self.client, method, path.format(**(path_args or {})), **kwargs)
        return response.json() if response.content else {}

    async def _acall(
        self, endpoint: tuple[str, str], *, path_args: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Any:
        method, path = endpoint
        client = await self._async_client()
        response = await self._asend(client, method, path.format(**(path_args or {})), **kwargs)
        return response.json() if response.content else {}

    # -- sessions ------------------------------------------------------------------------------

    def build_session_request(
        self,
        *,
        name: str,
        image: str,
        command: str,
        resources: Mapping[str, Any] | None = None,
        resource_opts: Mapping[str, Any] | None = None,
        mounts: Sequence[Mount] = (),
        environ: Mapping[str, str] | None = None,
        cluster_mode: str = "single-node",
        cluster_size: int = 1,
        project: str | None = None,
        domain: str | None = None,
        scaling_group: str | None = None,
        architecture: str = "x86_64",
        batch_timeout: int | str | None = None,
        bootstrap_script: str | None = None,
        tag: str | None = None,
        dependencies: Sequence[str] = (),
        priority: int | None = None,
    ) -> dict[str, Any]:
        """The ``POST /session`` body of a batch session (enqueue only; an existing live one is reused)."""
        settings = self.settings
        config: dict[str, Any] = {
            "resources": {k: v for k, v in (resources or {}).items()},
            "environ": dict(environ or {}),
            **mounts_to_request(mounts),
        }
        if resource_opts:
            config["resource_opts"] = dict(resource_opts)
        if scaling_group or settings.scaling_group:
            config["scalingGroup"] = scaling_group or settings.scaling_group
        body: dict[str, Any] = {
            "name": name,
            "image": image,
            "architecture": architecture,
            "type": "batch",
            "group": project or settings.project or "default",
            "domain": domain or settings.domain or "default",
            "clusterMode": cluster_mode,
            "clusterSize": cluster_size,
            "enqueueOnly": True,
            "reuseIfExists": True,
            "startupCommand": command,
            "config": config,
        }
        optional = {
            "tag": tag,
            "batchTimeout": batch_timeout,
            "bootstrap_script": bootstrap_script,
            "priority": priority,
            "dependencies": list(dependencies) or None,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body

    def create_session(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Enqueue a session; returns ``sessionId``, ``sessionName``, ``status``, ``created``.

        Safe to retry: a live session of the same name is returned by the manager (``reuseIfExists``), and
        after an answer that was lost (5xx, 429, connection error) a session of this name that did not
        exist before the first attempt is taken as this request's, even if it has already ended.
        """
        name = str(request["name"])
        existed = {item["id"] for item in self.find_sessions(name)}
        for attempt in Retrying(**self._retry_kwargs()):
            with attempt:
                try:
                    return dict(self._request_once(self.client, *CREATE_SESSION, json=dict(request)).json())
                except (BackendAIServerError, BackendAIRateLimitError, BackendAIConnectionError):
                    ours = [item for item in self.find_sessions(name) if item["id"] not in existed]
                    if ours:
                        self.log.info("Session %s was created although the answer was lost", name)
                        return {"sessionId": ours[0]["id"], "sessionName": name, "status": ours[0]["status"]}
                    raise
        raise AssertionError("unreachable")  # Retrying either returns or re-raises

    def find_sessions(self, name: str) -> list[dict[str, Any]]:
        """Sessions of this name, terminated ones included (``compute_session_list``): ``id``, ``status``."""
        data = self._call(
            ADMIN_GQL,
            json={"query": SESSION_LIST_QUERY, "variables": {"filter": f"name == {json.dumps(name)}"}},
        )
        payload = data.get("data", data) if isinstance(data, Mapping) else {}
        return list(((payload or {}).get("compute_session_list") or {}).get("items") or [])

    def get_session(self, session: str) -> dict[str, Any]:
        """Live session info by UUID or name (404 once terminated: use :meth:`get_session_state`)."""
        return dict(self._call(GET_SESSION, path_args={"session": session}))

    def get_session_state(self, session_id: str) -> SessionState:
        """Status, result and exit code by UUID, also after termination (``compute_session`` GraphQL)."""
        data = self._call(ADMIN_GQL, json={"query": COMPUTE_SESSION_QUERY, "variables": {"id": session_id}})
        return self._state_from_gql(session_id, data)

    async def aget_session_state(self, session_id: str) -> SessionState:
        """Async version of :meth:`get_session_state`."""
        data = await self._acall(
            ADMIN_GQL, json={"query": COMPUTE_SESSION_QUERY, "variables": {"id": session_id}}
        )
        return self._state_from_gql(session_id, data)

    @staticmethod
    def _state_from_gql(session_id: str, data: Mapping[str, Any]) -> SessionState:
        payload = data.get("data", data) if isinstance(data, Mapping) else {}
        node = (payload or {}).get("compute_session")
        if not node:
            raise BackendAINotFoundError(404, title=f"session {session_id} not found", path=ADMIN_GQL[1])
        return SessionState.from_compute_session(session_id, node)

    def get_logs(self, session_id: str) -> str:
        """The session's container log text (works after termination, by UUID)."""
        data = self._call(GET_SESSION_LOGS, path_args={"session": session_id})
        return str((data.get("result") or {}).get("logs") or "")

    async def aget_logs(self, session_id: str) -> str:
        """Async version of :meth:`get_logs`."""
        data = await self._acall(GET_SESSION_LOGS, path_args={"session": session_id})
        return str((data.get("result") or {}).get("logs") or "")

    def destroy_session(self, session: str, *, forced: bool = True, recursive: bool = False) -> bool:
        """Terminate a session by UUID or name; False when it was already gone."""
        try:
            self._call(
                DESTROY_SESSION,
                path_args={"session": session},
                params={"forced": str(forced).lower(), "recursive": str(recursive).lower()},
            )
        except BackendAINotFoundError:
            return False
        return True

    async def adestroy_session(self, session: str, *, forced: bool = True, recursive: bool = False) -> bool:
        """Async version of :meth:`destroy_session`."""
        try:
            await self._acall(
                DESTROY_SESSION,
                path_args={"session": session},
                params={"forced": str(forced).lower(), "recursive": str(recursive).lower()},
            )
        except BackendAINotFoundError:
            return False
        return True

    async def astream_session_events(
        self, session_name: str, session_id: str, *, read_timeout: float | None = None
    ) -> AsyncIterator[SessionEvent]:
        """Yield the server-sent events of one session (filtered by ``sessionId`` here: the server ignores it).

        Ends when the stream closes; ``httpx.ReadTimeout`` when nothing arrives within ``read_timeout``.
        """
        method, path = SESSION_EVENTS
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        client = await self._async_client()
        params = {"sessionName": session_name, "scope": "session"}
        async with client.stream(method, path, params=params, timeout=timeout) as response:
            if response.is_error:
                await response.aread()
                raise _error_from_response(response)
            event_name = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event_name = line[6:].strip()
                elif line.startswith("data:") and event_name:
                    event = self._parse_event(event_name, line[5:].strip())
                    if event is not None and event.session_id == session_id:
                        yield event
                elif not line:
                    event_name = ""

    @staticmethod
    def _parse_event(name: str, data: str) -> SessionEvent | None:
        try:
            payload = json.loads(data)
        except ValueError:
            return None
        if not isinstance(payload, dict):
            return None
        exit_code = payload.get("exitCode")
        return SessionEvent(
            name=name,
            session_id=str(payload.get("sessionId") or ""),
            session_name=str(payload.get("sessionName") or ""),
            reason=payload.get("reason"),
            exit_code=int(exit_code) if exit_code is not None else None,
        )

    # -- resources ------------------------------------------------------------------------------

    def check_presets(
        self, *, project: str | None = None, scaling_group: str | None = None
    ) -> dict[str, Any]:
        """What the keypair may use and what is free, per scaling group (``/resource/check-presets``)."""
        body: dict[str, Any] = {"group": project or self.settings.project or "default"}
        if scaling_group or self.settings.scaling_group:
            body["scaling_group"] = scaling_group or self.settings.scaling_group
        return dict(self._call(CHECK_PRESETS, json=body))

    # -- vfolders -------------------------------------------------------------------------------

    def list_vfolders(self) -> list[dict[str, Any]]:
        return list(self._call(LIST_VFOLDERS))

    def create_vfolder(self, name: str, **options: Any) -> dict[str, Any]:
        return dict(self._call(CREATE_VFOLDER, json={"name": name, **options}))

    def ensure_vfolder(self, name: str) -> None:
        """Create the vfolder unless it exists (a concurrent creation is fine)."""
        if any(folder.get("name") == name for folder in self.list_vfolders()):
            return
        try:
            self.create_vfolder(name)
        except BackendAIBadRequestError:
            if not any(folder.get("name") == name for folder in self.list_vfolders()):
                raise

    def list_files(self, vfolder: str, path: str = "") -> list[dict[str, Any]]:
        """Entries of a folder inside a vfolder (``name``, ``type``, ``size``, ...)."""
        data = self._call(LIST_VFOLDER_FILES, path_args={"name": vfolder}, params={"path": path})
        items = data.get("items", data.get("files", [])) if isinstance(data, dict) else data
        if isinstance(items, str):
            items = json.loads(items)
        return list(items or [])

    def upload_file(self, vfolder: str, path: str, content: bytes) -> None:
        """Write ``content`` to ``path`` in the vfolder: request-upload, then tus to the storage proxy.

        A failed PATCH is resumed from the offset the storage proxy reports (``HEAD``), so a retry never
        writes twice or trips over an upload that had in fact completed.
        """
        ticket = self._call(
            REQUEST_UPLOAD, path_args={"name": vfolder}, json={"path": path, "size": len(content)}
        )
        url = self._storage_url(ticket)
        tus = {"Tus-Resumable": "1.0.0"}
        with httpx.Client(timeout=self.timeout, verify=self.settings.verify_tls) as storage:
            for attempt in Retrying(**self._retry_kwargs()):
                with attempt:
                    offset = int(
                        self._send(storage, "HEAD", url, headers=tus).headers.get("Upload-Offset", 0)
                    )
                    if offset >= len(content) and content:
                        return
                    headers = {
                        **tus,
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                    }
                    self._request_once(storage, "PATCH", url, content=content[offset:], headers=headers)

    def download_file(self, vfolder: str, path: str) -> bytes:
        """Read one file of a vfolder (request-download, then GET from the storage proxy)."""
        ticket = self._call(
            REQUEST_DOWNLOAD, path_args={"name": vfolder}, json={"path": path, "archive": False}
        )
        with httpx.Client(timeout=self.timeout, verify=self.settings.verify_tls) as storage:
            return self._send(storage, "GET", self._storage_url(ticket)).content

    def _storage_url(self, ticket: Mapping[str, Any]) -> str:
        url = str(ticket["url"])
        if "://" not in url:
            url = self.settings.endpoint + "/" + url.lstrip("/")
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}token={ticket['token']}"

    # -- Airflow -------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Reach the manager, negotiate the API version and make one signed call."""
        try:
            version = self.api_version
            self.check_presets()
        except BackendAIError as exc:
            return False, str(exc)
        return True, f"Connected to {self.settings.endpoint} (API {version}) as {self.settings.access_key}"

    def webui_session_url(self, session_id: str) -> str | None:
        """The web UI page of a session, when the connection names a web UI."""
        base = self.settings.webui_url
        return f"{base}/session?sessionId={session_id}" if base else None
