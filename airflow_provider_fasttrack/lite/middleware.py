"""ASGI middleware: request counts, fault injection, latency, API version and keypair signature checks, body size
limit."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_fasttrack.lite.auth import verify_request
from airflow_provider_fasttrack.lite.errors import LiteError, problem_response
from airflow_provider_fasttrack.lite.request_stats import RequestStats
from airflow_provider_fasttrack.lite.services import SERVE_PREFIX

__all__ = ["LiteMiddleware", "UNSIGNED_PATHS"]

#: the storage side: token-based, and not under the API's body size limit (tus uploads are large by design)
STORAGE_PATHS = frozenset({"/upload", "/download"})
#: paths answered without a signature: version negotiation and the storage side
UNSIGNED_PATHS = frozenset({"/"}) | STORAGE_PATHS
#: streams cannot be replaced after they started
STREAM_PATHS = ("/events/",)


class LiteMiddleware:
    """Wraps the app: counts (when on), then faults (as a flaky proxy would), then authentication."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found: RequestStats | None = scope["app"].state.lite.request_stats
        if found is None:
            await self._handle(scope, receive, send)
            return
        stats = found
        route: str | None = None

        async def counted_send(message: Message) -> None:
            nonlocal route
            if message["type"] == "http.response.start" and route is None:
                matched = scope.get("route")  # FastAPI's route, once the request was routed
                template = getattr(matched, "path", None) or "(no route)"
                route = f"{scope['method']} {template}"
                stats.started(route, scope.get("client"))
            await send(message)

        try:
            await self._handle(scope, receive, counted_send)
        finally:
            if route is not None:
                stats.ended(route)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = scope["app"].state.lite
        path: str = scope["path"]
        if path.startswith(SERVE_PREFIX):  # a service endpoint: not the manager's API (token-checked there)
            await self.app(scope, receive, send)
            return
        faults = ctx.faults
        fault = None
        if faults.applies_to(path):
            delay = faults.latency()
            if delay:
                await asyncio.sleep(delay)
            fault = faults.error(can_be_after=not path.startswith(STREAM_PATHS))
        if fault is not None and fault.phase == "before":
            await problem_response(fault.error(), fault.headers())(scope, receive, send)
            return
        if path not in UNSIGNED_PATHS:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            raw_path = scope.get("raw_path") or path.encode()
            target = raw_path.decode("latin-1")
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            try:
                keypair = verify_request(ctx.config, headers, scope["method"], target)
            except LiteError as error:
                await problem_response(error)(scope, receive, send)
                return
            scope.setdefault("state", {})["keypair"] = keypair
        if path not in STORAGE_PATHS:
            limit = ctx.config.max_request_body_bytes
            declared = dict(scope["headers"]).get(b"content-length", b"0")
            if not declared.isdigit() or int(declared) > limit:
                await problem_response(_too_large(limit))(scope, receive, send)
                return
            receive = _limited(receive, limit)
        if fault is None:
            await self.app(scope, receive, send)
            return

        async def swallow(message: Message) -> None:
            """The request takes effect; its real answer is dropped."""

        await self.app(scope, receive, swallow)
        await problem_response(fault.error(), fault.headers())(scope, receive, send)


def _too_large(limit: int) -> LiteError:
    return LiteError(
        "request-too-large",
        f"The request body is larger than {limit} bytes (max_request_body_bytes in the server config).",
    )


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that refuses a body (also a chunked one) growing past ``limit`` bytes."""
    seen = 0

    async def limited_receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit)
        return message

    return limited_receive
