"""``/events/session``: server-sent session and kernel events, filtered as the manager filters them.

The manager selects by what the caller's user may see, not by access key: a user's stream carries the sessions of
all of that user's keypairs. ``sessionId`` picks one session (and overrides the rest); a ``sessionName`` other
than ``*`` picks that name among the sessions of ``ownerAccessKey`` (default: the caller); ``groupName`` and
``scope`` narrow further.
"""

from __future__ import annotations

import asyncio
import json
import uuid
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
    owner: str
    session_name: str
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
        if not self.visible(event, owner_of):
            return False
        if self.group != "*" and event.group_name != self.group:
            return False
        if self.scope != "*" and event.scope not in self.scope.split(","):
            return False
        if self.session_id is not None:  # a session id overrides the name and the owner
            return event.data["sessionId"] == self.session_id
        if self.session_name == "*":
            return True
        return event.session_name == self.session_name and event.access_key == self.owner


def _selection(request: Request) -> _Selection:
    params = request.query_params
    viewer = caller(request)
    owner = params.get("ownerAccessKey") or viewer.access_key
    if owner != viewer.access_key and not viewer.is_admin:
        raise LiteError("insufficient-privilege", "You cannot watch another keypair's sessions.")
    session_id = params.get("sessionId") or None
    if session_id is not None:
        try:
            session_id = str(uuid.UUID(session_id))
        except ValueError:
            raise LiteError("invalid-api-params", "sessionId must be a UUID") from None
    scope = params.get("scope") or "*"
    if scope not in SCOPES:
        raise LiteError("invalid-api-params", "scope must be session, kernel or *")
    return _Selection(
        viewer=viewer,
        owner=owner,
        session_name=params.get("sessionName") or params.get("name") or "*",
        session_id=session_id,
        group=params.get("groupName") or params.get("group") or "*",
        scope=scope,
    )


@router.get("/events/session")
async def session_events(request: Request) -> StreamingResponse:
    """Stream the events of the sessions the caller's user may see, narrowed by the parameters."""
    ctx = context(request)
    selection = _selection(request)
    drop_after = ctx.faults.drop_stream_after()
    queue = ctx.hub.subscribe()

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
                if not selection.matches(event, ctx.config.keypair):
                    continue
                yield f"event: {event.name}\ndata: {json.dumps(event.data)}\n\n".encode()
                sent += 1
        finally:
            ctx.hub.unsubscribe(queue)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
