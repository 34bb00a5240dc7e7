"""A schedule with ``max_runs`` stops after that many scheduled runs, on the serialised DAG's own timetable."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from airflow_provider_fasttrack.pipeline.entities import graph_from_spec
from airflow_provider_fasttrack.pipeline.factory import dag_kwargs
from airflow_provider_fasttrack.pipeline.validate import load_pipeline_text

PIPELINE = """
name: scheduled
tasks:
- name: only
  command: echo hi
  environment: {{image: python:3.11}}
airflow:
{airflow}
"""


def _serialized_dag(airflow_block: str):
    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    spec = load_pipeline_text(PIPELINE.format(airflow=airflow_block), "scheduled.yaml").spec
    dag = DAG(**dag_kwargs(graph_from_spec(spec)))
    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


def _scheduled_runs(sdag, limit: int = 1000) -> list[pendulum.DateTime]:
    """What the scheduler would create, run after run, until the timetable says stop."""
    runs, info = [], None
    while len(runs) < limit:
        info = sdag.next_dagrun_info(last_automated_run_info=info)
        if info is None:
            break
        runs.append(info.run_after)
    return runs


@pytest.mark.parametrize(
    ("block", "count", "first", "step"),
    [
        (
            "  schedule: '@daily'\n  start_date: 2099-01-01\n  max_runs: 3",
            3,
            "2099-01-01T00:00:00+00:00",
            dt.timedelta(days=1),
        ),
        (
            "  schedule: '30 6 * * *'\n  timezone: Asia/Seoul\n  start_date: 2099-03-01 07:00:00\n  max_runs: 5",
            5,
            "2099-03-02T06:30:00+09:00",
            dt.timedelta(days=1),
        ),
        (
            "  schedule: '@hourly'\n  start_date: 2020-01-01\n  catchup: true\n  max_runs: 24",
            24,
            "2020-01-01T00:00:00+00:00",
            dt.timedelta(hours=1),
        ),
    ],
    ids=["daily-3", "cron-tz-5", "hourly-catchup-24"],
)
def test_max_runs_stops_the_schedule(block: str, count: int, first: str, step: dt.timedelta) -> None:
    runs = _scheduled_runs(_serialized_dag(block))
    assert len(runs) == count
    assert runs[0] == pendulum.parse(first)
    assert all(b - a == step for a, b in zip(runs, runs[1:], strict=False))


def test_without_max_runs_the_schedule_goes_on() -> None:
    runs = _scheduled_runs(_serialized_dag("  schedule: '@daily'\n  start_date: 2099-01-01"), limit=400)
    assert len(runs) == 400


def test_unscheduled_pipeline_has_no_runs() -> None:
    sdag = _serialized_dag("  tags: [manual]")
    assert sdag.next_dagrun_info(last_automated_run_info=None) is None
