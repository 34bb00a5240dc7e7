"""DAGs whose one task fails, each for a reason a retry can or cannot help (airflow dag file).

Every task has ``retries=2`` and no retry delay, so that dag.test() runs each retry at once.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_fasttrack.operators.service import BackendAIModelServiceOperator
from airflow_provider_fasttrack.operators.session import BackendAISessionOperator
from airflow_provider_fasttrack.service_request import ServiceRequest

START = pendulum.datetime(2026, 1, 1, tz="UTC")
IMAGE = "python:3.11"
#: a connection to the test session's backendai-lite with a wrong secret key (the test defines it)
WRONG_SECRET_CONN_ID = "backendai_wrong_secret"
#: a connection to a backendai-lite that knows only ``python:*`` images and answers every capacity check with
#: 429 (``Retry-After: 0``): the test defines it
STRICT_CONN_ID = "backendai_strict"
RETRIES = {"retries": 2, "retry_delay": timedelta(0)}


def retry_dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, default_args=RETRIES, tags=["test"])


with retry_dag("retry_invalid_request"):
    # the manager takes priorities from 0 to 100
    BackendAISessionOperator(task_id="task", command="true", image=IMAGE, priority=500)

with retry_dag("retry_bad_credentials"):
    BackendAISessionOperator(
        task_id="task", command="true", image=IMAGE, backendai_conn_id=WRONG_SECRET_CONN_ID
    )

with retry_dag("retry_unknown_image"):
    BackendAISessionOperator(
        task_id="task",
        command="true",
        image="registry.invalid/no-such-image:1",
        backendai_conn_id=STRICT_CONN_ID,
    )

with retry_dag("retry_missing_vfolder"):
    BackendAISessionOperator(task_id="task", command="true", image=IMAGE, mounts=["no-such-folder"])

with retry_dag("retry_missing_vfolder_mapped"):
    BackendAISessionOperator.partial(task_id="task", image=IMAGE, mounts=["no-such-folder"]).expand(
        command=["true"]
    )

with retry_dag("retry_never_fits"):
    BackendAISessionOperator(task_id="task", command="true", image=IMAGE, resources={"cuda.shares": "500"})

with retry_dag("retry_missing_secret"):
    BackendAISessionOperator(
        task_id="task", command="true", image=IMAGE, env={"TOKEN": "${{ secrets.NO_SUCH_SECRET }}"}
    )

with retry_dag("retry_service_missing_model"):
    BackendAIModelServiceOperator(
        task_id="task", request=ServiceRequest(name="svc-retry-missing", model="no-such-model", image=IMAGE)
    )

with retry_dag("retry_rate_limited"):
    # asks for resources, so the operator's capacity check runs, and is answered 429 by the strict server
    BackendAISessionOperator(
        task_id="task", command="true", image=IMAGE, resources={"cpu": 1}, backendai_conn_id=STRICT_CONN_ID
    )

with retry_dag("retry_session_failed"):
    BackendAISessionOperator(task_id="task", command="exit 5", image=IMAGE, poll_interval=0.5)

with retry_dag("retry_after_deferral"):
    # the session succeeds, but leaves a folder where the task records its last successful job
    # (``latest/<task id>.json``): the task fails once it resumes from its trigger, and so would every retry
    BackendAISessionOperator(
        task_id="task",
        command="mkdir -p /pipeline/vfroot/latest/task.json",
        image=IMAGE,
        artifacts={"vfolder": "retry-artifacts"},
        poll_interval=0.5,
    )
