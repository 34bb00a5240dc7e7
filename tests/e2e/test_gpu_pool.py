"""fGPU quota in a real Airflow deployment: the Airflow pool, not Backend.AI, keeps the third GPU task waiting.

Three parallel 5-share tasks run in a scaling group with room for all three; the group's pool has room for two.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from airflow_provider_fasttrack.pools import gpu_pool
from tests.dags.session_dags import GPU_TASK_RESOURCES, POOL_GATES
from tests.helpers import WIDE_GPU_GROUP, lite_sessions_named


def max_concurrent(sessions: list[dict]) -> int:  # type: ignore[type-arg]
    """The most sessions running at one instant, from backendai-lite's start/termination times."""
    edges = []
    for session in sessions:
        start = datetime.fromisoformat(session["started_at"])
        end = datetime.fromisoformat(session["terminated_at"])
        edges += [(start, 1), (end, -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += step
        peak = max(peak, running)
    return peak


def test_pool_keeps_at_most_two_five_share_sessions_running(airflow_deployment, lite, hook) -> None:  # type: ignore[no-untyped-def]
    with lite.client() as http:
        presets = http.post("/resource/check-presets", json={"scaling_group": WIDE_GPU_GROUP}).json()
    free_shares = Decimal(presets["scaling_groups"][WIDE_GPU_GROUP]["available"]["cuda.shares"])
    assert free_shares >= 3 * Decimal(GPU_TASK_RESOURCES["cuda.shares"])  # Backend.AI would run all three
    task_pool = gpu_pool(WIDE_GPU_GROUP, GPU_TASK_RESOURCES, cluster_size=1)
    assert task_pool is not None
    pool, slots_per_task = task_pool
    airflow_deployment.cli(
        "pools", "set", pool, str(2 * slots_per_task), "room for two 5-share tasks", "--include-deferred"
    )
    hook.ensure_vfolder(POOL_GATES)
    run = airflow_deployment.run_dag("op_fgpu")
    assert run["state"] == "success", airflow_deployment.log_tail()
    sessions = lite_sessions_named(lite, "ft-gpu-")
    assert len(sessions) == 3
    assert max_concurrent(sessions) == 2  # two ran together, never three
