"""Virtual folders: directories under ``<data dir>/vfolders/<access key>/<name>``, plus transfer tokens."""

from __future__ import annotations

import re
import secrets
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.store import Store

__all__ = ["VFolders"]

VFOLDER_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def vfolder_uuid(text: str) -> str | None:
    """The canonical vfolder id ``text`` names, or ``None`` when it is not a UUID (then it is a name)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def now_iso() -> str:
    """The current UTC time in ISO-8601."""
    return datetime.now(UTC).isoformat()


class VFolders:
    """VFolder metadata in the store, contents on disk."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        #: upload tokens whose file is complete (a repeated final PATCH is answered, not appended)
        self.completed_uploads: set[str] = set()

    def path(self, row: dict[str, Any]) -> Path:
        """The directory holding a vfolder's files."""
        return self.root / row["access_key"] / row["name"]

    def create(self, access_key: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a vfolder (``POST /folders``)."""
        name = body.get("name")
        if not isinstance(name, str) or not VFOLDER_NAME_RE.match(name) or name in (".", ".."):
            raise LiteError("invalid-api-params", "name must be 1-64 letters, digits, '-', '_' or '.'")
        if vfolder_uuid(name) is not None:
            raise LiteError(
                "invalid-api-params", "name must not be a UUID: /folders/{uuid} addresses a vfolder by id"
            )
        if self.store.vfolder(name, access_key) is not None:
            raise LiteError("vfolder-already-exists", f"A virtual folder named {name!r} already exists.")
        permission = str(body.get("permission") or "rw")
        if permission not in ("ro", "rw", "wd"):
            raise LiteError("invalid-api-params", "permission must be ro, rw or wd")
        row = {
            "id": str(uuid.uuid4()),
            "name": name,
            "access_key": access_key,
            "host": str(body.get("host") or "local:volume1"),
            "usage_mode": str(body.get("usage_mode") or body.get("usageMode") or "general"),
            "permission": permission,
            "created_at": now_iso(),
        }
        self.path(row).mkdir(parents=True, exist_ok=True)
        self.store.insert_vfolder(row)
        return row

    def get(self, access_key: str, name: str) -> dict[str, Any]:
        """A vfolder by name or by id, as the manager resolves ``/folders/{name}``; 404 ``vfolder-not-found``.

        A UUID (in any form: the official client sends ``id.hex``) is an id, anything else a name.
        """
        folder_id = vfolder_uuid(name)
        if folder_id is None:
            row = self.store.vfolder(name, access_key)
        else:
            row = self.store.vfolder_by_id(folder_id)
            row = row if row is not None and row["access_key"] == access_key else None
        if row is None:
            raise LiteError("vfolder-not-found", f"No such virtual folder: {name!r}")
        return row

    def delete(self, row: dict[str, Any]) -> None:
        """Remove a vfolder and its files at once (no trash bin)."""
        shutil.rmtree(self.path(row), ignore_errors=True)
        self.store.delete_vfolder(row["id"])

    def delete_files(self, row: dict[str, Any], paths: list[str], recursive: bool) -> None:
        """Delete files (and, with ``recursive``, directories) inside a vfolder."""
        targets = [self.resolve(row, path, must_exist=True) for path in paths]
        for path, target in zip(paths, targets, strict=True):
            if target == self.path(row):
                raise LiteError("invalid-api-params", "The root of a virtual folder cannot be deleted.")
            if target.is_dir() and not target.is_symlink() and not recursive:
                raise LiteError(
                    "invalid-api-params", f"{path!r} is a directory; delete it with recursive=true"
                )
        for target in targets:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def describe(self, row: dict[str, Any]) -> dict[str, Any]:
        """The manager's vfolder item."""
        return {
            "id": row["id"],
            "name": row["name"],
            "host": row["host"],
            "usage_mode": row["usage_mode"],
            "permission": row["permission"],
            "created_at": row["created_at"],
            "is_owner": True,
            "user": row["access_key"],
            "group": None,
            "creator": row["access_key"],
            "type": "user",
            "ownership_type": "user",
            "status": "ready",
            "cloneable": False,
            "max_files": 0,
            "max_size": None,
        }

    def info(self, row: dict[str, Any]) -> dict[str, Any]:
        """``GET /folders/{name}``: the item plus file count and usage."""
        base = self.path(row)
        files = [p for p in base.rglob("*") if p.is_file()]
        info = self.describe(row)
        info.update(numFiles=len(files), used_bytes=sum(p.stat().st_size for p in files))
        return info

    def resolve(self, row: dict[str, Any], relpath: str, *, must_exist: bool = False) -> Path:
        """A path inside the vfolder; refuses anything that escapes it."""
        clean = PurePosixPath("/" + (relpath or "").strip()).parts[1:]
        if ".." in clean:
            raise LiteError("invalid-api-params", f"path {relpath!r} must not contain '..'")
        base = self.path(row)
        target = base.joinpath(*clean) if clean else base
        resolved = target.resolve()
        if resolved != base.resolve() and base.resolve() not in resolved.parents:
            raise LiteError("invalid-api-params", f"path {relpath!r} leaves the virtual folder")
        if must_exist and not target.exists():
            raise LiteError("object-not-found", f"No such file or directory in {row['name']}: {relpath!r}")
        return target

    def list_files(self, row: dict[str, Any], relpath: str) -> list[dict[str, Any]]:
        """Entries of a directory in the vfolder."""
        target = self.resolve(row, relpath, must_exist=True)
        if not target.is_dir():
            raise LiteError("invalid-api-params", f"{relpath!r} is not a directory")
        items = []
        for entry in sorted(target.iterdir()):
            stat = entry.lstat()
            kind = "SYMLINK" if entry.is_symlink() else ("DIRECTORY" if entry.is_dir() else "FILE")
            items.append(
                {
                    "name": entry.name,
                    "type": kind,
                    "size": stat.st_size,
                    "mode": oct(stat.st_mode & 0o7777),
                    "created": datetime.fromtimestamp(stat.st_ctime, UTC).isoformat(),
                    "modified": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
                }
            )
        return items

    def new_transfer(
        self, row: dict[str, Any], kind: str, path: str, size: int | None, archive: bool = False
    ) -> str:
        """Issue an upload or download token."""
        token = secrets.token_urlsafe(24)
        self.store.insert_transfer(
            {
                "token": token,
                "kind": kind,
                "vfolder_id": row["id"],
                "path": path,
                "size": size,
                "archive": int(archive),
                "created_at": now_iso(),
            }
        )
        return token

    def transfer(self, token: str | None, kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The transfer and vfolder for a token; 404 when unknown."""
        record = self.store.transfer(token or "", kind)
        row = self.store.vfolder_by_id(record["vfolder_id"]) if record else None
        if record is None or row is None:
            raise LiteError("object-not-found", "Unknown or expired transfer token.")
        return record, row
