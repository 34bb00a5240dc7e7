"""A neutral description of a pipeline's Airflow shape, between the YAML spec and the operators.

Everything here is plain data decided from the spec (merged envs, artifacts, trigger rule, pool); the
factory only turns it into Airflow objects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from airflow_provider_fasttrack.pipeline.serving import service_request
from airflow_provider_fasttrack.pipeline.spec import PipelineSpec, TaskSpec
from airflow_provider_fasttrack.service_request import ServiceRequest
from airflow_provider_fasttrack.session_request import SessionRequest

__all__ = ["PipelineGraph", "PipelineTask", "ServingTask", "SessionTask", "gate_task_id", "graph_from_spec"]

#: Tasks still run when an upstream was skipped (FastTrack's skip); a failed upstream stops them.
TRIGGER_RULE = "none_failed"


def teardown_task_id(task_id: str) -> str:
    """The task that deletes the ephemeral service of serving task ``task_id`` when the run ends."""
    return f"{task_id}-teardown"


def gate_task_id(task_id: str) -> str:
    """The task that follows a ``continue_on_failure`` task and stands in for it as its downstream's upstream."""
    return f"{task_id}.continue_on_failure"


@dataclass(frozen=True, kw_only=True)
class PipelineTask:
    """What every pipeline task has, whatever it runs: its id, its place in the DAG, its skip and retry rules."""

    task_id: str
    upstream: tuple[str, ...]
    skip: bool
    description: str = ""
    #: the task's failure neither fails the run nor stops its downstream tasks (see :func:`gate_task_id`)
    continue_on_failure: bool = False
    #: the task's own retries and delay (FastTrack's ``retry``); ``None``: the pipeline's ``airflow:`` values
    retries: int | None = None
    retry_delay: dt.timedelta | None = None

    def retry_args(self) -> dict[str, Any]:
        """The operator arguments of the task's own ``retry`` (they win over the DAG's ``default_args``)."""
        args: dict[str, Any] = {}
        if self.retries is not None:
            args["retries"] = self.retries
        if self.retry_delay is not None:
            args["retry_delay"] = self.retry_delay
        return args


@dataclass(frozen=True, kw_only=True)
class SessionTask(PipelineTask):
    """One Backend.AI batch session, i.e. one Airflow task."""

    request: SessionRequest


@dataclass(frozen=True, kw_only=True)
class ServingTask(PipelineTask):
    """One Backend.AI model service, i.e. one Airflow task (plus a teardown task when ``ephemeral``)."""

    request: ServiceRequest
    ephemeral: bool = False

    @property
    def teardown_id(self) -> str:
        """The task that deletes an ephemeral service when the run ends."""
        return teardown_task_id(self.task_id)


@dataclass(frozen=True)
class PipelineGraph:
    """The DAG-level decisions for one pipeline plus its tasks in file order."""

    dag_id: str
    display_name: str
    description: str
    tasks: tuple[SessionTask | ServingTask, ...]
    vfolder: str
    conn_id: str
    fail_fast: bool
    pool_policy: str
    schedule: str | None
    timezone: str
    start_date: dt.datetime | None
    max_runs: int | None
    catchup: bool
    owner: str
    retries: int
    retry_delay: dt.timedelta
    tags: tuple[str, ...]
    #: each task's Airflow ``execution_timeout`` (its session is destroyed when it is exceeded)
    execution_timeout: dt.timedelta | None = None
    #: declared run parameters: name -> (default, JSON-schema keywords)
    params: tuple[tuple[str, Any, dict[str, Any]], ...] = ()
    #: the assets (names or URIs) whose new events start a run, instead of ``schedule``
    asset_schedule: tuple[str, ...] = ()


def _common(task: TaskSpec) -> dict[str, Any]:
    """The :class:`PipelineTask` fields of a checked task."""
    retry = task.retry
    return {
        "task_id": task.name,
        "upstream": tuple(dict.fromkeys(task.dependencies)),
        "skip": task.skip,
        "description": task.description,
        "continue_on_failure": task.continue_on_failure,
        "retries": retry.max_attempts - 1 if retry else None,
        "retry_delay": dt.timedelta(seconds=retry.delay) if retry and retry.delay is not None else None,
    }


def _task(spec: PipelineSpec, task: TaskSpec) -> SessionTask | ServingTask:
    if task.is_serving:
        assert task.service is not None  # checked by the validator
        return ServingTask(
            request=service_request(spec, task), ephemeral=task.service.ephemeral, **_common(task)
        )
    request = SessionRequest(
        image=task.environment.image.strip(),
        command=task.command,
        resources=dict(task.resources),
        resource_opts=dict(task.resource_opts),
        cluster_mode=task.cluster_mode,
        cluster_size=task.cluster_size,
        mounts=[m.strip() for m in task.mounts],
        env={**spec.environment.envs, **task.environment.envs},
        project=task.environment.project or None,
        scaling_group=task.environment.scaling_group or None,
        domain=spec.ownership.session_domain,
    )
    return SessionTask(request=request, **_common(task))


def graph_from_spec(spec: PipelineSpec) -> PipelineGraph:
    """Decide the Airflow shape of a checked pipeline."""
    tasks = tuple(_task(spec, task) for task in spec.tasks)
    options = spec.airflow
    tags = ("fasttrack", *(t for t in options.tags if t != "fasttrack"))
    return PipelineGraph(
        dag_id=spec.dag_id,
        display_name=spec.name,
        description=spec.description,
        tasks=tasks,
        vfolder=spec.vfolder,
        conn_id=options.conn_id,
        fail_fast=options.fail_fast,
        pool_policy=options.pool_policy,
        schedule=options.schedule,
        timezone=options.timezone,
        start_date=options.start_date,
        max_runs=options.max_runs,
        catchup=options.catchup,
        owner=options.owner,
        retries=options.retries,
        retry_delay=dt.timedelta(seconds=options.retry_delay_seconds),
        tags=tags,
        execution_timeout=(
            dt.timedelta(seconds=options.execution_timeout) if options.execution_timeout is not None else None
        ),
        params=(
            *((p.name, p.default, p.keywords()) for p in spec.params),
            *((name, p.default, p.keywords()) for name, p in options.params.items()),
        ),
        asset_schedule=tuple(options.assets.schedule or ()) if options.assets else (),
    )
