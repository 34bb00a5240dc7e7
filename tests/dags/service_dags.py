"""DAGs with model-service tasks that the operator tests run with dag.test() (airflow dag file)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_fasttrack.operators.service import BackendAIModelServiceOperator
from airflow_provider_fasttrack.service_request import ServiceRequest

START = pendulum.datetime(2026, 1, 1, tz="UTC")
#: a model folder whose server never becomes healthy (its health path answers 404)
STUCK_MODEL = "stuck-model"

with DAG("svc_kill_sync", schedule=None, start_date=START, catchup=False, tags=["test"]):
    BackendAIModelServiceOperator(
        task_id="victim",
        request=ServiceRequest(name="svc-kill-victim", model=STUCK_MODEL, image="python:3.11"),
        deferrable=False,
        poll_interval=0.3,
        retries=0,
    )
