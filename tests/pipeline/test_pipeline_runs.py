"""Pipelines built from YAML, run with dag.test() on backendai-lite: artifacts, fan-in, skipping."""

from __future__ import annotations

import pytest

from tests.conftest import load_test_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")

# demo-wordcount writes 50 lines of "line <i> of the demo text" (6 words each)
EXPECTED = {"words": 300, "lines": 50, "words_per_line": 6.0}


def states(dag_run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_outputs_flow_to_inputs_with_fan_in() -> None:
    dag_run = load_test_dag("demo-wordcount").test()
    assert dag_run.state == "success", states(dag_run)
    report = dag_run.get_task_instance("report")
    # count-words read prepare's /pipeline/outputs at /pipeline/input1; report read both counts in order
    assert report.xcom_pull(task_ids="count-words") == {"words": 300}
    assert report.xcom_pull(task_ids="count-lines") == {"lines": 50}
    assert report.xcom_pull(task_ids="report") == EXPECTED


def test_skip_per_run_reuses_the_last_output() -> None:
    load_test_dag("demo-wordcount").test()  # a run that prepares the data
    dag_run = load_test_dag("demo-wordcount").test(run_conf={"skip_tasks": ["prepare"]})
    assert states(dag_run) == {
        "prepare": "skipped",
        "count-words": "success",
        "count-lines": "success",
        "report": "success",
    }
    assert dag_run.get_task_instance("report").xcom_pull(task_ids="report") == EXPECTED


def test_static_skip_still_runs_downstream(lite) -> None:  # type: ignore[no-untyped-def]
    dag_run = load_test_dag("static-skip").test()
    assert states(dag_run) == {"expensive-step": "skipped", "next-step": "success"}
    assert dag_run.state == "success"
