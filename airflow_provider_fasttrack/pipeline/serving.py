"""Serving tasks (``type: serving``): the checks of their ``service:`` block and the request they become.

A task whose block names no ``model`` (as FastTrack 26.4 exports them) serves the pipeline's model storage,
``airflow.model_storage``, as FastTrack serves the model storage folder chosen when the pipeline was created.

What a file can tell is checked here, with the file, line and field: the block itself, the service name, the
model folder's name, the runtime variant, the mount destination. Whether the model folder exists and holds a
usable model definition is known only to the cluster: the operator checks that when the task starts, before it
creates the service.
"""

from __future__ import annotations

from collections.abc import Iterator

from airflow_provider_fasttrack.mounts import VFOLDER_NAME
from airflow_provider_fasttrack.pipeline.spec import PipelineSpec, TaskSpec
from airflow_provider_fasttrack.service_request import (
    MODEL_MOUNT_DESTINATION,
    RUNTIME_VARIANTS,
    ServiceRequest,
    service_name_problem,
    vfolder_subpath_problem,
)
from training.yamldoc import Issue, Loc, YamlDocument

__all__ = ["service_issues", "service_request"]


def service_issues(
    task: TaskSpec, loc: Loc, doc: YamlDocument, *, model_storage: str | None = None
) -> Iterator[Issue]:
    """The problems of a serving task's ``service:`` block.

    :param model_storage: the pipeline's model storage (``airflow.model_storage``), which serves a task whose
        block names no ``model`` (FastTrack 26.4 writes none: the folder is chosen when the pipeline is created).
    """
    service = task.service
    if service is None:
        yield doc.issue(
            (*loc, "type"), "a serving task needs a 'service:' block (name, model, runtime_variant, replicas)"
        )
        return
    where: Loc = (*loc, "service")
    if problem := service_name_problem(service.name):
        yield doc.issue((*where, "name"), problem)
    if not service.model.strip():
        if not model_storage:
            given = "model" in service.model_fields_set  # an empty model: here; none: the block
            yield doc.issue(
                (*where, "model") if given else where,
                f"the model folder is missing: task {task.name!r} names no service.model, and the pipeline has no model storage to serve "
                "instead: set airflow.model_storage to the model vfolder (FastTrack's model storage, mounted at "
                f"{MODEL_MOUNT_DESTINATION}) or name the model vfolder in service.model",
            )
    elif not VFOLDER_NAME.fullmatch(service.model.strip()):
        yield doc.issue((*where, "model"), f"{service.model!r} is not a vfolder name")
    if problem := vfolder_subpath_problem(service.vfolder_subpath.strip()):
        yield doc.issue((*where, "vfolder_subpath"), problem)
    if service.runtime_variant not in RUNTIME_VARIANTS:
        yield doc.issue(
            (*where, "runtime_variant"),
            f"unknown runtime variant {service.runtime_variant!r} (one of: {', '.join(RUNTIME_VARIANTS)})",
        )
    elif service.model_mount_destination not in (
        "",
        MODEL_MOUNT_DESTINATION,
    ) and service.runtime_variant not in ("custom", "cmd"):
        yield doc.issue(
            (*where, "model_mount_destination"),
            f"must be {MODEL_MOUNT_DESTINATION} (or '') for runtime variant {service.runtime_variant!r}",
        )
    elif service.runtime_variant in ("cmd", "modular-max") and not task.command.strip():
        yield doc.issue(
            (*loc, "command"),
            f"runtime variant {service.runtime_variant!r} starts the task's command; it is empty",
        )


def service_request(spec: PipelineSpec, task: TaskSpec) -> ServiceRequest:
    """The model service of a checked serving task; its replicas get the task's image, slots and envs."""
    service = task.service
    assert service is not None  # checked by service_issues
    return ServiceRequest(
        name=service.name,
        model=service.model.strip() or spec.airflow.model_storage or "",
        image=task.environment.image.strip(),
        runtime_variant=service.runtime_variant,
        replicas=service.replicas,
        resources=dict(task.resources),
        resource_opts=dict(task.resource_opts),
        cluster_mode=task.cluster_mode,
        cluster_size=task.cluster_size,
        model_definition_path=service.model_definition_path or None,
        model_mount_destination=service.model_mount_destination or MODEL_MOUNT_DESTINATION,
        vfolder_subpath=service.vfolder_subpath.strip() or None,
        extra_mounts=[m.strip() for m in task.mounts],
        env={**spec.environment.envs, **task.environment.envs},
        project=task.environment.project or None,
        scaling_group=task.environment.scaling_group or None,
        domain=spec.ownership.session_domain,
        startup_command=task.command.strip() or None,
        open_to_public=service.open_to_public,
    )
