"""The FastTrack view's pages, served by Airflow's api-server under ``/fasttrack``.

Every page and file of a run needs read access to the DAG's runs, checked by the same dependency as Airflow's own
API (the UI's ``_token`` cookie or a bearer token). Pages carry a Content-Security-Policy without scripts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_provider_fasttrack.exceptions import BackendAIError, BackendAINotFoundError
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.ui.outputs import (
    DOWNLOAD_LIMIT,
    IMAGE_LIMIT,
    REPORT,
    REPORT_LIMIT,
    OutputFile,
    OutputRefused,
    find_listed,
    image_type,
    list_outputs,
    read_all,
    read_limited,
    render_report,
)
from airflow_provider_fasttrack.ui.run_data import TaskOutputs, read_outputs, read_run
from airflow_provider_fasttrack.ui.timeline import PHASES, timeline
from airflow_provider_fasttrack.usage_text import format_hours, format_occupied_slots, format_seconds

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

__all__ = ["app"]

STATIC = Path(__file__).with_name("static")
#: no script, no plugin, no form; styles and images only from the api-server; framed only by the Airflow UI
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]

_templates = Environment(
    loader=PackageLoader("airflow_provider_fasttrack.ui", "templates"), autoescape=select_autoescape(["html"])
)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response of the view, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


_templates.filters["seconds"] = format_seconds
_templates.filters["hours"] = format_hours
_templates.filters["slots"] = format_occupied_slots

READ_RUNS = Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))
router = APIRouter(prefix="/dags/{dag_id}/runs/{run_id}", dependencies=[READ_RUNS])


def _hook(outputs: TaskOutputs) -> BackendAIHook:
    return BackendAIHook(outputs.conn_id, timeout=15.0, retry_limit=2)


def _base(request: Request, dag_id: str, run_id: str) -> str:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{root}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _file_url(base: str, task_id: str, kind: str, name: str) -> str:
    return f"{base}/tasks/{quote(task_id, safe='')}/{kind}/{quote(name, safe='')}"


def _dag_run(session: Any, dag_id: str, run_id: str) -> DagRun:
    from airflow.models.dagrun import DagRun

    found = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    if found is None:
        raise HTTPException(404, f"DAG run {run_id!r} of {dag_id!r} not found")
    return found


def _task_outputs(session: Any, dag_id: str, run_id: str, task_id: str) -> TaskOutputs:
    outputs = read_outputs(session, _dag_run(session, dag_id, run_id))[0].get(task_id)
    if outputs is None:
        raise HTTPException(404, f"task {task_id!r} of this run has no output folder")
    return outputs


def _section(base: str, outputs: TaskOutputs) -> dict[str, Any]:
    """What the page shows of one task's outputs: its report, its images, its other files, or why not."""
    section: dict[str, Any] = {
        "task_id": outputs.task_id,
        "folder": outputs.folder,
        "vfolder": outputs.vfolder,
    }
    hook = _hook(outputs)
    try:
        files = list_outputs(hook, outputs)
        listed = {f.name: f for f in files}
        images = [f for f in files if f.is_image]
        section["images"] = [(f.name, _file_url(base, outputs.task_id, "images", f.name)) for f in images]
        section["files"] = [
            (
                f.name,
                f.size,
                _file_url(base, outputs.task_id, "files", f.name) if f.size <= DOWNLOAD_LIMIT else None,
            )
            for f in files
        ]
        if REPORT in listed:
            section["report"] = _report(hook, base, outputs, listed)
    except BackendAINotFoundError:
        section["note"] = "The task wrote no outputs in this run."
    except OutputRefused as refused:
        section["note"] = f"{REPORT} is not shown: {refused}"
    except BackendAIError as error:
        section["note"] = f"The outputs could not be read from Backend.AI ({type(error).__name__})."
    finally:
        hook.close()
    return section


def _report(hook: BackendAIHook, base: str, outputs: TaskOutputs, listed: dict[str, OutputFile]) -> Markup:
    text = read_all(hook, outputs, REPORT, REPORT_LIMIT).decode("utf-8", errors="replace")

    def listed_name(ref: str) -> OutputFile | None:
        name = ref.removeprefix("./")
        return listed.get(name)

    def image_url(ref: str) -> str | None:
        found = listed_name(ref)
        return _file_url(base, outputs.task_id, "images", found.name) if found and found.is_image else None

    def file_url(ref: str) -> str | None:
        found = listed_name(ref)
        return _file_url(base, outputs.task_id, "files", found.name) if found else None

    return Markup(render_report(text, image_url, file_url))  # noqa: S704 (rendered without raw HTML)


@router.get("", response_class=HTMLResponse)
def run_page(dag_id: str, run_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    dag_run = _dag_run(session, dag_id, run_id)
    records = read_run(session, dag_run)
    base = _base(request, dag_id, run_id)
    root = str(request.scope.get("root_path", "")).rstrip("/")
    page = _templates.get_template("run.html").render(
        dag_id=dag_id,
        run_id=run_id,
        state=None if dag_run.state is None else str(dag_run.state),
        usage=records.usage,
        timeline=timeline(records.usage.sessions),
        phases=PHASES,
        sections=[_section(base, outputs) for _, outputs in sorted(records.outputs.items())],
        unreadable=records.unreadable,
        stylesheet=f"{root}/static/view.css",
    )
    return HTMLResponse(page)


@contextlib.contextmanager
def _missing_as_404() -> Iterator[None]:
    """An output file that is not listed, refused, or gone from the vfolder: 404 with the reason."""
    try:
        yield
    except OutputRefused as refused:
        raise HTTPException(404, str(refused)) from None
    except BackendAINotFoundError:
        raise HTTPException(404, "not found") from None


@router.get("/tasks/{task_id}/images/{name}")
def task_image(dag_id: str, run_id: str, task_id: str, name: str, session: SessionDep) -> Response:
    """A PNG or JPEG of the task's outputs; any other content is refused (415), whatever its name says."""
    outputs = _task_outputs(session, dag_id, run_id, task_id)
    hook = _hook(outputs)
    try:
        with _missing_as_404():
            data = read_all(hook, outputs, name, IMAGE_LIMIT)
    finally:
        hook.close()
    content_type = image_type(data)
    if content_type is None:
        raise HTTPException(415, f"{name!r} is not a PNG or JPEG image")
    return Response(data, media_type=content_type, headers={"Cache-Control": "private, max-age=300"})


@router.get("/tasks/{task_id}/files/{name}")
def task_file(dag_id: str, run_id: str, task_id: str, name: str, session: SessionDep) -> StreamingResponse:
    """A file of the task's outputs as a download (never shown by the browser), at most DOWNLOAD_LIMIT bytes."""
    outputs = _task_outputs(session, dag_id, run_id, task_id)
    hook = _hook(outputs)
    try:
        with _missing_as_404():
            found = find_listed(hook, outputs, name, DOWNLOAD_LIMIT)
    except BaseException:
        hook.close()
        raise

    def chunks() -> Iterator[bytes]:
        try:
            yield from read_limited(hook, outputs, found.name, DOWNLOAD_LIMIT)
        finally:
            hook.close()

    disposition = f"attachment; filename*=UTF-8''{quote(found.name, safe='')}"
    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": disposition, "Cache-Control": "private, no-store"},
    )


def _static(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/css")


app = FastAPI(title="FastTrack view", docs_url=None, redoc_url=None, openapi_url=None)
app.include_router(router)
app.add_api_route("/static/view.css", lambda: _static("view.css"), methods=["GET"], include_in_schema=False)
app.add_middleware(SecurityHeaders)
