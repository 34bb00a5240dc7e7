"""The FastAPI application of backendai-lite."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from airflow_provider_fasttrack.lite.api import (
    admin,
    events,
    folder_ids,
    folders,
    lite,
    resource,
    services,
    session,
)
from airflow_provider_fasttrack.lite.auth import LATEST_API_VERSION, MANAGER_VERSION
from airflow_provider_fasttrack.lite.config import LiteConfig
from airflow_provider_fasttrack.lite.context import LiteContext
from airflow_provider_fasttrack.lite.errors import LiteError, problem_response
from airflow_provider_fasttrack.lite.events import EventHub
from airflow_provider_fasttrack.lite.faults import FaultInjector
from airflow_provider_fasttrack.lite.middleware import LiteMiddleware
from airflow_provider_fasttrack.lite.registry import SessionRegistry
from airflow_provider_fasttrack.lite.request_stats import RequestStats
from airflow_provider_fasttrack.lite.sandbox import namespaces_available
from airflow_provider_fasttrack.lite.services import ServiceManager
from airflow_provider_fasttrack.lite.store import Store
from airflow_provider_fasttrack.lite.vfolders import VFolders

__all__ = ["choose_sandbox", "create_app"]

log = logging.getLogger("backendai_lite")


def choose_sandbox(config: LiteConfig) -> tuple[bool, str]:
    """Whether sessions get private mount namespaces, and a sentence saying which mode and why."""
    if config.sandbox == "none":
        return False, "no namespaces (sandbox: none): sessions see host paths"
    available, why = namespaces_available()
    if available:
        return True, why
    if config.sandbox == "namespace":
        raise RuntimeError(f"sandbox: namespace was requested but is not available here: {why}")
    return False, f"no namespaces ({why}): sessions see host paths"


def create_app(config: LiteConfig, data_dir: Path) -> FastAPI:
    """Build the app; its state lives in ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        use_namespace, note = choose_sandbox(config)
        store = Store(data_dir / "lite.sqlite3")
        hub = EventHub()
        vfolders = VFolders(store, data_dir / "vfolders")
        if removed := vfolders.remove_partial_uploads():
            log.info("removed %d unfinished upload(s) left by the previous run", removed)
        registry = SessionRegistry(config, store, hub, vfolders, data_dir, use_namespace)
        registry.recover()
        model_services = ServiceManager(config, store, registry, vfolders)
        app.state.lite = LiteContext(
            config=config,
            data_dir=data_dir,
            store=store,
            hub=hub,
            vfolders=vfolders,
            registry=registry,
            services=model_services,
            faults=FaultInjector(config.faults),
            sandbox_note=note,
            request_stats=RequestStats() if config.request_stats else None,
        )
        log.info("session filesystem: %s", note)
        registry.start()
        try:
            yield
        finally:
            await model_services.stop()
            await registry.stop()
            store.close()

    app = FastAPI(title="backendai-lite", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(LiteMiddleware)

    @app.exception_handler(LiteError)
    async def lite_error(_: Request, exc: LiteError) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(LiteError("invalid-api-params", str(exc.errors()[:3])))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return problem_response(LiteError("object-not-found", "No such API endpoint."))
        return problem_response(LiteError("generic-bad-request", str(exc.detail), status=exc.status_code))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(LiteError("internal-error", type(exc).__name__))

    @app.get("/")
    async def version() -> dict[str, str]:
        """Version negotiation, no authentication."""
        return {"version": LATEST_API_VERSION, "manager": MANAGER_VERSION}

    for module in (session, services, events, admin, resource, folder_ids, folders, lite):
        app.include_router(module.router)
    return app
