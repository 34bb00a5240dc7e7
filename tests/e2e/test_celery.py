"""The deployment with CeleryExecutor: Redis as the broker and two Celery workers, each its own process.

A second deployment beside the one of the other e2e tests, started once for this module on the DAGs of
``tests/dags/celery``. Each worker runs one task at a time, so that two tasks that run at once are on both workers.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from deploy.local import CELERY_WORKERS, LocalDeployment
from tests.conftest import ROOT
from tests.e2e.airflow_api import AirflowApi
from tests.e2e.conftest import stop
from tests.helpers import LOG_FILES, SECRETS, connection_env, lite_sessions_named, wait_for

#: a lost worker's task fails after this many seconds without a heartbeat, then retries on the other worker
HEARTBEAT_TIMEOUT = 15


@pytest.fixture(scope="module")
def celery_deployment(lite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:  # type: ignore[no-untyped-def]
    deployment = LocalDeployment(
        tmp_path_factory.mktemp("airflow-celery"),
        dags_folder=ROOT / "tests" / "dags" / "celery",
        connection=connection_env(lite),
        executor="CeleryExecutor",
        settings={
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        },
    )
    assert deployment.redis is not None
    SECRETS.update(
        [
            deployment.password,
            deployment.postgres.password,
            deployment.redis.password,
            *deployment.secrets.values(),
        ]
    )
    LOG_FILES.extend(deployment.log_files())
    deployment.start()
    try:
        yield deployment
    finally:
        stop(deployment)


@pytest.fixture(scope="module")
def api(celery_deployment: LocalDeployment) -> AirflowApi:
    return AirflowApi(celery_deployment)


def start_run(api: AirflowApi, dag_id: str) -> str:
    api.wait_parsed(dag_id)
    api.unpause(dag_id)
    return api.trigger(dag_id)


def test_tasks_that_run_at_once_run_on_both_workers(celery_deployment, api, lite, hook) -> None:  # type: ignore[no-untyped-def]
    hook.ensure_vfolder("gates")
    run_id = start_run(api, "celery_spread")
    # both sessions run at once: each task holds its worker's only slot while its session waits at the gate
    for side in ("left", "right"):
        wait_for(
            lambda side=side: [
                s for s in lite_sessions_named(lite, f"ft-spread-{side}-") if s["status"] == "RUNNING"
            ],
            timeout=180,
        )
    hook.upload_file("gates", "celery-spread-gate", b"open")
    assert api.wait_run("celery_spread", run_id, timeout=120)["state"] == "success"
    hostnames = {
        api.task_instance("celery_spread", run_id, f"spread_{side}")["hostname"] for side in ("left", "right")
    }
    assert hostnames == set(CELERY_WORKERS)


def test_a_lost_worker_s_task_resumes_on_the_other_worker_against_the_same_session(  # type: ignore[no-untyped-def]
    celery_deployment, api, lite, hook
) -> None:
    hook.ensure_vfolder("gates")
    dag_id, task_id = "celery_worker_lost", "celery_durable"
    run_id = start_run(api, dag_id)
    running = wait_for(
        lambda: [s for s in lite_sessions_named(lite, "ft-celery-durable-") if s["status"] == "RUNNING"],
        timeout=180,
    )
    logs = celery_deployment.home / "logs" / f"dag_id={dag_id}"
    # kill once the task logs the session's output, which it polls for after storing the session's id
    first_log = wait_for(lambda: next(logs.glob(f"run_id=*/task_id={task_id}/attempt=1.log"), None), 60)
    wait_for(lambda: "waiting-at-gate" in first_log.read_text(errors="replace"), timeout=60)
    lost_host = api.task_instance(dag_id, run_id, task_id)["hostname"]
    assert lost_host in CELERY_WORKERS
    kill_worker(celery_deployment, lost_host)  # the worker's machine is gone: the worker and all it started

    def second_try() -> dict[str, Any] | None:
        ti = api.task_instance(dag_id, run_id, task_id)
        return ti if ti["try_number"] == 2 and ti["state"] == "running" else None

    retry = wait_for(second_try, timeout=HEARTBEAT_TIMEOUT + 120, interval=1)
    (other,) = set(CELERY_WORKERS) - {lost_host}
    assert retry["hostname"] == other
    retry_log = wait_for(lambda: next(logs.glob(f"run_id=*/task_id={task_id}/attempt=2.log"), None), 60)
    wait_for(lambda: "Reconnecting to existing job" in retry_log.read_text(errors="replace"), timeout=60)
    hook.upload_file("gates", "celery-lost-gate", b"open")

    assert api.wait_run(dag_id, run_id, timeout=120)["state"] == "success"
    sessions = lite_sessions_named(lite, "ft-celery-durable-")
    assert [s["id"] for s in sessions] == [running[0]["id"]]  # one session: the retry reattached to it
    assert sessions[0]["result"] == "SUCCESS"


def kill_worker(deployment: LocalDeployment, hostname: str) -> None:
    """SIGKILL to the Celery worker that reports ``hostname`` and to every process it started."""
    worker = deployment.processes[deployment.worker_names()[hostname]]
    family = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
    for member in family:
        os.kill(member.pid, signal.SIGKILL)
    psutil.wait_procs(family, timeout=30)
    worker.wait(timeout=30)
