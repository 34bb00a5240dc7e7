"""Vfolder routes of the official client: name -> id (``GET /folders/_/id``), deleting files and vfolders.

Every ``/folders/{name}/...`` route also takes the vfolder's id in place of its name (``VFolders.get``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from airflow_provider_fasttrack.lite.api.session import json_body
from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.vfolders import vfolder_uuid

router = APIRouter()


def _field(body: Any, *names: str) -> Any:
    """The first of ``names`` present in a JSON object body."""
    if not isinstance(body, dict):
        return None
    return next((body[name] for name in names if name in body), None)


@router.get("/folders/_/id")
async def folder_id(request: Request) -> dict[str, str]:
    """``{id, name}`` of the caller's vfolder named by the JSON body's ``name`` (or ``vfolder_name``)."""
    ctx = context(request)
    name = _field(await json_body(request), "name", "vfolder_name", "vfolderName")
    if not isinstance(name, str) or not name:
        raise LiteError("invalid-api-params", "name (the vfolder's name) is required")
    row = ctx.vfolders.get(caller(request).access_key, name)
    return {"id": row["id"], "name": row["name"]}


@router.delete("/folders")
async def delete_folder_by_id(request: Request) -> Response:
    """Delete the vfolder whose id is the JSON body's ``id`` (or ``vfolderId``): 204."""
    ctx = context(request)
    folder = _field(await json_body(request), "id", "vfolderId")
    if not isinstance(folder, str) or vfolder_uuid(folder) is None:
        raise LiteError("invalid-api-params", "id (the vfolder's UUID) is required")
    ctx.vfolders.delete(ctx.vfolders.get(caller(request).access_key, folder))
    return Response(status_code=204)


@router.delete("/folders/{name}")
async def delete_folder(request: Request, name: str) -> Response:
    """Delete a vfolder by name (or id): 204."""
    ctx = context(request)
    ctx.vfolders.delete(ctx.vfolders.get(caller(request).access_key, name))
    return Response(status_code=204)


@router.api_route("/folders/{name}/delete-files", methods=["POST", "DELETE"])
@router.api_route("/folders/{name}/delete_files", methods=["POST", "DELETE"])
async def delete_files(request: Request, name: str) -> dict[str, str]:
    """Delete ``files`` (paths inside the vfolder); directories only with ``recursive``."""
    ctx = context(request)
    body = await json_body(request)
    row = ctx.vfolders.get(caller(request).access_key, name)
    files = _field(body, "files")
    if not isinstance(files, list) or not files or not all(isinstance(path, str) for path in files):
        raise LiteError("invalid-api-params", "files must be a list of paths inside the vfolder")
    ctx.vfolders.delete_files(row, files, recursive=bool(_field(body, "recursive")))
    return {"msg": ""}
