"""A pipeline run whose session tasks report their usage (airflow dag file): the usage tests run it with dag.test()."""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_fasttrack.operators.session import BackendAISessionOperator
from airflow_provider_fasttrack.pipeline.notify import slack_notifiers
from airflow_provider_fasttrack.pipeline.spec import SlackNotification
from tests.usage_sessions import push_session_usage

USAGE_DAG_ID = "usage_run"
START = pendulum.datetime(2026, 1, 1, tz="UTC")
IMAGE = "python:3.11"
#: the Slack connection the run's message goes to
USAGE_SLACK_CONN_ID = "slack_usage"

on_success, _ = slack_notifiers(
    SlackNotification(conn_id=USAGE_SLACK_CONN_ID, on_success="{{ dag.dag_id }} done")
)

with DAG(USAGE_DAG_ID, schedule=None, start_date=START, catchup=False, default_args={"retries": 0}):
    # the message goes from a last task, once every usage is pushed (dag.test() runs a DAG's own callbacks
    # outside any task, where XComs cannot be read)
    finish = PythonOperator(task_id="finish", python_callable=lambda: None, on_success_callback=on_success)

    def session(task_id: str, seconds: float, resources: dict[str, object]) -> BackendAISessionOperator:
        task = BackendAISessionOperator(
            task_id=task_id, command=f"sleep {seconds}", image=IMAGE, resources=resources, poll_interval=0.3
        )
        usage = PythonOperator(
            task_id=f"{task_id}_usage", python_callable=push_session_usage, op_args=[task_id]
        )
        task >> usage >> finish
        return task

    prepare = session("prepare", 0.5, {"cpu": 1, "mem": "256m"})
    train = session("train", 2.5, {"cpu": 2, "mem": "512m", "cuda.shares": "0.5"})
    evaluate = session("evaluate", 0.2, {"cpu": 1, "mem": "256m"})
    report = session("report", 0.2, {"cpu": 1, "mem": "256m"})
    # train waits behind a task without a session; the critical path goes through it
    prepare >> EmptyOperator(task_id="gate") >> train >> report
    prepare >> evaluate >> report
