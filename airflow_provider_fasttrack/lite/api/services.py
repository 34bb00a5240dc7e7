"""``/services``: model services (create, inspect, list, delete, scale, errors, tokens) and the endpoint proxy."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from airflow_provider_fasttrack.lite.api.session import json_body, json_object_body
from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.services import SERVE_PREFIX, Service

router = APIRouter()

#: hop-by-hop headers and the ones the proxy sets itself (a body's length is passed on: servers read it)
_DROPPED_HEADERS = frozenset(
    {"host", "authorization", "connection", "keep-alive", "transfer-encoding", "te", "upgrade"}
)


def endpoint_url(request: Request, service: Service) -> str | None:
    """The service endpoint on this server, once a replica has been healthy."""
    if not service.ever_healthy:
        return None
    return str(request.base_url).rstrip("/") + SERVE_PREFIX + service.id


def _info(request: Request, service: Service) -> dict[str, Any]:
    return {
        "endpoint_id": service.id,
        "model_id": service.model_id,
        "name": service.name,
        "model_definition_path": service.model_definition_path,
        "desired_session_count": service.replicas,
        "replicas": service.replicas,
        "active_routes": [
            {"route_id": r.route_id, "session_id": r.session_id, "traffic_ratio": 1.0}
            for r in service.healthy()
        ],
        "service_endpoint": endpoint_url(request, service),
        "is_public": service.is_public,
        "runtime_variant": service.runtime_variant,
    }


@router.post("/services")
async def create_service(request: Request) -> JSONResponse:
    """Create a model service; its replicas start at once."""
    ctx = context(request)
    service = await ctx.services.create(caller(request), await json_body(request))
    return JSONResponse(_info(request, service), status_code=201)


@router.get("/services")
async def list_services(request: Request) -> list[dict[str, Any]]:
    """The caller's services."""
    ctx = context(request)
    return [
        {
            "id": s.id,
            "name": s.name,
            "desired_session_count": s.replicas,
            "replicas": s.replicas,
            "active_route_count": len(s.healthy()),
            "service_endpoint": endpoint_url(request, s),
            "is_public": s.is_public,
        }
        for s in ctx.services.owned(caller(request).access_key)
    ]


@router.get("/services/{service_id}")
async def get_service(request: Request, service_id: str) -> dict[str, Any]:
    ctx = context(request)
    return _info(request, ctx.services.get(service_id, caller(request).access_key))


@router.delete("/services/{service_id}")
async def delete_service(request: Request, service_id: str) -> dict[str, Any]:
    """Delete the service; its replicas are destroyed."""
    ctx = context(request)
    await ctx.services.delete(ctx.services.get(service_id, caller(request).access_key))
    return {"success": True}


@router.post("/services/{service_id}/scale")
async def scale_service(request: Request, service_id: str) -> dict[str, Any]:
    ctx = context(request)
    service = ctx.services.get(service_id, caller(request).access_key)
    await ctx.services.scale(service, (await json_object_body(request)).get("to"))
    return {"current_route_count": len(service.routes), "target_count": service.replicas}


@router.get("/services/{service_id}/errors")
async def service_errors(request: Request, service_id: str) -> dict[str, Any]:
    ctx = context(request)
    service = ctx.services.get(service_id, caller(request).access_key)
    return {"errors": list(service.errors), "retries": service.retries}


@router.post("/services/{service_id}/token")
async def service_token(request: Request, service_id: str) -> dict[str, Any]:
    ctx = context(request)
    service = ctx.services.get(service_id, caller(request).access_key)
    return {"token": ctx.services.issue_token(service, await json_body(request))}


@router.api_route(
    SERVE_PREFIX + "{service_id}/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
)
async def proxy(request: Request, service_id: str, path: str) -> Response:
    """The service endpoint: checks the token, then streams the request to a healthy replica and back."""
    ctx = context(request)
    service = ctx.services.services.get(service_id)
    if service is None:
        raise LiteError("object-not-found", f"No such model service endpoint: {service_id}")
    if not ctx.services.token_valid(service, request.headers.get("authorization")):
        raise LiteError(
            "auth-failed", "A valid service token is required (Authorization: BackendAI <token>)."
        )
    replica = ctx.services.pick(service)
    if replica is None:
        raise LiteError("service-unavailable", "No healthy replica of this service.")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
    url = f"http://127.0.0.1:{replica.port}/{path}"
    if request.url.query:
        url += "?" + request.url.query
    upstream = ctx.services.http.build_request(request.method, url, headers=headers, content=request.stream())
    try:
        answer = await ctx.services.http.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        raise LiteError("service-unavailable", f"The replica did not answer: {type(exc).__name__}") from None
    out_headers = {k: v for k, v in answer.headers.items() if k.lower() not in _DROPPED_HEADERS}
    return StreamingResponse(
        answer.aiter_raw(),
        status_code=answer.status_code,
        headers=out_headers,
        background=BackgroundTask(answer.aclose),
    )
