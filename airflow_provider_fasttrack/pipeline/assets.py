"""Airflow assets of pipelines: the artefacts their tasks produce, and pipelines started by those artefacts.

``airflow.assets.outlets`` maps a task to the kind of artefact it produces (``dataset``, ``adapter`` or
``model``). Each kind is one asset per pipeline, with a stable name and URI::

    name  <dag_id>.<kind>                          e.g. trade-qa-finetune.model
    uri   backendai://<vfolder>/<dag_id>/<kind>    the pipeline's vfolder

When the task succeeds, Airflow records an event of that asset; its ``extra`` says where this run's artefact
is (the vfolder and the path in it that a consumer mounts), the pipeline job id, the session id and the task's
result (its ``result.json``), capped at :data:`METRICS_LIMIT` bytes. A skipped or failed task records no event.
The artefact is the task's output folder unless its ``result.json`` names another folder as
``<kind>_dir`` (e.g. ``model_dir``), a path in the session inside one of the vfolders it mounts, of letters,
digits, ``_``, ``.``, ``-`` and ``/`` only (a consumer may put it in a shell command).

``airflow.assets.schedule`` starts a pipeline when all the assets it names (asset names or URIs) have new
events; its templates read an asset's event with ``asset_event('<name or URI>')``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, get_args

from airflow_provider_fasttrack.mounts import MOUNT_ALIAS, Mount
from airflow_provider_fasttrack.pipeline.spec import AssetKind

if TYPE_CHECKING:
    from airflow.sdk import Asset, BaseOperator
    from airflow.sdk.definitions.asset import AssetRef

    from airflow_provider_fasttrack.pipeline.spec import PipelineSpec

__all__ = [
    "ASSET_KINDS",
    "ASSET_SCHEME",
    "METRICS_LIMIT",
    "add_asset_outlets",
    "artefact_location",
    "asset_event",
    "asset_event_extra",
    "asset_name",
    "asset_uri",
    "is_asset_uri",
    "pipeline_asset",
    "schedule_assets",
]

ASSET_SCHEME = "backendai"
#: the kinds of artefact a task may produce (``airflow.assets.outlets`` values)
ASSET_KINDS: tuple[str, ...] = get_args(AssetKind)
#: the most bytes of the task's result (as JSON) an asset event carries; larger results keep their short values
METRICS_LIMIT = 8192
#: the longest text value kept from a result larger than :data:`METRICS_LIMIT`
_SHORT_TEXT = 200


def asset_name(dag_id: str, kind: str) -> str:
    """The asset of ``kind`` produced by the pipeline ``dag_id``: ``<dag_id>.<kind>``."""
    return f"{dag_id}.{kind}"


def asset_uri(vfolder: str, dag_id: str, kind: str) -> str:
    """``backendai://<vfolder>/<dag_id>/<kind>``."""
    return f"{ASSET_SCHEME}://{vfolder}/{dag_id}/{kind}"


def is_asset_uri(text: str) -> bool:
    """Whether an ``airflow.assets.schedule`` entry is a URI (``scheme://...``) rather than an asset name."""
    return "://" in text


def pipeline_asset(spec: PipelineSpec, kind: str) -> Asset:
    """The asset of ``kind`` of the pipeline ``spec`` (its group is the kind)."""
    from airflow.sdk import Asset

    return Asset(
        name=asset_name(spec.dag_id, kind), uri=asset_uri(spec.vfolder, spec.dag_id, kind), group=kind
    )


def schedule_assets(entries: Sequence[str]) -> list[AssetRef]:
    """The DAG's ``schedule``: a reference to each named asset (by URI or by name), all of them required."""
    from airflow.sdk import Asset

    return [Asset.ref(uri=e) if is_asset_uri(e) else Asset.ref(name=e) for e in entries]


def add_asset_outlets(spec: PipelineSpec, operators: Mapping[str, BaseOperator]) -> None:
    """Give each task of ``airflow.assets.outlets`` the asset of its kind as its outlet."""
    if spec.airflow.assets is None:
        return
    for task_id, kind in spec.airflow.assets.outlets.items():
        operators[task_id].outlets = [pipeline_asset(spec, kind)]


# -- the event of a succeeded task ------------------------------------------------------------------


def artefact_location(
    kind: str, result: Any, mounts: Iterable[Mount], outputs: tuple[str, str] | None
) -> tuple[str, str] | None:
    """``(vfolder, path)`` of the artefact: the folder ``result['<kind>_dir']`` names (a path in the session
    inside one of ``mounts``), else ``outputs`` (the task's output folder). Raises ``ValueError`` when the
    result names a folder outside the mounted vfolders."""
    key = f"{kind}_dir"
    declared = result.get(key) if isinstance(result, Mapping) else None
    if declared is None:
        return outputs
    if (
        not isinstance(declared, str)
        or not declared.startswith("/")
        or not MOUNT_ALIAS.fullmatch(declared)
        or ".." in declared.split("/")
    ):
        raise ValueError(
            f"{key} {declared!r} in the result is not an absolute path of letters, digits, '_', '.', '-', '/' "
            "without '..'"
        )
    path = posixpath.normpath(declared)
    places = sorted(mounts, key=lambda m: len(m.path_in_session), reverse=True)
    for mount in places:
        base = mount.path_in_session.rstrip("/")
        if path == base or path.startswith(base + "/"):
            inside = "/".join(p for p in (mount.subpath.strip("/"), path[len(base) :].strip("/")) if p)
            return mount.name, inside
    shown = ", ".join(m.path_in_session for m in places) or "none"
    raise ValueError(f"{key} {declared!r} in the result is not inside a vfolder the task mounts ({shown})")


def capped_metrics(result: Any) -> dict[str, Any]:
    """The task's result for an asset event: whole when its JSON fits :data:`METRICS_LIMIT` bytes, else its
    numbers, booleans and short texts while they fit."""
    if not isinstance(result, Mapping):
        return {}
    text = json.dumps(result, default=str, ensure_ascii=False)
    if len(text.encode()) <= METRICS_LIMIT:
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    kept: dict[str, Any] = {}
    size = 2
    for key, value in result.items():
        short = isinstance(value, bool | int | float) or (
            isinstance(value, str) and len(value) <= _SHORT_TEXT
        )
        if not short or not isinstance(key, str):
            continue
        item = len(json.dumps({key: value}, ensure_ascii=False).encode())
        if size + item > METRICS_LIMIT:
            break
        kept[key] = value
        size += item
    return kept


def asset_event_extra(
    *, kind: str, result: Any, job_id: str, session_id: str, location: tuple[str, str] | None
) -> dict[str, Any]:
    """The ``extra`` of the asset event a succeeded task records."""
    extra: dict[str, Any] = {"kind": kind}
    if location is not None:
        extra["vfolder"], extra["path"] = location
    extra.update(job_id=job_id, session_id=session_id, metrics=capped_metrics(result))
    return extra


# -- a pipeline started by asset events -------------------------------------------------------------


def asset_event(asset: str) -> dict[str, Any]:
    """The event of ``asset`` (a name or URI) that started this run, else the asset's latest event (its current
    artefact), as plain values: ``name``, ``uri``, ``extra``, ``source_dag_id``, ``source_run_id``, ``timestamp``.

    Airflow 3.3 attaches no events to a run of a DAG scheduled on asset names or URIs (references), so the
    latest event, read when the task starts, is what such a run sees.
    """
    from airflow.sdk import get_current_context
    from airflow.sdk.execution_time.context import InletEventsAccessor

    triggering = get_current_context().get("triggering_asset_events") or {}
    events: list[Any] = [
        event for key in triggering if asset in (key.name, key.uri) for event in triggering[key]
    ]
    if not events:
        where = {"asset_uri": asset} if is_asset_uri(asset) else {"asset_name": asset}
        events = list(InletEventsAccessor(**where).ascending(False).limit(1))
    if not events:
        raise ValueError(f"the asset {asset!r} has no event: no task has produced it yet")
    newest = max(events, key=lambda event: event.timestamp)
    return {
        "name": newest.asset.name,
        "uri": newest.asset.uri,
        "extra": dict(newest.extra or {}),
        "source_dag_id": newest.source_dag_id,
        "source_run_id": newest.source_run_id,
        "timestamp": newest.timestamp.isoformat(),
    }
