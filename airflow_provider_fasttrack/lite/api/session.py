"""``/session``: create, inspect, logs, destroy (and the 501 of restart)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.session_spec import parse_session_spec
from airflow_provider_fasttrack.lite.store import DEAD_STATUSES
from airflow_provider_fasttrack.naming import is_uuid

router = APIRouter()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{text[:20]}... does not fit a 64-bit integer")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit a floating-point number")
    return value


async def json_body(request: Request) -> Any:
    """The JSON body, or 400 ``invalid-api-params``.

    Strict JSON: ``NaN``/``Infinity``, numbers that overflow to infinity or 64 bits, nesting deeper than the parser can
    follow and unpaired UTF-16 surrogates (text no file system or database takes) are refused.
    """
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite, parse_int=_int64)
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise LiteError("invalid-api-params", "Malformed request body (nested too deeply).") from None
    except UnicodeError:
        raise LiteError("invalid-api-params", "Malformed request body (not UTF-8 text).") from None
    except ValueError as exc:
        raise LiteError("invalid-api-params", f"Malformed request body (not JSON): {exc}") from None
    return body


async def json_object_body(request: Request) -> dict[str, Any]:
    """The JSON body, which must be an object; 400 ``invalid-api-params`` otherwise."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise LiteError("invalid-api-params", "The request body must be a JSON object.")
    return body


def _created(row: dict[str, Any], created: bool) -> dict[str, Any]:
    return {
        "sessionId": row["id"],
        "sessionName": row["name"],
        "status": row["status"],
        "servicePorts": [],
        "created": created,
    }


@router.post("/session")
@router.post("/session/_/create")
async def create_session(request: Request) -> JSONResponse:
    """Create (or reuse) a session."""
    ctx = context(request)
    spec = parse_session_spec(ctx.config, await json_body(request))
    row, created = await ctx.registry.create(caller(request), spec)
    return JSONResponse(_created(row, created), status_code=201 if created else 200)


@router.get("/session/{session_ref}")
async def get_session(request: Request, session_ref: str) -> dict[str, Any]:
    """Information on a live session (404 once terminated or cancelled), with the manager's legacy keys: no
    session name, type, cluster or scaling group (GraphQL's ``compute_session`` has them). The manager writes
    the slots, ``environ`` and ``resourceOpts`` as Python reprs; backendai-lite keeps them JSON objects, and has
    no project ids (``groupId`` is null)."""
    ctx = context(request)
    row = ctx.registry.live_session(session_ref, caller(request).access_key)
    image = str(row["image"])
    head = image.split("/", 1)[0]
    created = datetime.fromisoformat(row["created_at"])
    return {
        "age": int((datetime.now(UTC) - created).total_seconds() * 1000),
        "domainName": row["domain_name"],
        "groupId": None,
        "userId": caller(request).user_uuid,
        "lang": image,
        "image": image,
        "architecture": row["architecture"],
        "registry": head if "/" in image and "." in head else None,
        "tag": row["tag"],
        "containerId": None,
        "occupiedSlots": row["occupied_slots"],
        "occupyingSlots": row["occupied_slots"],
        "requestedSlots": row["requested_slots"],
        "occupiedShares": {},
        "environ": row["config"].get("_lite", {}).get("environ", {}),
        "resourceOpts": row["config"].get("_lite", {}).get("resource_opts", {}),
        "status": row["status"],
        "statusInfo": row["status_info"] or "None",
        "statusData": row["status_data"],
        "creationTime": row["created_at"],
        "terminationTime": row["terminated_at"],
        "numQueriesExecuted": 0,
        "lastStat": {},
        "idleChecks": {},
    }


@router.get("/session/{session_ref}/logs")
async def get_logs(request: Request, session_ref: str, kernel_id: str | None = None) -> dict[str, Any]:
    """Container logs; by UUID they stay readable after termination."""
    ctx = context(request)
    row = ctx.registry.any_session(session_ref, caller(request).access_key)
    return {"result": {"logs": ctx.registry.logs(row, kernel_id)}}


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


@router.delete("/session/{session_ref}")
async def destroy_session(request: Request, session_ref: str) -> dict[str, Any]:
    """Terminate (or cancel) a session; ``recursive`` also ends the sessions depending on it.

    As on the manager, a session that has already ended answers 200 ``{"stats": {}}`` by UUID (a name resolves
    only among live sessions: 404), and a UUID that is no session of the caller's (another's, or none at all)
    answers 403 ``not-enough-permission``: the manager checks the caller's permission on it first.
    """
    ctx = context(request)
    access_key = caller(request).access_key
    if is_uuid(session_ref) and not ctx.registry.owns_session(session_ref, access_key):
        raise LiteError("not-enough-permission", f"No permission to destroy session {session_ref}.")
    row = ctx.registry.any_session(session_ref, access_key)
    ended = row["status"] in DEAD_STATUSES
    status = await ctx.registry.destroy(
        row,
        forced=_flag(request.query_params.get("forced")),
        recursive=_flag(request.query_params.get("recursive")),
    )
    return {"stats": {} if ended else {"status": status}}


@router.patch("/session/{session_ref}")
async def restart_session(request: Request, session_ref: str) -> None:
    """Restarting is not implemented by current managers either."""
    raise LiteError(
        "not-implemented", "Restarting a session is not supported; destroy it and create a new one."
    )
