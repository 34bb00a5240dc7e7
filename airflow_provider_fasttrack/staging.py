"""Stage code and data into a vfolder, the way a pipeline's sessions read them (``fasttrack stage``).

Files go up through the hook (``ensure_vfolder``, ``list_files``, ``upload_file``), streamed from the open file in
tus chunks, never read whole into memory. The vfolder is not trusted: sessions write into it, so a file counts as
unchanged only when the vfolder holds a file of the same size whose content, downloaded and hashed here (streamed),
has the local file's SHA-256. A second run with nothing changed uploads nothing (it downloads what it compares);
whatever changed there, even with its size, modification time and the manifest put back, is uploaded again.
The manifest, ``.fasttrack-stage.json``, records the size and SHA-256 of each file of the latest run, for people
and sessions to read; staging never decides from it. Files deleted locally are not deleted from the vfolder.

Symbolic links under a staged folder are skipped, not followed, and named in the report: a link may point outside
the tree (a key file) or at its own folder (endless recursion). Other special files (FIFOs, devices) are skipped
silently.

A package folder with a ``pyproject.toml`` also gets ``requirements.txt`` next to it in the vfolder: its
dependencies plus those of its ``run`` extra, read from that ``pyproject.toml`` (the one place they are listed),
for images that must install them at the start of a task.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import stat
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from airflow_provider_fasttrack.exceptions import BackendAINotFoundError

__all__ = ["MANIFEST", "StageReport", "StagedFile", "code_files", "data_files", "stage"]

MANIFEST = ".fasttrack-stage.json"
REQUIREMENTS = "requirements.txt"
#: the extra of a package's pyproject.toml whose requirements a session needs besides the base ones
RUN_EXTRA = "run"
_SKIPPED_DIRS = {"__pycache__", "build", "dist", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
#: bytes read at a time when hashing
_BLOCK = 1 << 20


@dataclass(frozen=True)
class StagedFile:
    """One file to stage: its path in the vfolder and where its bytes come from (a local file, or ``content``)."""

    path: str
    source: Path | None = None
    content: bytes | None = None

    def open(self) -> IO[bytes]:
        """The bytes, from the start (the local file is opened without following a symlink)."""
        if self.source is None:
            return io.BytesIO(self.content or b"")
        return os.fdopen(os.open(self.source, os.O_RDONLY | os.O_NOFOLLOW), "rb")

    def digest(self) -> tuple[int, str]:
        """Size and SHA-256, read in blocks."""
        sha, size = hashlib.sha256(), 0
        with self.open() as stream:
            while block := stream.read(_BLOCK):
                sha.update(block)
                size += len(block)
        return size, sha.hexdigest()


@dataclass
class StageReport:
    """What a stage run did: the vfolder paths uploaded and left as they were."""

    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0


def _walk(folder: Path, skipped: list[Path]) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith(".egg-info"):
            continue
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            skipped.append(entry)
        elif stat.S_ISDIR(mode):
            if entry.name not in _SKIPPED_DIRS:
                yield from _walk(entry, skipped)
        elif stat.S_ISREG(mode) and entry.suffix not in {".pyc", ".pyo"}:
            yield entry


def data_files(folder: Path, target: str, skipped: list[str] | None = None) -> list[StagedFile]:
    """Every regular file under ``folder``, placed under ``target`` in the vfolder.

    Symbolic links are not followed: their vfolder paths are added to ``skipped``.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    links: list[Path] = []
    files = [StagedFile(_target(folder, path, target), source=path) for path in _walk(folder, links)]
    if skipped is not None:
        skipped.extend(_target(folder, link, target) for link in links)
    return files


def _target(folder: Path, path: Path, target: str) -> str:
    return str(PurePosixPath(target, *path.relative_to(folder).parts))


def code_files(source: Path, target: str = "code", skipped: list[str] | None = None) -> list[StagedFile]:
    """A package folder as ``<target>/<folder name>/...`` (plus ``<target>/requirements.txt``), or a wheel."""
    if source.is_file():
        if source.suffix != ".whl":
            raise ValueError(f"{source}: code must be a package folder or a wheel (.whl)")
        return [StagedFile(f"{target}/{source.name}", source=source.resolve())]
    files = data_files(source, f"{target}/{source.resolve().name}", skipped)
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        lines = "".join(f"{requirement}\n" for requirement in run_requirements(pyproject))
        files.append(StagedFile(f"{target}/{REQUIREMENTS}", content=lines.encode()))
    return files


def run_requirements(pyproject: Path) -> list[str]:
    """The base requirements and those of the ``run`` extra declared in ``pyproject``."""
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{pyproject}: not valid TOML: {exc}") from None
    extras = project.get("optional-dependencies", {})
    return [*project.get("dependencies", []), *extras.get(RUN_EXTRA, [])]


def stage(hook: Any, vfolder: str, files: Iterable[StagedFile]) -> StageReport:
    """Upload each file whose content the vfolder does not hold (compared by SHA-256); write the manifest."""
    hook.ensure_vfolder(vfolder)
    remote_sizes: dict[str, dict[str, int]] = {}
    manifest: dict[str, dict[str, Any]] = {}
    report = StageReport()
    for staged in files:
        size, sha256 = staged.digest()
        manifest[staged.path] = {"size": size, "sha256": sha256}
        if _holds(hook, vfolder, staged.path, size, sha256, remote_sizes):
            report.unchanged.append(staged.path)
            continue
        _upload(hook, vfolder, staged)
        report.uploaded.append(staged.path)
        report.uploaded_bytes += size
    record = StagedFile(MANIFEST, content=json.dumps(dict(sorted(manifest.items())), indent=1).encode())
    size, sha256 = record.digest()
    if not _holds(hook, vfolder, MANIFEST, size, sha256, remote_sizes):
        _upload(hook, vfolder, record)
    return report


def _upload(hook: Any, vfolder: str, staged: StagedFile) -> None:
    with staged.open() as stream:  # the file as opened here (no link followed), streamed by the hook
        hook.upload_file(vfolder, staged.path, stream)


def _holds(
    hook: Any, vfolder: str, path: str, size: int, sha256: str, sizes: dict[str, dict[str, int]]
) -> bool:
    """Whether the vfolder has a regular file at ``path`` with exactly this content (downloaded and hashed)."""
    if _remote_size(hook, vfolder, path, sizes) != size:
        return False
    digest, read = hashlib.sha256(), 0
    try:
        with contextlib.closing(hook.iter_file(vfolder, path)) as chunks:
            for chunk in chunks:
                read += len(chunk)
                if read > size:  # more than it claimed: not the same file, and no reason to read on
                    return False
                digest.update(chunk)
    except BackendAINotFoundError:
        return False
    return read == size and digest.hexdigest() == sha256


def _remote_size(hook: Any, vfolder: str, path: str, cache: dict[str, dict[str, int]]) -> int | None:
    """The size of the regular file ``path`` in the vfolder (one listing per folder), or ``None``."""
    folder = str(PurePosixPath(path).parent)
    folder = "" if folder == "." else folder
    if folder not in cache:
        try:
            items = hook.list_files(vfolder, folder)
        except BackendAINotFoundError:
            items = []
        cache[folder] = {
            str(item.get("name")): int(item.get("size") or 0)
            for item in items
            if str(item.get("type", "FILE")).upper() == "FILE"
        }
    return cache[folder].get(PurePosixPath(path).name)
