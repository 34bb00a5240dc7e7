"""``/events/session``: server-sent session and kernel events, filtered as the manager filters them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.events import Event

router = APIRouter()

SCOPES = ("session", "kernel", "*", "session,kernel", "kernel,session")


def _matches(event: Event, session_name: str, owner: str, group: str, scope: str) -> bool:
    if scope != "*" and event.scope not in scope.split(","):
        return False
    if session_name != "*" and event.session_name != session_name:
        return False
    if group != "*" and event.group_name != group:
        return False
    return event.access_key == owner


@router.get("/events/session")
async def session_events(request: Request) -> StreamingResponse:
    """Stream events; the ``sessionId`` parameter is ignored, as on current managers."""
    ctx = context(request)
    params = request.query_params
    session_name = params.get("sessionName") or params.get("name") or "*"
    owner = params.get("ownerAccessKey") or caller(request).access_key
    if owner != caller(request).access_key and not caller(request).is_admin:
        raise LiteError("insufficient-privilege", "You cannot watch another keypair's sessions.")
    group = params.get("groupName") or params.get("group") or "*"
    scope = params.get("scope") or "*"
    if scope not in SCOPES:
        raise LiteError("invalid-api-params", "scope must be session, kernel or *")
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
                if not _matches(event, session_name, owner, group, scope):
                    continue
                yield f"event: {event.name}\ndata: {json.dumps(event.data)}\n\n".encode()
                sent += 1
        finally:
            ctx.hub.unsubscribe(queue)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
