"""``POST /admin/gql``: ``compute_session``, ``compute_session_list`` and ``keypair``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_fasttrack.lite.api.session import json_body
from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.gql import Loaders, execute

router = APIRouter()


@router.post("/admin/gql")
async def admin_gql(request: Request) -> dict[str, Any]:
    """Answer a GraphQL query in the manager's envelope (``{"data": ..., "errors": ...}``)."""
    ctx = context(request)
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise LiteError("invalid-api-params", "The request must have a 'query' string.")
    if ctx.request_stats is not None:
        ctx.request_stats.query(body["query"])
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise LiteError("invalid-api-params", "'variables' must be an object or null.")
    loaders = Loaders(
        caller=caller(request),
        load_session=ctx.store.session,
        load_kernels=ctx.store.kernels,
        list_sessions=ctx.store.sessions,
        load_keypair=ctx.config.keypair,
    )
    return execute(body["query"], variables, loaders)
