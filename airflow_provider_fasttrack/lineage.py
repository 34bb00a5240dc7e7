"""OpenLineage facets of sessions and services, for the OpenLineage provider's operator-level API.

The operators' ``get_openlineage_facets_on_complete`` import this module when the OpenLineage provider asks;
it is the only module that imports ``openlineage`` or ``airflow.providers.openlineage``, so the provider works
without them. What is reported:

* datasets in the namespace ``backendai://<manager host[:port]>``, named ``<vfolder>[/<subpath>]``: the mounted
  vfolders and the upstream artifact folders a task reads are inputs; the task's own artifact folder is an
  output; a task's inlets and outlets (Airflow assets) are added as the OpenLineage provider converts them;
* job facets: ``backendai_compute`` (image, per-kernel resources, resource options, cluster mode and size,
  scaling group; a service's runtime variant and replicas) and ``fasttrack_task`` (pipeline and task names);
* run facets: ``backendai_session`` (session id and name) or ``backendai_service`` (service id and name), and
  ``fasttrack_pipeline_job`` (the pipeline job id, the sessions' ``BACKENDAI_PIPELINE_JOB_ID``).

Environment values and secret references are never reported. The facets' ``_schemaURL`` is OpenLineage's
base ``JobFacet`` / ``RunFacet`` schema, as for the OpenLineage provider's own custom facets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.openlineage.extractors import OperatorLineage
from airflow.providers.openlineage.extractors.manager import ExtractorManager
from attrs import define
from openlineage.client.event_v2 import Dataset
from openlineage.client.facet_v2 import JobFacet, RunFacet

__all__ = [
    "BackendAIComputeJobFacet",
    "BackendAIServiceRunFacet",
    "BackendAISessionRunFacet",
    "FastTrackJobRunFacet",
    "FastTrackTaskJobFacet",
    "Lineage",
    "compute_of",
    "namespace_of",
    "no_lineage",
    "operator_lineage",
]


@define
class BackendAIComputeJobFacet(JobFacet):
    """What a session (or each replica of a service) asks Backend.AI for; ``resources`` are per kernel."""

    image: str
    resources: dict[str, Any]
    resourceOpts: dict[str, Any]  # noqa: N815 - OpenLineage's camelCase
    clusterMode: str  # noqa: N815
    clusterSize: int  # noqa: N815
    scalingGroup: str | None = None  # noqa: N815
    runtimeVariant: str | None = None  # noqa: N815
    replicas: int | None = None


@define
class FastTrackTaskJobFacet(JobFacet):
    """The FastTrack pipeline and task this Airflow task runs."""

    pipeline: str
    task: str


@define
class BackendAISessionRunFacet(RunFacet):
    """The Backend.AI batch session of this run."""

    sessionId: str  # noqa: N815
    sessionName: str | None = None  # noqa: N815


@define
class BackendAIServiceRunFacet(RunFacet):
    """The Backend.AI model service of this run."""

    serviceId: str  # noqa: N815
    serviceName: str | None = None  # noqa: N815


@define
class FastTrackJobRunFacet(RunFacet):
    """The pipeline job of the DAG run, as the sessions see it (``BACKENDAI_PIPELINE_JOB_ID``)."""

    pipelineJobId: str  # noqa: N815


def namespace_of(endpoint: str) -> str:
    """``backendai://<host[:port]>`` of a manager endpoint (never its user info, path or query)."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    host = parts.hostname or "unknown"
    return f"backendai://{host}:{parts.port}" if parts.port else f"backendai://{host}"


#: what the operators' ``get_openlineage_facets_on_*`` return
Lineage = OperatorLineage[Dataset, RunFacet | JobFacet]


def compute_of(request: Any, default_scaling_group: str | None) -> BackendAIComputeJobFacet:
    """The compute facet of a ``SessionRequest`` or ``ServiceRequest`` (a service adds its variant and replicas)."""
    return BackendAIComputeJobFacet(
        image=request.image,
        resources=dict(request.resources),
        resourceOpts=dict(request.resource_opts),
        clusterMode=request.cluster_mode,
        clusterSize=request.cluster_size,
        scalingGroup=request.scaling_group or default_scaling_group,
        runtimeVariant=getattr(request, "runtime_variant", None),
        replicas=getattr(request, "replicas", None),
    )


def no_lineage() -> Lineage:
    """The lineage of a task that started nothing (skipped, or failed before its session or service existed)."""
    return Lineage()


def operator_lineage(
    *,
    namespace: str,
    inputs: Iterable[str],
    outputs: Iterable[str],
    compute: BackendAIComputeJobFacet,
    inlets: Sequence[Any] = (),
    outlets: Sequence[Any] = (),
    pipeline_task: tuple[str, str] | None = None,
    run_facets: Mapping[str, RunFacet] | None = None,
    pipeline_job_id: str | None = None,
) -> Lineage:
    """The lineage of one task: vfolder datasets (``<vfolder>[/<subpath>]``) plus its inlets and outlets.

    :param pipeline_task: (pipeline name, task name) of a FastTrack pipeline task.
    :param run_facets: the session's or the service's run facet, once it exists.
    """
    job_facets: dict[str, RunFacet | JobFacet] = {"backendai_compute": compute}
    if pipeline_task is not None:
        job_facets["fasttrack_task"] = FastTrackTaskJobFacet(pipeline=pipeline_task[0], task=pipeline_task[1])
    runs: dict[str, RunFacet | JobFacet] = dict(run_facets or {})
    if pipeline_job_id:
        runs["fasttrack_pipeline_job"] = FastTrackJobRunFacet(pipelineJobId=pipeline_job_id)
    return Lineage(
        inputs=[*_datasets(namespace, inputs), *_assets(inlets)],
        outputs=[*_datasets(namespace, outputs), *_assets(outlets)],
        run_facets=runs,
        job_facets=job_facets,
    )


def _datasets(namespace: str, names: Iterable[str]) -> list[Dataset]:
    return [Dataset(namespace=namespace, name=name) for name in dict.fromkeys(names)]


def _assets(objects: Sequence[Any]) -> list[Dataset]:
    """Airflow assets (and the other inlet/outlet kinds) as the OpenLineage provider converts them."""
    return [d for d in (ExtractorManager.convert_to_ol_dataset(o) for o in objects) if d is not None]
