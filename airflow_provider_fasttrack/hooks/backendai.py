"""``BackendAIHook``: the Backend.AI endpoints (sessions, model services, resources, vfolders, storage) over httpx.

The transport (connection settings, signing, API version negotiation, retries, error mapping) is the base hook in
:mod:`airflow_provider_fasttrack.hooks.base`; here is one short method per endpoint, each endpoint listed once
below as a ``(METHOD, path)`` constant. The hook sends what it is given: the operator decides the session
request (:class:`airflow_provider_fasttrack.session_request.SessionRequest`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import IO, Any

import httpx
from airflow.sdk.log import mask_secret

from airflow_provider_fasttrack.exceptions import (
    TRANSIENT_ERRORS,
    BackendAIBadRequestError,
    BackendAIError,
    BackendAINotFoundError,
)
from airflow_provider_fasttrack.hooks.base import (
    SUPPORTED_API_VERSIONS,
    BackendAIBaseHook,
    ConnectionSettings,
    error_from_response,
)
from airflow_provider_fasttrack.hooks.connection import CONNECTION_TYPE, DEFAULT_CONN_ID
from airflow_provider_fasttrack.hooks.models import SessionEvent, SessionState
from airflow_provider_fasttrack.naming import is_uuid
from airflow_provider_fasttrack.signing import BackendAIAuth
from airflow_provider_fasttrack.usage import SessionUsage, session_usage

__all__ = [
    "MODEL_USAGE_MODE",
    "SUPPORTED_API_VERSIONS",
    "BackendAIAuth",
    "BackendAIHook",
    "ConnectionSettings",
    "VFolderUsageModeError",
]

CREATE_SESSION = ("POST", "/session")
GET_SESSION = ("GET", "/session/{session}")
GET_SESSION_LOGS = ("GET", "/session/{session}/logs")
DESTROY_SESSION = ("DELETE", "/session/{session}")
SESSION_EVENTS = ("GET", "/events/session")
ADMIN_GQL = ("POST", "/admin/gql")
CHECK_PRESETS = ("POST", "/resource/check-presets")
LIST_VFOLDERS = ("GET", "/folders")
CREATE_VFOLDER = ("POST", "/folders")
GET_VFOLDER = ("GET", "/folders/{name}")
DELETE_VFOLDER = ("DELETE", "/folders")
LIST_VFOLDER_FILES = ("GET", "/folders/{name}/files")
REQUEST_UPLOAD = ("POST", "/folders/{name}/request-upload")
REQUEST_DOWNLOAD = ("POST", "/folders/{name}/request-download")
CREATE_SERVICE = ("POST", "/services")
LIST_SERVICES = ("GET", "/services")
GET_SERVICE = ("GET", "/services/{service}")
DELETE_SERVICE = ("DELETE", "/services/{service}")
SCALE_SERVICE = ("POST", "/services/{service}/scale")
SERVICE_ERRORS = ("GET", "/services/{service}/errors")
SERVICE_TOKEN = ("POST", "/services/{service}/token")

#: the usage mode of a vfolder that model services serve (Backend.AI refuses a service of any other)
MODEL_USAGE_MODE = "model"
#: bytes per tus PATCH of :meth:`BackendAIHook.upload_file`
UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024

#: seconds a token from :meth:`BackendAIHook.service_token` stays valid unless asked otherwise
SERVICE_TOKEN_SECONDS = 3600

COMPUTE_SESSION_QUERY = (
    "query($id: UUID!) { compute_session(id: $id) { status result status_info status_data "
    "containers { cluster_role status status_data } } }"
)

#: what :func:`airflow_provider_fasttrack.usage.session_usage` reads; ``occupying_slots`` is ``{}`` once the manager
#: has released the session's allocations (at termination), ``requested_slots`` stays
SESSION_USAGE_QUERY = (
    "query($id: UUID!) { compute_session(id: $id) { id name status result created_at terminated_at "
    "status_history occupying_slots requested_slots containers { occupied_slots last_stat } } }"
)

#: ``access_key`` keeps an admin keypair to its own sessions, as a name is unique per owner only
SESSION_LIST_QUERY = (
    "query($filter: String, $access_key: String) { compute_session_list(limit: 100, offset: 0, "
    "filter: $filter, access_key: $access_key) { items { id name status } } }"
)


def _read_range(source: IO[bytes], offset: int, length: int, block: int = 1 << 20) -> Iterator[bytes]:
    """``length`` bytes of ``source`` from ``offset``, a block at a time (a request body that is never whole)."""
    source.seek(offset)
    while length > 0 and (data := source.read(min(block, length))):
        length -= len(data)
        yield data


class VFolderUsageModeError(ValueError):
    """A vfolder exists with another usage mode than the one asked for (Backend.AI cannot change it)."""

    def __init__(self, name: str, found: str, wanted: str) -> None:
        super().__init__(
            f"vfolder {name!r} is a {found!r} folder, not a {wanted!r} one; Backend.AI cannot change a folder's "
            f"usage mode: create a {wanted} folder under another name (usage_mode: {wanted}) and move the files"
        )
        self.name, self.found, self.wanted = name, found, wanted


class BackendAIHook(BackendAIBaseHook):
    """Talks to a Backend.AI manager through a ``backendai`` connection (parameters: :class:`BackendAIBaseHook`)."""

    conn_name_attr = "backendai_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONNECTION_TYPE
    hook_name = "Backend.AI"

    # -- sessions ------------------------------------------------------------------------------

    def create_session(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Enqueue a session from its ``POST /session`` body (:meth:`SessionRequest.body`), posted as it is.

        Returns ``sessionId``, ``sessionName``, ``status``, ``created``. Safe to retry: a live session of the
        same name is returned by the manager (``reuseIfExists``), and after an answer that was lost (5xx, 429,
        connection error) a session of this name that did not exist before the first attempt is taken as this
        request's, even if it has already ended.
        """
        name = str(body["name"])
        existed = {item["id"] for item in self.find_sessions(name)}
        answer_lost = False
        for attempt in self.retrying():
            with attempt:
                if answer_lost:  # look first: the lost answer may have created it (a failed look is retried)
                    ours = [
                        item for item in self._find_sessions(name, retry=False) if item["id"] not in existed
                    ]
                    if ours:
                        self.log.info("Session %s was created although the answer was lost", name)
                        return {"sessionId": ours[0]["id"], "sessionName": name, "status": ours[0]["status"]}
                try:
                    return dict(self._request_once(self.client, *CREATE_SESSION, json=dict(body)).json())
                except TRANSIENT_ERRORS:
                    answer_lost = True
                    raise
        raise AssertionError("unreachable")  # the retry loop either returns or re-raises

    def find_sessions(self, name: str) -> list[dict[str, Any]]:
        """Sessions of this name, terminated ones included (``compute_session_list``): ``id``, ``status``."""
        return self._find_sessions(name, retry=True)

    def _find_sessions(self, name: str, *, retry: bool) -> list[dict[str, Any]]:
        data = self._call(
            ADMIN_GQL,
            retry=retry,
            json={
                "query": SESSION_LIST_QUERY,
                "variables": {
                    "filter": f"name == {json.dumps(name)}",
                    "access_key": self.settings.access_key,
                },
            },
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
        return SessionState.from_compute_session(session_id, _compute_session_node(session_id, data))

    def get_session_usage(self, session_id: str, *, task_id: str, map_index: int = -1) -> SessionUsage:
        """What a session used (times, slots, resource-hours, lifetime stats), by UUID: one GraphQL request,
        not retried, meant for once the session has ended (:func:`~airflow_provider_fasttrack.usage.session_usage`).

        An answer that lacks or garbles a field is a ``ValueError`` naming it.
        """
        data = self._call(
            ADMIN_GQL, retry=False, json={"query": SESSION_USAGE_QUERY, "variables": {"id": session_id}}
        )
        errors = data.get("errors") if isinstance(data, Mapping) else None
        if errors:  # e.g. a manager without one of the fields
            raise BackendAIError(f"the usage of session {session_id} could not be read: {errors[0]}")
        node = _compute_session_node(session_id, data)
        return session_usage(node, task_id=task_id, map_index=map_index)

    def get_logs(self, session_id: str, *, retry: bool = True) -> str:
        """The session's container log text, by UUID.

        Once the session has ended a manager may answer an error (its kernel is gone): after the end ask with
        ``retry=False``, as a retried 5xx only delays the answer.
        """
        data = self._call(GET_SESSION_LOGS, path_args={"session": session_id}, retry=retry)
        return str((data.get("result") or {}).get("logs") or "")

    async def aget_logs(self, session_id: str, *, retry: bool = True) -> str:
        """Async version of :meth:`get_logs`."""
        data = await self._acall(GET_SESSION_LOGS, path_args={"session": session_id}, retry=retry)
        return str((data.get("result") or {}).get("logs") or "")

    def destroy_session(self, session: str, *, forced: bool = True, recursive: bool = False) -> bool:
        """Terminate a session by UUID or name; True only when it was live, False when it had ended or is unknown.

        A manager answers 200 to ``DELETE`` of an ended session by UUID as to a live one, so by UUID the session's
        state is read first (``compute_session``); a name resolves only among live sessions (404 once ended).
        """
        ended = self._has_ended(session)
        if ended and not recursive:
            return False
        try:
            self._call(
                DESTROY_SESSION, path_args={"session": session}, params=_destroy_params(forced, recursive)
            )
        except BackendAINotFoundError:
            return False
        return not ended

    async def adestroy_session(self, session: str, *, forced: bool = True, recursive: bool = False) -> bool:
        """Async version of :meth:`destroy_session`."""
        ended = await self._ahas_ended(session)
        if ended and not recursive:
            return False
        try:
            await self._acall(
                DESTROY_SESSION, path_args={"session": session}, params=_destroy_params(forced, recursive)
            )
        except BackendAINotFoundError:
            return False
        return not ended

    def _has_ended(self, session: str) -> bool:
        """Whether a session given by UUID has ended or is unknown (False for a name)."""
        if not is_uuid(session):
            return False
        try:
            return self.get_session_state(session).is_terminal
        except BackendAINotFoundError:
            return True

    async def _ahas_ended(self, session: str) -> bool:
        """Async version of :meth:`_has_ended`."""
        if not is_uuid(session):
            return False
        try:
            return (await self.aget_session_state(session)).is_terminal
        except BackendAINotFoundError:
            return True

    async def astream_session_events(
        self, session_name: str, session_id: str, *, read_timeout: float | None = None
    ) -> AsyncIterator[SessionEvent]:
        """Yield the server-sent events of one session, selected here by ``sessionId``.

        A manager streams the events of every session the keypair's user may see (all of the user's keypairs,
        for an admin the whole domain) and may ignore the ``sessionId`` parameter, so each event is checked.
        Ends when the stream closes; ``httpx.ReadTimeout`` when nothing arrives within ``read_timeout``.
        """
        method, path = SESSION_EVENTS
        timeout = httpx.Timeout(self.timeout, read=read_timeout)
        client = await self._async_client()
        params = {"sessionName": session_name, "sessionId": session_id, "scope": "session"}
        async with client.stream(method, path, params=params, timeout=timeout) as response:
            if response.is_error:
                await response.aread()
                raise error_from_response(response)
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

    # -- model services -------------------------------------------------------------------------

    def create_service(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create a model service from its ``POST /services`` body, or return the live one of that name.

        Returns the manager's answer (``endpoint_id``, ...) plus ``created``: False when a service of this name
        already existed (it is reused, as the manager refuses a second one of the same name). Safe to retry:
        after an answer that was lost (5xx, 429, connection error) each attempt first looks the name up, so a
        lost answer never leads to a second service.
        """
        name = str(body["name"])
        found = self.find_service(name)
        if found is not None:
            return {**found, "endpoint_id": found["id"], "created": False}
        answer_lost = False
        for attempt in self.retrying():
            with attempt:
                if answer_lost:
                    found = self._find_service(name, retry=False)
                    if found is not None:
                        self.log.info("Service %s was created although the answer was lost", name)
                        return {**found, "endpoint_id": found["id"], "created": True}
                try:
                    answer = self._request_once(self.client, *CREATE_SERVICE, json=dict(body)).json()
                except TRANSIENT_ERRORS:
                    answer_lost = True
                    raise
                except BackendAIBadRequestError:
                    found = self._find_service(name, retry=False)  # created meanwhile by another worker
                    if found is None:
                        raise
                    return {**found, "endpoint_id": found["id"], "created": False}
                return {**answer, "created": True}
        raise AssertionError("unreachable")  # the retry loop either returns or re-raises

    def list_services(self) -> list[dict[str, Any]]:
        """The keypair's services: ``id``, ``name``, ``replicas``, ``service_endpoint``, ``is_public``, ..."""
        return list(self._call(LIST_SERVICES))

    async def alist_services(self) -> list[dict[str, Any]]:
        """Async version of :meth:`list_services`."""
        return list(await self._acall(LIST_SERVICES))

    def find_service(self, name: str) -> dict[str, Any] | None:
        """The service called ``name``, or None."""
        return self._find_service(name, retry=True)

    def _find_service(self, name: str, *, retry: bool) -> dict[str, Any] | None:
        items = self._call(LIST_SERVICES, retry=retry)
        return next((dict(item) for item in items if item.get("name") == name), None)

    def get_service(self, service_id: str) -> dict[str, Any]:
        """``endpoint_id``, ``name``, ``replicas``, ``active_routes``, ``service_endpoint``, ``is_public``, ..."""
        return dict(self._call(GET_SERVICE, path_args={"service": service_id}))

    async def aget_service(self, service_id: str) -> dict[str, Any]:
        """Async version of :meth:`get_service`."""
        return dict(await self._acall(GET_SERVICE, path_args={"service": service_id}))

    def delete_service(self, service_id: str) -> bool:
        """Delete a service and its replicas; False when it was already gone."""
        try:
            self._call(DELETE_SERVICE, path_args={"service": service_id})
        except BackendAINotFoundError:
            return False
        return True

    async def adelete_service(self, service_id: str) -> bool:
        """Async version of :meth:`delete_service`."""
        try:
            await self._acall(DELETE_SERVICE, path_args={"service": service_id})
        except BackendAINotFoundError:
            return False
        return True

    def scale_service(self, service_id: str, replicas: int) -> dict[str, Any]:
        """Ask for ``replicas`` replicas (``POST /services/{id}/scale``)."""
        return dict(self._call(SCALE_SERVICE, path_args={"service": service_id}, json={"to": replicas}))

    def service_errors(self, service_id: str) -> dict[str, Any]:
        """Why replicas failed: ``{"errors": [{"session_id", "error"}], "retries": int}``."""
        return dict(self._call(SERVICE_ERRORS, path_args={"service": service_id}))

    async def aservice_errors(self, service_id: str) -> dict[str, Any]:
        """Async version of :meth:`service_errors`."""
        return dict(await self._acall(SERVICE_ERRORS, path_args={"service": service_id}))

    def service_token(self, service_id: str, *, duration: int = SERVICE_TOKEN_SECONDS) -> str:
        """A short-lived token for a service's endpoint (``Authorization: BackendAI <token>``).

        The token goes to Airflow's secrets masker before it is returned; never log it or return it as XCom.
        """
        data = self._call(SERVICE_TOKEN, path_args={"service": service_id}, json={"duration": duration})
        token = str(data["token"])
        mask_secret(token)
        return token

    async def aservice_token(self, service_id: str, *, duration: int = SERVICE_TOKEN_SECONDS) -> str:
        """Async version of :meth:`service_token`."""
        data = await self._acall(
            SERVICE_TOKEN, path_args={"service": service_id}, json={"duration": duration}
        )
        token = str(data["token"])
        mask_secret(token)
        return token

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
        """The keypair's vfolders: ``id``, ``name``, ``usage_mode`` (``general``, ``model``, ``data``), ..."""
        return list(self._call(LIST_VFOLDERS))

    def vfolder_info(self, name: str) -> dict[str, Any]:
        """One vfolder by name or id (``GET /folders/{name}``): the list item plus ``numFiles``, ``used_bytes``."""
        return dict(self._call(GET_VFOLDER, path_args={"name": name}))

    def create_vfolder(self, name: str, **options: Any) -> dict[str, Any]:
        """``POST /folders``; ``options`` as the manager takes them (``usage_mode``, ``permission``, ``host``)."""
        return dict(self._call(CREATE_VFOLDER, json={"name": name, **options}))

    def delete_vfolder(self, name: str) -> None:
        """Delete a vfolder by name (``DELETE /folders`` with its id; the manager moves it to its trash bin)."""
        folder = self._find_vfolder(name)
        if folder is None:
            raise BackendAINotFoundError(404, title=f"vfolder {name!r} not found", path=DELETE_VFOLDER[1])
        self._call(DELETE_VFOLDER, json={"id": str(folder["id"])})

    def _find_vfolder(self, name: str) -> dict[str, Any] | None:
        return next((dict(f) for f in self.list_vfolders() if f.get("name") == name), None)

    def ensure_vfolder(self, name: str, *, usage_mode: str | None = None) -> dict[str, Any]:
        """The vfolder ``name``, created unless it exists (a concurrent creation is fine).

        :param usage_mode: create it with this usage mode (``model`` for a folder that model services serve),
            and require it of an existing one: Backend.AI cannot change a folder's usage mode, so a folder of
            another mode is :class:`VFolderUsageModeError`. ``None``: the server's default (``general``) for a
            new folder, any mode for an existing one.
        """
        folder = self._find_vfolder(name)
        if folder is None:
            options = {"usage_mode": usage_mode} if usage_mode else {}
            try:
                folder = self.create_vfolder(name, **options)
            except BackendAIBadRequestError:
                folder = self._find_vfolder(name)
                if folder is None:
                    raise
        found = str(folder.get("usage_mode") or "general")
        if usage_mode and found != usage_mode:
            raise VFolderUsageModeError(name, found, usage_mode)
        return folder

    def list_files(self, vfolder: str, path: str = "") -> list[dict[str, Any]]:
        """Entries of a folder inside a vfolder (``name``, ``type``, ``size``, ...).

        A folder that is not there raises :class:`BackendAINotFoundError`: the manager's storage proxy refuses to
        list it with 400 ``vfolder-operation-failed``.
        """
        try:
            data = self._call(LIST_VFOLDER_FILES, path_args={"name": vfolder}, params={"path": path})
        except BackendAIBadRequestError as error:
            if error.kind != "vfolder-operation-failed":
                raise
            raise BackendAINotFoundError(
                error.status_code, error.type, error.title, error.msg, error.data, error.method, error.path
            ) from error
        items = data.get("items", data.get("files", [])) if isinstance(data, dict) else data
        if isinstance(items, str):
            items = json.loads(items)
        return list(items or [])

    def upload_file(
        self,
        vfolder: str,
        path: str,
        content: bytes | os.PathLike[str] | IO[bytes],
        *,
        chunk_size: int = UPLOAD_CHUNK_BYTES,
    ) -> None:
        """Write ``content`` (bytes, a local file, or an open binary file, read as it goes) to ``path`` in the vfolder.

        request-upload, then tus to the storage proxy in PATCHes of at most ``chunk_size`` bytes, so a large file
        is never held in memory. A failed PATCH is resumed from the offset the storage proxy reports (``HEAD``),
        so a retry never writes twice or trips over an upload that had in fact completed.
        """
        with contextlib.ExitStack() as stack:
            if isinstance(content, bytes):
                source: IO[bytes] = io.BytesIO(content)
            elif isinstance(content, os.PathLike):
                source = stack.enter_context(open(content, "rb"))  # noqa: SIM115 (closed by the stack)
            else:
                source = content
            size = source.seek(0, os.SEEK_END)
            ticket = self._call(
                REQUEST_UPLOAD, path_args={"name": vfolder}, json={"path": path, "size": size}
            )
            url = self._storage_url(ticket)
            storage = stack.enter_context(httpx.Client(timeout=self.timeout, verify=self.settings.verify_tls))
            self._tus_upload(storage, url, source, size, chunk_size)

    def _tus_upload(
        self, storage: httpx.Client, url: str, source: IO[bytes], size: int, chunk_size: int
    ) -> None:
        tus = {"Tus-Resumable": "1.0.0"}
        for attempt in self.retrying():  # the one loop: HEAD and PATCH are single attempts inside it
            with attempt:
                head = self._request_once(storage, "HEAD", url, headers=tus)
                offset = int(head.headers.get("Upload-Offset", 0))
                if offset >= size and size:
                    return
                while True:  # an empty file still needs its one (empty) PATCH
                    length = min(chunk_size, size - offset)
                    headers = {
                        **tus,
                        "Upload-Offset": str(offset),
                        "Content-Length": str(length),
                        "Content-Type": "application/offset+octet-stream",
                    }
                    body = _read_range(source, offset, length)
                    answer = self._request_once(storage, "PATCH", url, content=body, headers=headers)
                    offset = int(answer.headers.get("Upload-Offset", offset + length))
                    if offset >= size:
                        return

    def download_file(self, vfolder: str, path: str) -> bytes:
        """Read one file of a vfolder (request-download, then GET from the storage proxy)."""
        ticket = self._call(
            REQUEST_DOWNLOAD, path_args={"name": vfolder}, json={"path": path, "archive": False}
        )
        with httpx.Client(timeout=self.timeout, verify=self.settings.verify_tls) as storage:
            return self._send(storage, "GET", self._storage_url(ticket)).content

    def iter_file(self, vfolder: str, path: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Read one file of a vfolder in chunks as the storage proxy sends it (never whole in memory)."""
        ticket = self._call(
            REQUEST_DOWNLOAD, path_args={"name": vfolder}, json={"path": path, "archive": False}
        )
        url = self._storage_url(ticket)
        with (
            httpx.Client(timeout=self.timeout, verify=self.settings.verify_tls) as storage,
            storage.stream("GET", url) as response,
        ):
            if response.is_error:
                response.read()
                raise error_from_response(response)
            yield from response.iter_bytes(chunk_size)

    def _storage_url(self, ticket: Mapping[str, Any]) -> str:
        url = str(ticket["url"])
        if "://" not in url:
            url = self.settings.endpoint + "/" + url.lstrip("/")
        token = str(ticket["token"])
        mask_secret(token)  # httpx logs request URLs; Airflow's masker keeps the token out of task logs
        separator = "&" if "?" in url else "?"
        return f"{url}{separator}token={token}"

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


def _compute_session_node(session_id: str, data: Any) -> dict[str, Any]:
    """The ``compute_session`` node of a GraphQL answer; a session the answer lacks is not found."""
    payload = data.get("data", data) if isinstance(data, Mapping) else {}
    node = (payload or {}).get("compute_session")
    if not node:
        raise BackendAINotFoundError(404, title=f"session {session_id} not found", path=ADMIN_GQL[1])
    return dict(node)


def _destroy_params(forced: bool, recursive: bool) -> dict[str, str]:
    return {"forced": str(forced).lower(), "recursive": str(recursive).lower()}
