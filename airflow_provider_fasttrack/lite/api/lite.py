"""``GET /lite/sessions``: a signed, backendai-lite-only view of every session ever created."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_fasttrack.lite.context import caller, context

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
