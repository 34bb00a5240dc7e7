"""Stage code and data into a vfolder, the way a pipeline's sessions read them (``fasttrack stage``).

Files go up through the hook (``ensure_vfolder``, ``list_files``, ``upload_file``). The vfolder keeps a manifest,
``.fasttrack-stage.json``, with the size and SHA-256 of every staged file; a file is uploaded again only when its
hash differs from the manifest's or the vfolder no longer holds a file of that size, so a second run with
nothing changed uploads nothing. Files deleted locally are not deleted from the vfolder.

A package folder with a ``pyproject.toml`` also gets ``requirements.txt`` next to it in the vfolder: its
dependencies plus those of its ``run`` extra, read from that ``pyproject.toml`` (the one place they are listed),
for images that must install them at the start of a task.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_provider_fasttrack.exceptions import BackendAINotFoundError

__all__ = ["MANIFEST", "StageReport", "StagedFile", "code_files", "data_files", "stage"]

MANIFEST = ".fasttrack-stage.json"
REQUIREMENTS = "requirements.txt"
#: the extra of a package's pyproject.toml whose requirements a session needs besides the base ones
RUN_EXTRA = "run"
_SKIPPED_DIRS = {"__pycache__", "build", "dist", ".git", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


@dataclass(frozen=True)
class StagedFile:
    """One file to stage: its path in the vfolder and its content."""

    path: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class StageReport:
    """What a stage run did: the vfolder paths uploaded and left as they were."""

    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0


def _walk(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith(".egg-info"):
            continue
        if entry.is_dir():
            if entry.name not in _SKIPPED_DIRS:
                yield from _walk(entry)
        elif entry.is_file() and entry.suffix not in {".pyc", ".pyo"}:
            yield entry


def data_files(folder: Path, target: str) -> list[StagedFile]:
    """Every file under ``folder``, placed under ``target`` in the vfolder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    return [
        StagedFile(str(PurePosixPath(target, *path.relative_to(folder).parts)), path.read_bytes())
        for path in _walk(folder)
    ]


def code_files(source: Path, target: str = "code") -> list[StagedFile]:
    """A package folder as ``<target>/<folder name>/...`` (plus ``<target>/requirements.txt``), or a wheel."""
    if source.is_file():
        if source.suffix != ".whl":
            raise ValueError(f"{source}: code must be a package folder or a wheel (.whl)")
        return [StagedFile(f"{target}/{source.name}", source.read_bytes())]
    files = data_files(source, f"{target}/{source.resolve().name}")
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        lines = "".join(f"{requirement}\n" for requirement in run_requirements(pyproject))
        files.append(StagedFile(f"{target}/{REQUIREMENTS}", lines.encode()))
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
    """Upload what differs from the vfolder's manifest (or is missing there); update the manifest."""
    files = list(files)
    hook.ensure_vfolder(vfolder)
    manifest = _read_manifest(hook, vfolder)
    remote_sizes: dict[str, dict[str, int]] = {}
    report = StageReport()
    for staged in files:
        entry = {"size": len(staged.content), "sha256": staged.sha256}
        size = _remote_size(hook, vfolder, staged.path, remote_sizes)
        if manifest.get(staged.path) == entry and size == len(staged.content):
            report.unchanged.append(staged.path)
            continue
        hook.upload_file(vfolder, staged.path, staged.content)
        manifest[staged.path] = entry
        report.uploaded.append(staged.path)
        report.uploaded_bytes += len(staged.content)
    if report.uploaded:
        content = json.dumps(dict(sorted(manifest.items())), indent=1).encode()
        hook.upload_file(vfolder, MANIFEST, content)
    return report


def _read_manifest(hook: Any, vfolder: str) -> dict[str, Any]:
    try:
        data = json.loads(hook.download_file(vfolder, MANIFEST))
    except BackendAINotFoundError:
        return {}
    except ValueError:  # a damaged manifest: stage everything again
        return {}
    return data if isinstance(data, dict) else {}


def _remote_size(hook: Any, vfolder: str, path: str, cache: dict[str, dict[str, int]]) -> int | None:
    """The size of ``path`` in the vfolder (one listing per folder), or ``None`` when it is not there."""
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
