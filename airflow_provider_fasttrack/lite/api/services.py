"""``/services``: model services (create, inspect, list, delete, scale, errors, tokens) and the endpoint proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from airflow_provider_fasttrack.lite.api.session import json_body, json_object_body
from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.services import SERVE_PREFIX, Service, replica_url

router = APIRouter()

#: hop-by-hop headers (RFC 9110, 7.6.1), never passed on; those a ``Connection`` header names are dropped too
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
#: the caller's headers the replica does not get: the service token, the host, and forwarding claims that the
#: proxy makes itself (a body's length is passed on: servers read it)
_REQUEST_DROPPED = _HOP_BY_HOP | {
    b"host",
    b"authorization",
    b"forwarded",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-forwarded-proto",
    b"x-real-ip",
}
#: the replica's headers the caller does not get: this server writes its own ``Server`` and ``Date``
_RESPONSE_DROPPED = _HOP_BY_HOP | {b"server", b"date"}


def _passed(headers: list[tuple[bytes, bytes]], dropped: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    """``headers`` less the ``dropped`` ones and those their ``Connection`` header names."""
    named = {
        name.strip().lower()
        for key, value in headers
        if key.lower() == b"connection"
        for name in value.split(b",")
    }
    return [(k, v) for k, v in headers if k.lower() not in dropped and k.lower() not in named]


def _forwarding(request: Request) -> list[tuple[bytes, bytes]]:
    """What a reverse proxy tells the replica about the caller: its address, the host it asked for, the scheme."""
    address = request.client.host if request.client else "unknown"
    host = request.headers.get("host", request.url.netloc)
    scheme = request.url.scheme
    node = f'"[{address}]"' if ":" in address else address
    quoted_host = host.replace("\\", "\\\\").replace('"', '\\"')
    values = {
        "x-forwarded-for": address,
        "x-forwarded-host": host,
        "x-forwarded-proto": scheme,
        "forwarded": f'for={node};host="{quoted_host}";proto={scheme}',
    }
    return [(k.encode(), v.encode("latin-1", "replace")) for k, v in values.items()]


def _target(request: Request, service_id: str) -> bytes:
    """The request's path below ``/serve/<id>`` and its query, exactly as the caller encoded them."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    parts = raw.split(b"/", 3)  # b"", b"serve", the id, the rest
    if len(parts) < 4 or unquote(parts[2].decode("latin-1")) != service_id:
        raise LiteError("object-not-found", f"No such model service endpoint: {service_id}")
    target = b"/" + parts[3]
    query: bytes = request.scope.get("query_string", b"")
    return target + b"?" + query if query else target


async def _relay(answer: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    finally:
        await answer.aclose()


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
    headers = _passed(request.headers.raw, _REQUEST_DROPPED) + _forwarding(request)
    url = replica_url(replica.port, _target(request, service_id))
    http = service.http
    upstream = http.build_request(request.method, url, headers=headers, content=request.stream())
    try:
        answer = await http.send(upstream, stream=True)
    except httpx.PoolTimeout:
        raise LiteError(
            "service-unavailable", "Every connection to this service's replicas is busy; try again later."
        ) from None
    except httpx.HTTPError as exc:
        raise LiteError("service-unavailable", f"The replica did not answer: {type(exc).__name__}") from None
    response = StreamingResponse(_relay(answer), status_code=answer.status_code)
    response.raw_headers = _passed(answer.headers.raw, _RESPONSE_DROPPED)
    return response
