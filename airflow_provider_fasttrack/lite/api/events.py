"""``/events/session``: server-sent session and kernel events, filtered as the manager filters them.

The manager selects by what the caller's user may see, not by access key: a user's stream carries the sessions of
all of that user's keypairs. A ``sessionName`` other than ``*`` is looked up when the stream opens, among the live
sessions of the caller's user (404 when there is none), and the stream then carries that session only;
``sessionId`` is accepted and ignored, as by the manager 26.9.6; ``groupName`` and ``scope`` narrow further.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from airflow_provider_fasttrack.lite.config import KeypairConfig
from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.events import Event

router = APIRouter()

SCOPES = ("session", "kernel", "*", "session,kernel", "kernel,session")


@dataclass(frozen=True)
class _Selection:
    """Which events one stream sends, as the manager's ``push_session_events`` selects them."""

    viewer: KeypairConfig
    #: the session a ``sessionName`` resolved to; ``None``: every session (``*``)
    session_id: str | None
    group: str
    scope: str

    def visible(self, event: Event, owner_of: Callable[[str], KeypairConfig | None]) -> bool:
        """An admin (a superadmin) sees every session; anyone else every session of their user, all keypairs."""
        if self.viewer.is_admin:
            return True
        owner = owner_of(event.access_key)
        return owner is not None and owner.user_uuid == self.viewer.user_uuid

    def matches(self, event: Event, owner_of: Callable[[str], KeypairConfig | None]) -> bool:
        """Whether the stream sends ``event``; the cheapest, most selective checks first (each event is
        matched against every open stream)."""
        if self.session_id is not None and event.data["sessionId"] != self.session_id:
            return False
        if self.group != "*" and event.group_name != self.group:
            return False
        if self.scope != "*" and event.scope not in self.scope.split(","):
            return False
        return self.visible(event, owner_of)


def _selection(request: Request) -> _Selection:
    params = request.query_params
    viewer = caller(request)
    owner = params.get("ownerAccessKey") or viewer.access_key
    if owner != viewer.access_key and not viewer.is_admin:
        raise LiteError("insufficient-privilege", "You cannot watch another keypair's sessions.")
    scope = params.get("scope") or "*"
    if scope not in SCOPES:
        raise LiteError("invalid-api-params", "scope must be session, kernel or *")
    name = params.get("sessionName") or params.get("name") or "*"
    return _Selection(
        viewer=viewer,
        session_id=None if name == "*" else _resolve(request, viewer, name),
        group=params.get("groupName") or params.get("group") or "*",
        scope=scope,
    )


def _resolve(request: Request, viewer: KeypairConfig, name: str) -> str:
    """The id of the newest live session of this name among the sessions of the caller's user."""
    ctx = context(request)
    rows = [
        row
        for keypair in ctx.config.keypairs
        if keypair.user_uuid == viewer.user_uuid
        and (row := ctx.registry.store.live_session_by_name(name, keypair.access_key)) is not None
    ]
    if not rows:
        raise LiteError("session-not-found", f"No such session: {name}")
    return str(max(rows, key=lambda row: int(row["seq"]))["id"])


@router.get("/events/session")
async def session_events(request: Request) -> StreamingResponse:
    """Stream the events of the sessions the caller's user may see, narrowed by the parameters."""
    ctx = context(request)
    selection = _selection(request)
    drop_after = ctx.faults.drop_stream_after()
    queue = ctx.hub.subscribe(lambda event: selection.matches(event, ctx.config.keypair))

    async def stream() -> AsyncIterator[bytes]:
        sent = 0
        try:
            while drop_after is None or sent < drop_after:
                try:
                    event = await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    continue
                if event is None:
                    return
                yield f"event: {event.name}\ndata: {json.dumps(event.data)}\n\n".encode()
                sent += 1
        finally:
            ctx.hub.unsubscribe(queue)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
