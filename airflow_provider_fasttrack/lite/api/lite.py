"""``/lite/...``: signed, backendai-lite-only views: every session ever created, injected faults, request counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError

router = APIRouter()


@router.get("/lite/sessions")
async def all_sessions(request: Request) -> dict[str, Any]:
    """All sessions (every owner's for an admin keypair), in creation order, with timestamps and exit codes."""
    ctx = context(request)
    keypair = caller(request)
    items = []
    for row in ctx.store.sessions():
        if row["access_key"] != keypair.access_key and not keypair.is_admin:
            continue
        kernels = ctx.store.kernels(row["id"])
        items.append(
            {
                "id": row["id"],
                "name": row["name"],
                "access_key": row["access_key"],
                "type": row["type"],
                "image": row["image"],
                "status": row["status"],
                "status_info": row["status_info"],
                "result": row["result"],
                "exit_code": kernels[0]["exit_code"] if kernels else None,
                "requested_slots": row["requested_slots"],
                "scaling_group": row["scaling_group"],
                "priority": row["priority"],
                "tag": row["tag"],
                "dependencies": row["dependencies"],
                "cluster_size": row["cluster_size"],
                "created_at": row["created_at"],
                "started_at": row["started_at"],
                "terminated_at": row["terminated_at"],
            }
        )
    return {"sessions": items, "sandbox": ctx.sandbox_note}


@router.get("/lite/faults")
async def injected_faults(request: Request) -> dict[str, int]:
    """How many requests were seen by fault injection and what was injected."""
    counts = context(request).faults.counts
    keys = ("requests", "error_before", "error_after", "delayed", "dropped_stream")
    return {key: counts[key] for key in keys}


@router.get("/lite/requests")
async def request_counts(request: Request) -> dict[str, Any]:
    """Requests per route and GraphQL kind and client connections since the start (``request_stats: true``);
    without that setting the endpoint does not exist (404)."""
    stats = context(request).request_stats
    if stats is None:
        raise LiteError("object-not-found", "No such API endpoint.")
    return stats.snapshot()
