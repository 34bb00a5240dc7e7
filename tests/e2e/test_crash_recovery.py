"""Crash recovery in a real Airflow deployment: the retry reattaches through Airflow's task state store."""

from __future__ import annotations

import os
import re
import signal
import subprocess

from tests.helpers import lite_sessions_named, wait_for

# The Task SDK titles a task's process "airflow worker -- <task instance id>".
TASK_PROCESS = re.compile(r"airflow worker -- [0-9a-f]{8}-[0-9a-f]{4}-")


def task_process_ids() -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [int(line.split(None, 1)[0]) for line in listing.splitlines() if TASK_PROCESS.search(line)]


def test_killed_task_process_retry_reattaches_by_stored_id(airflow_deployment, lite, hook) -> None:  # type: ignore[no-untyped-def]
    hook.ensure_vfolder("gates")
    airflow_deployment.cli("dags", "unpause", "op_crash_sync")
    airflow_deployment.cli("dags", "trigger", "op_crash_sync")
    running = wait_for(
        lambda: [s for s in lite_sessions_named(lite, "ft-crash-sync-victim-") if s["status"] == "RUNNING"],
        timeout=120,
    )
    logs = airflow_deployment.home / "logs" / "dag_id=op_crash_sync"
    # Airflow stores the id after submit_job returns; a kill before that is its documented gap (a retry then
    # submits again), so kill once the task logs the session's output, which it polls for after storing
    first_log = wait_for(
        lambda: next(logs.glob("run_id=*/task_id=crash_sync_victim/attempt=1.log"), None), 60
    )
    wait_for(lambda: "waiting-at-gate" in first_log.read_text(errors="replace"), timeout=60)
    (pid,) = wait_for(task_process_ids, timeout=30)
    os.kill(pid, signal.SIGKILL)  # the worker dies while the task waits on its session

    retry_log = wait_for(
        lambda: next(logs.glob("run_id=*/task_id=crash_sync_victim/attempt=2.log"), None), 120
    )
    wait_for(lambda: "Reconnecting to existing job" in retry_log.read_text(errors="replace"), timeout=60)
    hook.upload_file("gates", "crash-sync-gate", b"open")

    def finished_run():  # type: ignore[no-untyped-def]
        runs = airflow_deployment.cli_json("dags", "list-runs", "op_crash_sync", "-o", "json")
        return runs and runs[0]["state"] in {"success", "failed"} and runs[0]

    assert wait_for(finished_run, timeout=120)["state"] == "success"
    sessions = lite_sessions_named(lite, "ft-crash-sync-victim-")
    assert [s["id"] for s in sessions] == [running[0]["id"]]  # no second session: the retry reattached
    assert sessions[0]["result"] == "SUCCESS"
