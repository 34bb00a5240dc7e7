"""Load every pipeline YAML of a folder into DAGs, keeping each file's errors to itself.

Checked specs are cached by file content (SHA-256), so a process that parses the folder again only
re-reads changed files. When Airflow parses the folder to run one task, only that task's DAG is built.
Broken files are reported through one placeholder object whose ``validate()`` raises: Airflow's DagBag
records that as the import error of the DAG file, while the pipelines that loaded are bagged as usual.
"""

from __future__ import annotations

import gc
import hashlib
import os
import warnings
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_fasttrack.exceptions import PipelineImportError, PipelineSpecError, PipelineWarning
from airflow_provider_fasttrack.pipeline.factory import build_pipeline
from airflow_provider_fasttrack.pipeline.references import ReferencePolicy
from airflow_provider_fasttrack.pipeline.validate import LoadedPipeline, load_pipeline_text
from training.yamldoc import Issue, decode

if TYPE_CHECKING:
    from airflow.sdk import DAG

__all__ = [
    "PIPELINES_DIR_ENV",
    "FolderResult",
    "load_folder",
    "load_spec_cached",
    "pipeline_files",
    "publish",
]

PIPELINES_DIR_ENV = "FASTTRACK_PIPELINES_DIR"
PATTERNS = ("*.yaml", "*.yml")

_SPEC_CACHE: dict[tuple[str, str, ReferencePolicy], LoadedPipeline | PipelineSpecError] = {}


@dataclass
class FolderResult:
    """DAGs by id, and error lines by file (relative to the folder)."""

    dags: dict[str, DAG] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[Issue] = field(default_factory=list)

    def error_text(self) -> str:
        return "\n".join(line for lines in self.errors.values() for line in lines)


def pipeline_files(folder: str | Path) -> list[Path]:
    """Pipeline YAML files under ``folder`` (recursively), sorted."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted({p for pattern in PATTERNS for p in root.rglob(pattern) if p.is_file()})


def load_spec_cached(
    path: Path, display_name: str, references: ReferencePolicy | None = None
) -> LoadedPipeline:
    """Check ``path``, reusing the result for unchanged content; raises :class:`PipelineSpecError`.

    ``references``: the connections and variables templates may read (default: the deployment's Airflow
    configuration, read now).
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PipelineSpecError(
            [Issue(display_name, 0, 0, (), f"cannot read the file: {exc.strerror or exc}")]
        ) from None
    if references is None:
        references = ReferencePolicy.from_airflow_config()
    key = (display_name, hashlib.sha256(raw).hexdigest(), references)
    cached = _SPEC_CACHE.get(key)
    if cached is None:
        try:
            text = decode(raw, display_name, PipelineSpecError)
            cached = load_pipeline_text(text, display_name, references=references)
        except PipelineSpecError as exc:
            cached = exc
        _SPEC_CACHE[key] = cached
    if isinstance(cached, PipelineSpecError):
        raise cached
    return cached


def load_folder(folder: str | Path, *, only_dag_id: str | None = None) -> FolderResult:
    """Build the DAG of every pipeline in ``folder``; with ``only_dag_id`` build just that one.

    The cyclic garbage collector is paused meanwhile: building thousands of operators would otherwise make it
    rescan the growing heap again and again, for no garbage (everything built stays alive in the DAGs).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_folder(Path(folder), only_dag_id)
    finally:
        if was_enabled:
            gc.enable()


def _load_folder(root: Path, only_dag_id: str | None) -> FolderResult:
    result = FolderResult()
    sources: dict[str, str] = {}
    references = ReferencePolicy.from_airflow_config()  # once per pass over the folder
    for path in pipeline_files(root):
        name = path.relative_to(root).as_posix()
        try:
            loaded = load_spec_cached(path, name, references)
        except PipelineSpecError as exc:
            result.errors[name] = [str(issue) for issue in exc.issues]
            continue
        result.warnings.extend(loaded.warnings)
        dag_id = loaded.spec.dag_id
        if dag_id in sources:
            line, column = loaded.document.position(("name",))
            where = "airflow.dag_id" if loaded.spec.airflow.dag_id else "name"
            result.errors[name] = [
                f"{name}:{line}:{column} {where}: DAG id {dag_id!r} is already used by {sources[dag_id]}"
            ]
            continue
        sources[dag_id] = name
        if only_dag_id is not None and dag_id != only_dag_id:
            continue
        try:
            result.dags[dag_id] = build_pipeline(loaded, fileloc=str(path))
        except PipelineSpecError as exc:
            result.errors[name] = [str(issue) for issue in exc.issues]
    return result


def _broken_placeholder(message: str) -> Any:
    """A DAG object that Airflow's DagBag refuses with ``message`` as the DAG file's import error."""
    from airflow.sdk import DAG

    class BrokenPipelines(DAG):
        def validate(self) -> None:
            raise PipelineImportError(message)

    return BrokenPipelines(dag_id="fasttrack_broken_pipelines", schedule=None, description=message)


def _parsing_dag_id() -> str | None:
    from airflow.sdk import get_parsing_context

    return get_parsing_context().dag_id


def publish(namespace: MutableMapping[str, Any], folder: str | Path | None = None) -> FolderResult:
    """Load the pipelines of ``folder`` (default: ``$FASTTRACK_PIPELINES_DIR``) into a DAG file's globals."""
    root = Path(folder if folder is not None else os.environ.get(PIPELINES_DIR_ENV, "pipelines"))
    result = load_folder(root, only_dag_id=_parsing_dag_id())
    for issue in result.warnings:
        warnings.warn_explicit(
            str(issue), PipelineWarning, filename=str(root / issue.file), lineno=issue.line
        )
    for dag_id, dag in result.dags.items():
        namespace[f"fasttrack_dag__{_identifier(dag_id)}"] = dag
    if result.errors:
        namespace["fasttrack_broken_pipelines"] = _broken_placeholder(result.error_text())
    return result


def _identifier(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text)
