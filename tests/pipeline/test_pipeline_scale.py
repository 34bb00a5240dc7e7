"""Building and serialising a pipeline's DAG costs work linear in its tasks (the skip_tasks param lists them all)."""

from __future__ import annotations

import jsonschema
import pytest
import yaml

from airflow_provider_fasttrack.pipeline.factory import build_pipeline, check_serialisable
from airflow_provider_fasttrack.pipeline.validate import load_pipeline_text

TASKS = 120


def chain(tasks: int) -> str:
    items = [
        {
            "name": f"step-{k}",
            "type": "Custom Task",
            "command": "true",
            "environment": {"image": "python:3.11"},
            "resources": {"cpu": 1, "mem": "1g"},
            "dependencies": [f"step-{k - 1}"] if k else [],
        }
        for k in range(tasks)
    ]
    return yaml.safe_dump({"name": "wide", "tasks": items}, sort_keys=False)


def test_the_task_list_is_schema_checked_and_copied_once_not_per_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[int] = []
    real_validate = jsonschema.validate

    def validate(instance, schema, *args, **kwargs):  # type: ignore[no-untyped-def]
        enum = (schema.get("items") or {}).get("enum") if isinstance(schema, dict) else None
        if enum is not None and len(enum) == TASKS:
            checked.append(len(enum))
        return real_validate(instance, schema, *args, **kwargs)

    monkeypatch.setattr(jsonschema, "validate", validate)
    loaded = load_pipeline_text(chain(TASKS), "wide.yaml")
    dag = build_pipeline(loaded)
    check_serialisable(dag, loaded)
    # each operator has its own params; none carries the task list, the DAG holds it once
    assert all("skip_tasks" not in task.params for task in dag.tasks)
    assert dag.params.get_param("skip_tasks").schema["items"]["enum"] == [f"step-{k}" for k in range(TASKS)]
    assert len(checked) <= 2, f"the {TASKS}-name schema was checked {len(checked)} times"


def test_a_skip_listed_in_the_run_conf_still_reaches_the_task() -> None:
    from airflow.sdk.definitions.param import process_params

    dag = build_pipeline(load_pipeline_text(chain(3), "wide.yaml"))
    task = dag.get_task("step-1")
    assert process_params(dag, task, {}, suppress_exception=False)["skip_tasks"] == []
    conf = {"skip_tasks": ["step-1"]}
    assert process_params(dag, task, conf, suppress_exception=False)["skip_tasks"] == ["step-1"]
    with pytest.raises(Exception, match="is not one of"):
        process_params(dag, task, {"skip_tasks": ["nope"]}, suppress_exception=False)
