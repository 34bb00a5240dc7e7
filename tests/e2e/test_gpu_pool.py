"""fGPU quota in a real Airflow deployment: three parallel 5-share tasks, a pool of 10 fGPU (100 slots), 10 shares."""

from __future__ import annotations

from datetime import datetime

from tests.helpers import lite_sessions_named


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


def test_pool_keeps_at_most_two_five_share_sessions_running(airflow_deployment, lite) -> None:  # type: ignore[no-untyped-def]
    airflow_deployment.cli(
        "pools", "set", "backendai-gpu-default", "100", "10 fGPU, 1 slot = 0.1 fGPU", "--include-deferred"
    )
    run = airflow_deployment.run_dag("op_fgpu")
    assert run["state"] == "success", airflow_deployment.log_tail()
    sessions = lite_sessions_named(lite, "ft-gpu-")
    assert len(sessions) == 3
    assert max_concurrent(sessions) == 2  # two ran together, never three
