"""Fail-fast in a real Airflow deployment: a failing task cancels its running sibling's session."""

from __future__ import annotations

from tests.helpers import lite_sessions_named


def test_failing_task_cancels_running_sibling(airflow_deployment, lite) -> None:  # type: ignore[no-untyped-def]
    airflow_deployment.cli(
        "pools", "set", "backendai-gpu-default", "100", "10 fGPU, 1 slot = 0.1 fGPU", "--include-deferred"
    )
    run = airflow_deployment.run_dag("fail-fast", timeout=200)
    assert run["state"] == "failed"
    states = {
        row["task_id"]: row["state"]
        for row in airflow_deployment.cli_json(
            "tasks", "states-for-dag-run", "fail-fast", run["run_id"], "-o", "json"
        )
    }
    assert states["breaks"] == "failed"
    assert states["long-sibling"] == "failed"  # its session was destroyed, so it failed promptly
    assert states["after-both"] == "upstream_failed"
    assert states["queued-behind"] == "skipped"  # started after the failure: no session
    assert lite_sessions_named(lite, "ft-queued-behind-") == []
    (sibling,) = lite_sessions_named(lite, "ft-long-sibling-")
    assert sibling["status"] in {"TERMINATED", "CANCELLED"}
    assert sibling["result"] != "SUCCESS"  # `sleep 300` never finished: it was destroyed
