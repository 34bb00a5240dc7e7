"""GPU pool slots of a multi-kernel task: the whole session's GPUs (per kernel x cluster_size), shown by ``graph``."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_fasttrack.pipeline.factory import dag_from_file

PIPELINE = Path(__file__).resolve().parent / "multi-node-gpu.yaml"


def test_graph_shows_the_pool_slots_of_all_kernels(run_cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run_cli("graph", str(PIPELINE))
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == [
        "[0]",
        "single",
        "(start)",
        "cpu=1",
        "mem=1g",
        "cuda.shares=5",
        "[pool=backendai-gpu-defaultx50]",
    ]
    assert lines[2].split()[-3:] == ["[multi-node", "x2", "pool=backendai-gpu-defaultx100]"]


def test_a_two_kernel_task_takes_twice_the_pool_slots() -> None:
    dag = dag_from_file(PIPELINE)
    single, multi = dag.get_task("single"), dag.get_task("multi")
    assert (single.pool, single.pool_slots) == ("backendai-gpu-default", 50)
    assert (multi.pool, multi.pool_slots) == ("backendai-gpu-default", 100)
    assert multi.request.resources == single.request.resources  # the request stays per kernel
