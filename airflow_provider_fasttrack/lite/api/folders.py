"""``/folders`` (list, create, info, files, upload/download tokens) and the storage side (tus upload, download)."""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from airflow_provider_fasttrack.lite.api.session import json_body, json_object_body
from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.vfolders import parse_relpath, partial_upload_path

router = APIRouter()

TUS_VERSION = "1.0.0"


@router.get("/folders")
async def list_folders(request: Request) -> list[dict[str, Any]]:
    """The caller's vfolders."""
    ctx = context(request)
    return [ctx.vfolders.describe(row) for row in ctx.store.vfolders(caller(request).access_key)]


@router.post("/folders")
async def create_folder(request: Request) -> JSONResponse:
    """Create a vfolder."""
    ctx = context(request)
    body = await json_object_body(request)
    row = ctx.vfolders.create(caller(request).access_key, body)
    return JSONResponse(ctx.vfolders.describe(row), status_code=201)


@router.get("/folders/{name}")
async def folder_info(request: Request, name: str) -> dict[str, Any]:
    """One vfolder with its file count and usage."""
    ctx = context(request)
    return ctx.vfolders.info(ctx.vfolders.get(caller(request).access_key, name))


@router.get("/folders/{name}/files")
async def list_files(request: Request, name: str, path: str = "") -> dict[str, Any]:
    """Entries of a directory inside a vfolder."""
    ctx = context(request)
    items = ctx.vfolders.list_files(ctx.vfolders.get(caller(request).access_key, name), path)
    return {"items": items, "files": json.dumps(items)}


@router.post("/folders/{name}/mkdir")
async def make_directory(request: Request, name: str) -> JSONResponse:
    """Create directories (``path``: one or a list; ``parents``, ``exist_ok``), answered as the storage proxy does.

    ``{"results": {"success": [{item, msg}], "failed": [...]}}`` with 200 (all created), 207 (some), 422 (none).
    """
    ctx = context(request)
    body = await json_body(request)
    row = ctx.vfolders.get(caller(request).access_key, name)
    paths = body.get("path") if isinstance(body, dict) else None
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths:
        raise LiteError("invalid-api-params", "path must be a directory path or a list of them")
    paths = [parse_relpath(path, allow_root=False) for path in paths]
    parents = bool(body.get("parents", True))
    exist_ok = bool(body.get("exist_ok", False))
    targets = [(path, ctx.vfolders.resolve(row, path)) for path in paths]
    results: dict[str, list[dict[str, Any]]] = {"success": [], "failed": []}
    for path, target in targets:
        try:
            target.mkdir(parents=parents, exist_ok=exist_ok)
        except FileExistsError:
            results["failed"].append({"item": path, "msg": f"{path!r} already exists"})
        except FileNotFoundError:
            results["failed"].append({"item": path, "msg": f"the parent of {path!r} does not exist"})
        else:
            results["success"].append({"item": path, "msg": None})
    status = 422 if not results["success"] else 207 if results["failed"] else 200
    return JSONResponse({"results": results}, status_code=status)


def _storage_url(request: Request, endpoint: str) -> str:
    return str(request.base_url).rstrip("/") + endpoint


@router.post("/folders/{name}/request-upload")
async def request_upload(request: Request, name: str) -> dict[str, str]:
    """A token and URL for a tus upload of one file."""
    ctx = context(request)
    body = await json_object_body(request)
    row = ctx.vfolders.get(caller(request).access_key, name)
    path = parse_relpath(body.get("path"), allow_root=False)
    size = body.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise LiteError("invalid-api-params", "size (the file's size in bytes) is required")
    target = ctx.vfolders.resolve(row, path)
    if target.is_dir():
        raise LiteError("invalid-api-params", f"{path!r} is a directory")
    lifetime = ctx.config.transfer_token_seconds
    token = ctx.vfolders.new_transfer(row, "upload", path, size, lifetime=lifetime)
    return {"token": token, "url": _storage_url(request, "/upload")}


@router.post("/folders/{name}/request-download")
async def request_download(request: Request, name: str) -> dict[str, str]:
    """A token and URL to download one file (or a directory as a zip archive)."""
    ctx = context(request)
    body = await json_object_body(request)
    row = ctx.vfolders.get(caller(request).access_key, name)
    path = parse_relpath(body.get("path"), allow_root=True)
    archive = bool(body.get("archive"))
    target = ctx.vfolders.resolve(row, path, must_exist=True)
    if target.is_dir() and not archive:
        raise LiteError("invalid-api-params", f"{path!r} is a directory; ask with archive=true")
    lifetime = ctx.config.transfer_token_seconds
    token = ctx.vfolders.new_transfer(row, "download", path, None, archive, lifetime=lifetime)
    return {"token": token, "url": _storage_url(request, "/download")}


def _tus_headers(**extra: str) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    headers.update(extra)
    return headers


@router.options("/upload")
async def tus_options() -> Response:
    """tus capability discovery."""
    return Response(
        status_code=204, headers=_tus_headers(**{"Tus-Version": TUS_VERSION, "Tus-Extension": ""})
    )


@router.head("/upload")
async def tus_head(request: Request, token: str | None = None) -> Response:
    """tus: the current offset of an upload."""
    ctx = context(request)
    grant, row = ctx.vfolders.transfer(token, "upload")
    final = ctx.vfolders.resolve(row, grant.path)
    partial = partial_upload_path(final, token)
    if token in ctx.vfolders.completed_uploads:
        offset = grant.size
    else:
        offset = partial.lstat().st_size if partial.exists() else 0
    return Response(
        status_code=200,
        headers=_tus_headers(**{"Upload-Offset": str(offset), "Upload-Length": str(grant.size)}),
    )


@router.patch("/upload")
async def tus_patch(request: Request, token: str | None = None) -> Response:
    """tus: append a chunk at ``Upload-Offset``; the file appears when the last byte arrives."""
    ctx = context(request)
    grant, row = ctx.vfolders.transfer(token, "upload")
    size = grant.size or 0
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/offset+octet-stream":
        return Response(status_code=415, headers=_tus_headers())
    try:
        offset = int(request.headers.get("upload-offset", ""))
    except ValueError:
        raise LiteError("invalid-api-params", "Upload-Offset header is required") from None
    final = ctx.vfolders.resolve(row, grant.path)
    partial = partial_upload_path(final, token)
    if token in ctx.vfolders.completed_uploads:
        current = size
    else:
        current = partial.lstat().st_size if partial.exists() else 0
    if offset != current:
        return Response(status_code=409, headers=_tus_headers(**{"Upload-Offset": str(current)}))
    chunk = await request.body()
    if token in ctx.vfolders.completed_uploads and not chunk:
        return Response(status_code=204, headers=_tus_headers(**{"Upload-Offset": str(current)}))
    if current + len(chunk) > size:
        raise LiteError("invalid-api-params", "The upload is larger than the announced size.")
    final.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW  # never write through a planted symlink
    with os.fdopen(os.open(partial, flags, 0o644), "ab") as out:
        out.write(chunk)
    new_offset = current + len(chunk)
    if new_offset == size:
        os.replace(partial, final)
        ctx.vfolders.completed_uploads.add(str(token))
    return Response(status_code=204, headers=_tus_headers(**{"Upload-Offset": str(new_offset)}))


@router.get("/download")
async def download(request: Request, token: str | None = None) -> Response:
    """The file (or a zip of the directory) behind a download token.

    A zip holds only files inside the vfolder: see :meth:`VFolders.archive_members`.
    """
    ctx = context(request)
    grant, row = ctx.vfolders.transfer(token, "download")
    target = ctx.vfolders.resolve(row, grant.path, must_exist=True)
    if target.is_dir() and not grant.archive:
        raise LiteError("invalid-api-params", f"{grant.path!r} is a directory; ask with archive=true")
    if target.is_dir():
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for member, fd in ctx.vfolders.archive_members(row, target):
                info = zipfile.ZipInfo.from_file(f"/proc/self/fd/{fd}", member)
                info.compress_type = zipfile.ZIP_DEFLATED
                with os.fdopen(fd, "rb") as source, archive.open(info, "w") as out:
                    shutil.copyfileobj(source, out)
        name = (target.name or row["name"]) + ".zip"
        return Response(
            buffer.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    opened = ctx.vfolders.open_inside(row, target)
    if opened is None:
        raise LiteError("object-not-found", f"{grant.path!r} is not a regular file inside {row['name']}")
    return StreamingResponse(
        _chunks(opened),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{target.name}"',
            "Content-Length": str(os.fstat(opened).st_size),
        },
    )


def _chunks(fd: int, size: int = 1 << 20) -> Iterator[bytes]:
    """The file behind an open descriptor (checked by ``open_inside``), in chunks; closes it at the end."""
    with os.fdopen(fd, "rb") as source:
        while chunk := source.read(size):
            yield chunk
