"""FastTrack 26.x exports: type spellings, retry, continue_on_failure, params, ownership and secret references,
from the file to the built DAG (the DAG runs are in test_pipeline_exports26_runs.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.export import export_yaml
from airflow_provider_fasttrack.pipeline.factory import build_pipeline, check_serialisable
from airflow_provider_fasttrack.pipeline.spec import TASK_TYPES
from airflow_provider_fasttrack.pipeline.validate import load_pipeline, load_pipeline_text
from tests.pipeline.conftest import FIXTURES

EXPORT_26 = FIXTURES / "support-kb-26.pipeline.yaml"

ONE_TASK = """
version: 26.4.2
name: one-task
tasks:
- name: work
  type: {type}
  command: echo work
  environment: {{image: 'python:3.11'}}
"""


def test_26x_export_loads_and_only_unknown_fields_warn() -> None:
    loaded = load_pipeline(EXPORT_26)
    assert [str(w).split(" ", 1)[1] for w in loaded.warnings] == [
        "tasks[3].rollout_window: warning: unknown field 'rollout_window' is ignored"
    ]
    spec = loaded.spec
    assert [t.type for t in spec.tasks] == ["custom", "default", "custom", "Custom Task"]
    assert not any(t.is_serving for t in spec.tasks)
    assert spec.ownership.session_domain == "support"
    assert [p.name for p in spec.params] == ["index_name", "max_tickets"]


@pytest.mark.parametrize("spelling", sorted(TASK_TYPES))
def test_every_task_type_spelling_is_accepted(spelling: str) -> None:
    text = ONE_TASK.format(type=f"'{spelling}'")
    if TASK_TYPES[spelling] == "serving":
        with pytest.raises(PipelineSpecError, match="a serving task needs a .service:. block"):
            load_pipeline_text(text, "one.yaml")
    else:
        dag = build_pipeline(load_pipeline_text(text, "one.yaml"))
        assert dag.task_ids == ["work"]


def test_26x_export_builds_retry_continue_params_and_domain() -> None:
    loaded = load_pipeline(EXPORT_26)
    dag = build_pipeline(loaded)
    check_serialisable(dag, loaded)
    export, index, check, publish = (
        dag.get_task(t) for t in ("export-tickets", "build-index", "spot-check", "publish")
    )
    # retry: max_attempts counts the first attempt; delay is seconds or text with a unit
    assert (export.retries, export.retry_delay) == (2, dt.timedelta(seconds=45))
    assert (index.retries, index.retry_delay) == (1, dt.timedelta(minutes=2))
    # no retry: the pipeline's airflow: values (defaults 0 and 300 s)
    assert (publish.retries, publish.retry_delay) == (0, dt.timedelta(seconds=300))
    # continue_on_failure: a gate stands between spot-check and its downstream task
    assert check.continue_on_failure and not publish.continue_on_failure
    gate = dag.get_task("spot-check.continue_on_failure")
    assert (gate.upstream_task_ids, gate.trigger_rule, gate.retries) == ({"spot-check"}, "all_done", 0)
    assert publish.upstream_task_ids == {"spot-check.continue_on_failure"}
    assert "spot-check.continue_on_failure" not in dag.params.get_param("skip_tasks").schema["items"]["enum"]
    # params: in the trigger form with their schema
    index_name = dag.params.get_param("index_name")
    assert (index_name.value, index_name.schema["type"]) == ("support-kb-main", "string")
    assert index_name.description == "Search index the publish step writes to"
    assert dag.params.get_param("max_tickets").schema["type"] == "integer"
    # ownership.domain (26.x) is the sessions' domain; the secret reference stays a reference
    assert {t.request.domain for t in dag.tasks if hasattr(t, "request")} == {"support"}
    assert export.request.env["SEARCH_API_TOKEN"] == "${{ secrets.SEARCH_API_TOKEN }}"


def test_pipeline_retry_applies_where_a_task_has_none() -> None:
    text = EXPORT_26.read_text() + "airflow:\n  retries: 4\n  retry_delay_seconds: 10\n"
    dag = build_pipeline(load_pipeline_text(text, "kb.yaml"))
    assert (dag.get_task("export-tickets").retries, dag.get_task("publish").retries) == (2, 4)
    assert dag.get_task("publish").retry_delay == dt.timedelta(seconds=10)
    assert dag.get_task("export-tickets").retry_delay == dt.timedelta(seconds=45)
    # a retry without delay keeps the pipeline's delay
    no_delay = text.replace("    delay: 45\n", "")
    assert build_pipeline(load_pipeline_text(no_delay, "kb.yaml")).get_task(
        "export-tickets"
    ).retry_delay == dt.timedelta(seconds=10)


def test_params_merge_with_airflow_params() -> None:
    text = EXPORT_26.read_text() + "airflow:\n  params:\n    dry_run: {default: false, type: boolean}\n"
    dag = build_pipeline(load_pipeline_text(text, "kb.yaml"))
    assert {"index_name", "max_tickets", "dry_run", "skip_tasks"} <= set(dag.params)
    twice = EXPORT_26.read_text() + "airflow:\n  params:\n    index_name: {default: other}\n"
    with pytest.raises(
        PipelineSpecError, match=r"param 'index_name' is declared twice \(first at params\[0\]\)"
    ):
        load_pipeline_text(twice, "kb.yaml")


def test_26x_export_round_trips(tmp_path: Path) -> None:
    spec = load_pipeline(EXPORT_26).spec
    text = export_yaml(spec)
    data = yaml.safe_load(text)
    assert data["ownership"] == {"domain": "support", "scope": "user"}
    assert data["tasks"][1]["retry"] == {"max_attempts": 2, "delay": 120.0}
    assert [t["type"] for t in data["tasks"]] == ["custom", "default", "custom", "Custom Task"]
    assert data["params"][0]["name"] == "index_name"
    again = load_pipeline_text(text, "again.yaml").spec
    assert export_yaml(again) == text
    assert again.model_dump() == spec.model_dump()


def test_25x_export_gains_no_26x_fields() -> None:
    from tests.pipeline.conftest import EXAMPLE

    data = yaml.safe_load(export_yaml(load_pipeline(EXAMPLE).spec))
    assert "params" not in data
    assert all("retry" not in t and "continue_on_failure" not in t for t in data["tasks"])


def test_secret_reference_refused_by_the_variable_policy() -> None:
    from airflow_provider_fasttrack.pipeline.references import ReferencePolicy

    policy = ReferencePolicy(variables=frozenset({"OTHER"}))
    with pytest.raises(PipelineSpecError) as info:
        load_pipeline(EXPORT_26, references=policy)
    assert "environment.envs.SEARCH_API_TOKEN: the template reads the secret 'SEARCH_API_TOKEN'" in str(
        info.value
    )
    allowed = ReferencePolicy(variables=frozenset({"SEARCH_API_TOKEN"}))
    load_pipeline(EXPORT_26, references=allowed)


SERVING_26 = """
version: 26.4.2
name: serve-26
ownership: {domain: support, scope: user}
tasks:
- name: serve
  type: deployment
  environment: {image: 'python:3.11'}
  resources: {cpu: 1, mem: 1g}
  retry: {max_attempts: 3, delay: 1m}
  service: {name: support-model, model: support-model}
- name: ask
  type: custom
  command: echo ask
  environment: {image: 'python:3.11'}
  dependencies: [serve]
"""


def test_a_26x_deployment_task_gets_its_retry_and_the_ownership_domain() -> None:
    dag = build_pipeline(load_pipeline_text(SERVING_26, "serve-26.yaml"))
    serve, ask = dag.get_task("serve"), dag.get_task("ask")
    assert (serve.retries, serve.retry_delay) == (2, dt.timedelta(minutes=1))
    assert (ask.retries, ask.retry_delay) == (0, dt.timedelta(seconds=300))  # the pipeline's defaults
    assert serve.request.domain == ask.request.domain == "support"
