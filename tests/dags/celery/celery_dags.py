"""DAGs of the CeleryExecutor deployment test (tests/e2e/test_celery.py) (airflow dag file)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_fasttrack.operators.session import BackendAISessionOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
IMAGE = "python:3.11"

with DAG("celery_spread", schedule=None, start_date=START, catchup=False, tags=["test"]):
    # two sessions at once, each holding its worker's only slot (not deferred) until the test opens the gate:
    # one task per worker
    for side in ("left", "right"):
        BackendAISessionOperator(
            task_id=f"spread_{side}",
            command=f"echo {side}; until [ -e gates/celery-spread-gate ]; do sleep 0.2; done",
            image=IMAGE,
            mounts=["gates"],
            deferrable=False,
            poll_interval=0.5,
            retries=0,
        )

with DAG(
    "celery_worker_lost",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["test"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
):
    # its worker is killed while the session waits at the gate; the retry runs on the other worker
    BackendAISessionOperator(
        task_id="celery_durable",
        # the first line reaches the task log only once the operator polls, i.e. after it stored the id
        command="echo waiting-at-gate; until [ -e gates/celery-lost-gate ]; do sleep 0.2; done; echo survived",
        image=IMAGE,
        mounts=["gates"],
        deferrable=False,
        poll_interval=0.5,
    )
