"""Virtual folders: directories under ``<data dir>/vfolders/<access key>/<name>``, plus transfer tokens."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.store import Store

__all__ = ["MAX_NAME_BYTES", "MAX_PATH_BYTES", "USAGE_MODES", "Transfer", "VFolders", "parse_relpath"]

VFOLDER_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: Backend.AI's vfolder usage modes; a model service serves only a ``model`` folder
USAGE_MODES = ("general", "model", "data")
#: longest file or directory name (the usual NAME_MAX) and longest path inside a vfolder, in UTF-8 bytes
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


def parse_relpath(value: Any, *, allow_root: bool, field: str = "path") -> str:
    """A path inside a vfolder as a request gives it, checked; ``""`` is the vfolder itself.

    Refused with 400 ``invalid-api-params``: a non-string, a NUL, text that is not UTF-8, ``..``, a name longer
    than ``MAX_NAME_BYTES``, a path longer than ``MAX_PATH_BYTES`` and (unless ``allow_root``) an empty path.
    """
    if not isinstance(value, str):
        raise LiteError("invalid-api-params", f"{field} (a path inside the virtual folder) is required")
    if "\0" in value:
        raise LiteError("invalid-api-params", f"{field} must not contain a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise LiteError("invalid-api-params", f"{field} is not valid UTF-8 text") from None
    if size > MAX_PATH_BYTES:
        raise LiteError("invalid-api-params", f"{field} is longer than {MAX_PATH_BYTES} bytes")
    parts = PurePosixPath("/" + value.strip()).parts[1:]
    if ".." in parts:
        raise LiteError("invalid-api-params", f"{field} {value!r} must not contain '..'")
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts):
        raise LiteError("invalid-api-params", f"{field} has a name longer than {MAX_NAME_BYTES} bytes")
    if not parts and not allow_root:
        raise LiteError("invalid-api-params", f"{field} must name a file or directory inside the folder")
    return "/".join(parts)


@dataclass(frozen=True)
class Transfer:
    """What one upload or download token allows: one operation on one path of one vfolder, until it expires."""

    kind: str
    vfolder_id: str
    path: str
    size: int | None
    archive: bool
    expires_at: float  # time.monotonic()


def vfolder_uuid(text: str) -> str | None:
    """The canonical vfolder id ``text`` names, or ``None`` when it is not a UUID (then it is a name)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def now_iso() -> str:
    """The current UTC time in ISO-8601."""
    return datetime.now(UTC).isoformat()


#: the name part that marks a file still being uploaded: ``<name>.lite-upload-<first 8 characters of the token>``
PARTIAL_UPLOAD_MARK = ".lite-upload-"
_PARTIAL_UPLOAD = re.compile(re.escape(PARTIAL_UPLOAD_MARK) + r"[\w-]{8}$")


def partial_upload_path(final: Path, token: str | None) -> Path:
    """Where an upload's bytes collect until the last one arrives (then it is renamed to ``final``)."""
    return final.with_name(f"{final.name}{PARTIAL_UPLOAD_MARK}{str(token)[:8]}")


class VFolders:
    """VFolder metadata in the store, contents on disk."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        #: upload tokens whose file is complete (a repeated final PATCH is answered, not appended)
        self.completed_uploads: set[str] = set()
        #: live transfer tokens; kept in memory only, so none survives a restart
        self._transfers: dict[str, Transfer] = {}

    def remove_partial_uploads(self) -> int:
        """Delete the unfinished uploads a previous run left: their tokens died with it, so none can finish."""
        removed = 0
        for parent, _dirs, files in os.walk(self.root):
            for name in files:
                if _PARTIAL_UPLOAD.search(name):
                    Path(parent, name).unlink(missing_ok=True)
                    removed += 1
        return removed

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
        usage_mode = body.get("usage_mode") or "general"
        if usage_mode not in USAGE_MODES:
            raise LiteError("invalid-api-params", f"usage_mode must be one of {', '.join(USAGE_MODES)}")
        row = {
            "id": str(uuid.uuid4()),
            "name": name,
            "access_key": access_key,
            "host": str(body.get("host") or "local:volume1"),
            "usage_mode": usage_mode,
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
        for token in [token for token, grant in self._transfers.items() if grant.vfolder_id == row["id"]]:
            del self._transfers[token]
            self.completed_uploads.discard(token)

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
        """``GET /folders/{name}``: the item plus file count and usage (symlinks are not followed)."""
        sizes = [
            entry.st_size
            for parent, _, names in os.walk(self.path(row))
            for entry in map(os.lstat, (os.path.join(parent, name) for name in names))
            if stat.S_ISREG(entry.st_mode)
        ]
        info = self.describe(row)
        info.update(numFiles=len(sizes), used_bytes=sum(sizes))
        return info

    def resolve(self, row: dict[str, Any], relpath: str, *, must_exist: bool = False) -> Path:
        """A path inside the vfolder (see :func:`parse_relpath`); refuses anything that escapes it."""
        clean = parse_relpath(relpath, allow_root=True)
        base = self.path(row)
        target = base / clean if clean else base
        try:
            resolved = target.resolve()
            exists = target.exists()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a name the filesystem refuses
            raise LiteError("invalid-api-params", f"path {relpath!r} cannot be resolved: {exc}") from None
        if not self.contains(row, resolved):
            raise LiteError("invalid-api-params", f"path {relpath!r} leaves the virtual folder")
        if must_exist and not exists:
            raise LiteError("object-not-found", f"No such file or directory in {row['name']}: {relpath!r}")
        return target

    def contains(self, row: dict[str, Any], resolved: Path) -> bool:
        """Whether a resolved (symlink-free) path lies inside the vfolder."""
        base = self.path(row).resolve()
        return resolved == base or base in resolved.parents

    def open_inside(self, row: dict[str, Any], path: Path) -> int | None:
        """A read-only descriptor of the regular file ``path`` resolves to, if that lies inside the vfolder.

        The check is made on the opened file itself, so a symlink swapped in after a check cannot redirect it.
        """
        try:
            fd = os.open(path.resolve(strict=True), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except (OSError, RuntimeError):
            return None
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not self.contains(row, real) or not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return fd

    def archive_members(self, row: dict[str, Any], directory: Path) -> Iterator[tuple[str, int]]:
        """``(name in the zip, open descriptor)`` of every file a directory download holds.

        Regular files, and symlinks to regular files inside the same vfolder; symlinks that resolve outside it
        (or nowhere) are left out, and symlinked directories are not descended into. The caller closes each
        descriptor.
        """
        for parent, dirnames, filenames in os.walk(directory):  # os.walk does not follow symlinked dirs
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(parent, name)
                fd = self.open_inside(row, path)
                if fd is not None:
                    yield path.relative_to(directory).as_posix(), fd

    def list_files(self, row: dict[str, Any], relpath: str) -> list[dict[str, Any]]:
        """Entries of a directory in the vfolder; a path that is not there is refused as the manager's storage proxy
        refuses it (400 ``vfolder-operation-failed``)."""
        target = self.resolve(row, relpath)
        if not os.path.lexists(target):
            raise LiteError("vfolder-operation-failed", "Bad request to storage proxy")
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
        self,
        row: dict[str, Any],
        kind: str,
        path: str,
        size: int | None,
        archive: bool = False,
        *,
        lifetime: float,
    ) -> str:
        """Issue an upload or download token valid for ``lifetime`` seconds."""
        now = time.monotonic()
        for stale in [token for token, grant in self._transfers.items() if grant.expires_at <= now]:
            del self._transfers[stale]
            self.completed_uploads.discard(stale)
        token = secrets.token_urlsafe(24)
        self._transfers[token] = Transfer(kind, row["id"], path, size, archive, now + lifetime)
        return token

    def transfer(self, token: str | None, kind: str) -> tuple[Transfer, dict[str, Any]]:
        """The transfer and vfolder for a token; 404 when unknown, expired or for another operation."""
        grant = self._transfers.get(token or "")
        if grant is not None and grant.expires_at <= time.monotonic():
            with contextlib.suppress(KeyError):
                del self._transfers[token or ""]
            grant = None
        row = self.store.vfolder_by_id(grant.vfolder_id) if grant is not None and grant.kind == kind else None
        if grant is None or row is None:
            raise LiteError("object-not-found", "Unknown or expired transfer token.")
        return grant, row
