"""Pipeline spec -> Airflow DAG with one ``BackendAISessionOperator`` per task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.approvals import build_approvals
from airflow_provider_fasttrack.pipeline.assets import add_asset_outlets, asset_event, schedule_assets
from airflow_provider_fasttrack.pipeline.entities import (
    TRIGGER_RULE,
    PipelineGraph,
    ServingTask,
    SessionTask,
    gate_task_id,
    graph_from_spec,
)
from airflow_provider_fasttrack.pipeline.notify import slack_notifiers
from airflow_provider_fasttrack.pipeline.quality_gates import add_quality_gates
from airflow_provider_fasttrack.pipeline.references import TEMPLATE_FUNCTIONS
from airflow_provider_fasttrack.pipeline.schedule import aware, last_run_date, timetable_for
from airflow_provider_fasttrack.pipeline.spec import PipelineSpec
from airflow_provider_fasttrack.pipeline.validate import LoadedPipeline, load_pipeline
from training.yamldoc import YamlDocument

if TYPE_CHECKING:
    from airflow.sdk import DAG, BaseOperator, Param

__all__ = [
    "build_dag",
    "build_gate",
    "build_operator",
    "build_pipeline",
    "check_serialisable",
    "dag_from_file",
    "dag_kwargs",
]


def dag_kwargs(graph: PipelineGraph) -> dict[str, Any]:
    """The ``DAG(...)`` arguments of a pipeline (no tasks; ``skip_tasks`` comes after them, see build_dag)."""
    from airflow.sdk import Param

    start_date = aware(graph.start_date, graph.timezone)
    end_date = None
    if graph.max_runs is not None and graph.schedule is not None and graph.start_date is not None:
        end_date = last_run_date(graph.schedule, graph.start_date, graph.timezone, graph.max_runs)
    return {
        "dag_id": graph.dag_id,
        "dag_display_name": graph.display_name,
        "description": graph.description or None,
        "schedule": (
            schedule_assets(graph.asset_schedule)
            if graph.asset_schedule
            else timetable_for(graph.schedule, graph.timezone)
        ),
        "start_date": start_date,
        "end_date": end_date,
        "catchup": graph.catchup,
        "tags": set(graph.tags),
        "default_args": {
            "owner": graph.owner,
            "retries": graph.retries,
            "retry_delay": graph.retry_delay,
            "execution_timeout": graph.execution_timeout,
        },
        "params": {name: Param(default, **schema) for name, default, schema in graph.params},
    }


def template_functions(graph: PipelineGraph) -> dict[str, Any]:
    """Functions the pipeline's templates may call: ``backendai_service_token('<serving task>')`` and
    ``pipeline_job_id()`` (the running DAG run's ``BACKENDAI_PIPELINE_JOB_ID``) and ``asset_event('<asset>')``
    (the asset's event that started the run, else its latest: :mod:`~airflow_provider_fasttrack.pipeline.assets`)."""
    from airflow_provider_fasttrack.operators.service import service_token_for

    def backendai_service_token(task_id: str) -> str:
        """A token for the service of ``task_id`` in this run, through the pipeline's own connection only."""
        return service_token_for(task_id, backendai_conn_id=graph.conn_id)

    functions = {
        "backendai_service_token": backendai_service_token,
        "pipeline_job_id": current_pipeline_job_id,
        "asset_event": asset_event,
    }
    assert set(functions) == TEMPLATE_FUNCTIONS  # the names pipeline validation accepts
    return functions


def current_pipeline_job_id() -> str:
    """The pipeline job id of the DAG run whose task is rendering, as its sessions see it."""
    from airflow.sdk import get_current_context

    from airflow_provider_fasttrack.naming import pipeline_job_id

    ti = get_current_context()["ti"]
    return pipeline_job_id(ti.dag_id, ti.run_id)


def skip_tasks_param(task_ids: Sequence[str]) -> Param:
    """The run's ``skip_tasks`` param: a multi-select of the pipeline's tasks in the trigger form."""
    from airflow.sdk import Param

    return Param(
        [],
        type="array",
        items={"type": "string", "enum": list(task_ids)},
        uniqueItems=True,
        title="Tasks to skip",
        description="Tasks to skip in this run; their downstream tasks still run.",
    )


def build_operator(task: SessionTask | ServingTask, graph: PipelineGraph, dag: DAG) -> BaseOperator:
    """The one place that instantiates an operator for a pipeline task."""
    from airflow_provider_fasttrack.artifacts import PipelineArtifacts
    from airflow_provider_fasttrack.operators.service import BackendAIModelServiceOperator
    from airflow_provider_fasttrack.operators.session import BackendAISessionOperator

    if isinstance(task, ServingTask):
        return BackendAIModelServiceOperator(
            task_id=task.task_id,
            dag=dag,
            request=replace(task.request),
            backendai_conn_id=graph.conn_id,
            ephemeral=task.ephemeral,
            skip=task.skip,
            trigger_rule=TRIGGER_RULE,
            doc_md=task.description or None,
            pipeline_templates=True,
            **task.retry_args(),
        )
    return BackendAISessionOperator(
        task_id=task.task_id,
        dag=dag,
        request=replace(task.request),  # each operator templates its own copy
        backendai_conn_id=graph.conn_id,
        artifacts=PipelineArtifacts(vfolder=graph.vfolder, upstream=task.upstream),
        skip=task.skip,
        fail_fast=graph.fail_fast,
        continue_on_failure=task.continue_on_failure,
        gpu_pool=graph.pool_policy == "gpu",
        trigger_rule=TRIGGER_RULE,
        doc_md=task.description or None,
        pipeline_templates=True,
        **task.retry_args(),
    )


def build_gate(task: SessionTask | ServingTask, dag: DAG) -> BaseOperator:
    """The gate after a ``continue_on_failure`` task: its downstream tasks wait for this one instead."""
    from airflow_provider_fasttrack.operators.continue_gate import ContinueOnFailureGate

    return ContinueOnFailureGate(
        task_id=gate_task_id(task.task_id),
        tolerated=task.task_id,
        dag=dag,
        doc_md=f"Lets the tasks after `{task.task_id}` run whether it succeeds or fails (continue_on_failure).",
    )


def add_teardowns(graph: PipelineGraph, operators: dict[str, BaseOperator], dag: DAG) -> None:
    """Give each ephemeral service a teardown task that deletes it when the run's work is done.

    The teardown follows the service and every task downstream of it, so it runs once they have all ended,
    whether they succeeded, failed or were skipped (an Airflow teardown task); a failed teardown does not fail
    the run. When the serving task itself fails, it deletes its own service.
    """
    from airflow_provider_fasttrack.operators.service import BackendAIDeleteServiceOperator

    for task in graph.tasks:
        if not isinstance(task, ServingTask) or not task.ephemeral:
            continue
        if task.teardown_id in operators:
            raise ValueError(f"task {task.teardown_id!r} is taken; it is the teardown of {task.task_id!r}")
        service = operators[task.task_id]
        teardown = BackendAIDeleteServiceOperator(
            task_id=task.teardown_id,
            dag=dag,
            service_task_id=task.task_id,
            backendai_conn_id=graph.conn_id,
            doc_md=f"Deletes the ephemeral model service of {task.task_id} when the run ends.",
        )
        downstream = [t for t in service.get_flat_relatives(upstream=False) if not t.is_teardown]
        leaves = [t for t in downstream if not any(not d.is_teardown for d in t.downstream_list)]
        for leaf in leaves or [service]:
            leaf >> teardown
        # no setup is named: Airflow requires the tasks right after a setup to use all_success, and pipeline
        # tasks use none_failed (a skipped upstream does not stop them). A teardown without setups runs when all
        # its upstream tasks are done, and Airflow leaves it out when it decides the run's state.
        teardown.as_teardown()


def build_dag(spec: PipelineSpec, *, document: YamlDocument | None = None, fileloc: str | None = None) -> DAG:
    """The DAG of a checked pipeline spec; a failure becomes a :class:`PipelineSpecError` naming the task."""
    from airflow.sdk import DAG

    from airflow_provider_fasttrack.operators.session import SKIP_TASKS_PARAM

    doc = document or YamlDocument(name=spec.name, data=None)
    graph = graph_from_spec(spec)
    try:
        on_success, on_failure = slack_notifiers(spec.airflow.notifications.slack)
        callbacks = {"on_success_callback": on_success, "on_failure_callback": on_failure}
        dag = DAG(
            **dag_kwargs(graph),
            user_defined_macros=template_functions(graph),
            **{key: value for key, value in callbacks.items() if value is not None},
        )
    except Exception as exc:
        raise PipelineSpecError([doc.issue(("airflow",), f"cannot build the DAG: {_reason(exc)}")]) from exc
    if fileloc is not None:
        dag.fileloc = fileloc
    operators = {}
    for index, task in enumerate(graph.tasks):
        try:
            operators[task.task_id] = build_operator(task, graph, dag)
        except Exception as exc:
            issue = doc.issue(("tasks", index), f"cannot build the task: {_reason(exc)}")
            raise PipelineSpecError([issue]) from exc
    gates: dict[str, BaseOperator] = {}
    for task in graph.tasks:
        if task.continue_on_failure:
            gates[task.task_id] = build_gate(task, dag)
            operators[task.task_id] >> gates[task.task_id]
    for task in graph.tasks:
        for upstream in task.upstream:
            gates.get(upstream, operators[upstream]) >> operators[task.task_id]
    operators.update(add_quality_gates(spec.airflow.quality_gates, operators, dag))
    add_asset_outlets(spec, operators)
    try:
        operators.update(build_approvals(spec, operators, dag, stand_ins=gates))
    except Exception as exc:
        raise PipelineSpecError(
            [doc.issue(("airflow", "approvals"), f"cannot add an approval: {_reason(exc)}")]
        ) from exc
    try:
        add_teardowns(graph, operators, dag)
    except Exception as exc:
        raise PipelineSpecError([doc.issue(("tasks",), f"cannot add a teardown: {_reason(exc)}")]) from exc
    # Added once the tasks exist: every operator deep-copies the DAG's params when it is created, and a
    # task's params are schema-checked again when the DAG is serialised; the task list would make both
    # O(tasks^2). Airflow merges the DAG's params into each task's at run time (process_params).
    dag.params[SKIP_TASKS_PARAM] = skip_tasks_param(list(operators))
    try:
        dag.validate()
    except Exception as exc:
        raise PipelineSpecError([doc.issue((), f"the DAG is not valid: {_reason(exc)}")]) from exc
    return dag


def build_pipeline(loaded: LoadedPipeline, *, fileloc: str | None = None) -> DAG:
    """The DAG of a loaded pipeline, with errors pointing into its file."""
    return build_dag(loaded.spec, document=loaded.document, fileloc=fileloc)


def check_serialisable(dag: DAG, loaded: LoadedPipeline) -> None:
    """Serialise ``dag`` as Airflow's DAG processor does; a failure becomes a :class:`PipelineSpecError`."""
    from airflow.serialization.serialized_objects import DagSerialization

    try:
        DagSerialization.to_dict(dag)
    except Exception as exc:
        issue = loaded.document.issue((), f"Airflow cannot serialise the DAG: {_reason(exc)}")
        raise PipelineSpecError([issue]) from exc


def dag_from_file(path: str | Path) -> DAG:
    """Load, check and build the pipeline in ``path``; raises ``PipelineSpecError``."""
    return build_pipeline(load_pipeline(path), fileloc=str(path))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
