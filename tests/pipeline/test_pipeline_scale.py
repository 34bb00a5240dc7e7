"""Building and serialising a pipeline's DAG costs work linear in its tasks (the skip_tasks param lists them all);
checking a pipeline file costs a bounded amount of work per value it holds (the DAG processor re-reads every
pipeline file all day)."""

from __future__ import annotations

import cProfile
import pstats
from typing import Any

import jinja2
import jsonschema
import pytest
import yaml

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.factory import build_pipeline, check_serialisable
from airflow_provider_fasttrack.pipeline.references import ReferencePolicy
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


#: Python calls that checking a pipeline file without templates may make per value in it (YAML reading and its
#: bounds, pydantic, the checks): about 19 are needed; 50 were made when the bounds check built lists and tuples
#: for every value and the data was deep-copied for overrides that were not given
CALLS_PER_VALUE = 25
#: a task's command that is a template
TEMPLATED = "python3 train.py --step {k} --run {{{{ run_id }}}} --epochs {{{{ params.epochs }}}}"


def costed(tasks: int, command: str) -> str:
    items = [
        {
            "name": f"step-{k}",
            "type": "Custom Task",
            "command": command.format(k=k),
            "environment": {"image": "python:3.11", "project": "default", "envs": {"STEP": str(k)}},
            "resources": {"cpu": 1 + k % 4, "mem": f"{1 + k % 8}g", "cuda.shares": "0.5"},
            "resource_opts": {"shmem": "64m"},
            "dependencies": [f"step-{k - 1}"] if k else [],
            "mounts": ["data:datasets"],
        }
        for k in range(tasks)
    ]
    spec = {
        "name": "costed",
        "environment": {"envs": {"SHARED": "1"}},
        "airflow": {"params": {"epochs": {"default": 1, "type": "integer"}}},
        "tasks": items,
    }
    return yaml.safe_dump(spec, sort_keys=False)


def _values(node: yaml.Node) -> int:
    if isinstance(node, yaml.MappingNode):
        return 1 + sum(_values(key) + _values(value) for key, value in node.value)
    if isinstance(node, yaml.SequenceNode):
        return 1 + sum(_values(item) for item in node.value)
    return 1


RESTRICTED = ReferencePolicy(connections=frozenset({"backendai_default"}))


@pytest.mark.parametrize("references", [ReferencePolicy(), RESTRICTED], ids=["any", "restricted"])
def test_checking_a_pipeline_file_makes_a_bounded_number_of_calls_per_value(
    references: ReferencePolicy,
) -> None:
    text = costed(40, "python3 train.py --step {k}")
    load_pipeline_text(chain(3), "warm-up.yaml", references=references)  # imports and first-use set-up
    profile = cProfile.Profile()
    profile.enable()
    load_pipeline_text(text, "costed.yaml", references=references)
    profile.disable()
    calls = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    values = _values(yaml.compose(text))
    assert calls <= CALLS_PER_VALUE * values, f"{calls} calls for {values} values ({calls / values:.1f} each)"


def test_each_template_text_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The syntax check, the params check and the restriction's check share one parse of each template, and
    checking the file again (the DAG processor's next pass) parses none."""
    parsed: list[str] = []
    real_parse = jinja2.Environment.parse

    def parse(self: jinja2.Environment, source: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(source)
        return real_parse(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "parse", parse)
    text = costed(5, TEMPLATED.replace("--step", "--task-{k}-of-5"))  # texts of this test only
    first = load_pipeline_text(text, "costed.yaml", references=RESTRICTED)
    assert sorted(parsed) == sorted(
        TEMPLATED.replace("--step", "--task-{k}-of-5").format(k=k) for k in range(5)
    )
    parsed.clear()
    again = load_pipeline_text(text, "costed.yaml", references=RESTRICTED)
    assert parsed == []
    assert again.spec == first.spec


def test_a_template_syntax_error_is_reported_each_time() -> None:
    text = costed(2, "echo {{{{ run_id }} {k}")
    for _ in range(2):
        with pytest.raises(
            PipelineSpecError, match=r"costed.yaml:\d+:\d+ tasks\[0\].command: template syntax error"
        ):
            load_pipeline_text(text, "costed.yaml", references=RESTRICTED)


def test_a_checked_pipeline_keeps_no_yaml_node_tree() -> None:
    """A checked pipeline stays cached for its file; the positions of its values are found again from its text
    when a message asks for them, so its parse tree (about three objects per value) is not kept for the garbage
    collector to scan again and again."""
    text = costed(5, "python3 train.py --step {k}")
    document = load_pipeline_text(text, "costed.yaml").document
    assert not [name for name, value in vars(document).items() if isinstance(value, yaml.Node)]
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "--step 3" in row)
    assert document.position(("tasks", 3, "command")) == (line, 12)
    assert str(document.issue(("tasks", 3, "command"), "x")) == f"costed.yaml:{line}:12 tasks[3].command: x"


def test_a_pipeline_without_gates_or_approvals_does_not_import_their_operators() -> None:
    """The DAG processor re-parses every pipeline file: a pipeline that asks for no quality gate or approval
    does not pay for importing Airflow's ShortCircuitOperator and human-in-the-loop operators (a fresh process,
    since other tests import them)."""
    import subprocess
    import sys

    code = (
        "import sys, yaml\n"
        "from airflow_provider_fasttrack.pipeline.factory import build_pipeline\n"
        "from airflow_provider_fasttrack.pipeline.validate import load_pipeline_text\n"
        "build_pipeline(load_pipeline_text(sys.argv[1], 'chain.yaml'))\n"
        "print(sorted(m for m in sys.modules if m.endswith(('.hitl', 'operators.python', 'operators.quality_gate',"
        " 'operators.approval'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, chain(3)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
