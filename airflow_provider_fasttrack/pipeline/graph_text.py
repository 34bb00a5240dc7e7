"""A pipeline DAG as plain text: tasks in dependency order with their resources and upstream tasks."""

from __future__ import annotations

import graphlib
from typing import TYPE_CHECKING

from airflow_provider_fasttrack.pipeline.entities import PipelineGraph

if TYPE_CHECKING:
    from airflow.sdk import DAG

__all__ = ["render_graph"]


def render_graph(dag: DAG, graph: PipelineGraph) -> str:
    """Lines like ``[2] evaluate  <- fine-tune-single, fine-tune-multi  cpu=2 mem=4g cuda.shares=1.5``.

    Structure, pools and skips come from the built ``dag``; resources from the pipeline ``graph``.
    """
    slots = {task.task_id: task.request.resources for task in graph.tasks}
    clusters = {task.task_id: (task.request.cluster_mode, task.request.cluster_size) for task in graph.tasks}
    order = list(
        graphlib.TopologicalSorter({t.task_id: t.upstream_task_ids for t in dag.tasks}).static_order()
    )
    depth: dict[str, int] = {}
    for task_id in order:
        depth[task_id] = 1 + max((depth[u] for u in dag.get_task(task_id).upstream_task_ids), default=-1)
    file_order = {task.task_id: index for index, task in enumerate(graph.tasks)}

    def place(task_id: str) -> tuple[int, str]:
        """Tasks in file order, then the tasks the pipeline adds (approvals, gates) by name."""
        return file_order.get(task_id, len(file_order)), task_id

    width = max((len(t) for t in order), default=0)
    schedule = graph.schedule or "none (manual)"
    if graph.asset_schedule:
        schedule = f"on assets {', '.join(graph.asset_schedule)}"
    lines = [f"DAG {dag.dag_id}: {len(order)} tasks, schedule {schedule}"]
    for task_id in sorted(order, key=lambda t: (depth[t], *place(t))):
        task = dag.get_task(task_id)
        upstream = sorted(task.upstream_task_ids, key=place)
        resources = " ".join(f"{k}={v}" for k, v in slots.get(task_id, {}).items())
        flags = []
        mode, size = clusters.get(task_id, ("single-node", 1))
        if size > 1:
            flags.append(f"{mode} x{size}")
        if getattr(task, "skip", False) is True:  # SkipMixin operators have a skip() method
            flags.append("skip")
        if getattr(task, "continue_on_failure", False):
            flags.append("continue_on_failure")
        if task.pool and task.pool != "default_pool":
            flags.append(f"pool={task.pool}x{task.pool_slots}")
        arrow = f"<- {', '.join(upstream)}" if upstream else "(start)"
        extra = f"  [{' '.join(flags)}]" if flags else ""
        lines.append(
            f"{'  ' * depth[task_id]}[{depth[task_id]}] {task_id:<{width}}  {arrow}  {resources}{extra}".rstrip()
        )
    return "\n".join(lines)
