"""``POST /admin/gql``: ``compute_session`` and ``compute_session_list`` (state after termination)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_fasttrack.lite.api.session import json_body
from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.gql import execute

router = APIRouter()


@router.post("/admin/gql")
async def admin_gql(request: Request) -> dict[str, Any]:
    """Answer a GraphQL query in the manager's envelope (``{"data": ..., "errors": ...}``)."""
    ctx = context(request)
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise LiteError("invalid-api-params", "The request must have a 'query' string.")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise LiteError("invalid-api-params", "'variables' must be an object or null.")
    access_key = caller(request).access_key

    def load_session(session_id: str) -> dict[str, Any] | None:
        row = ctx.store.session(session_id)
        return row if row is not None and row["access_key"] == access_key else None

    def list_sessions() -> list[dict[str, Any]]:
        return [row for row in ctx.store.sessions() if row["access_key"] == access_key]

    return execute(body["query"], variables, load_session, ctx.store.kernels, list_sessions)
