"""Quality gates (``airflow.quality_gates``): the decision, the DAG the factory makes, and ``fasttrack validate``.

A whole run (held back and passing) is in ``test_trade_qa_pipeline.py``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_fasttrack.pipeline.quality_gates import QualityGateError, decide
from airflow_provider_fasttrack.pipeline.validate import load_pipeline_text

BEFORE = ("merge",)


def gate(result: Any, key: str = "score", above: Any = "0.0") -> dict[str, Any]:
    return decide(
        "promotion-gate", after="evaluate", result=result, key=key, above=above, before=BEFORE
    ).xcom()


def test_the_gate_passes_only_strictly_above_the_threshold() -> None:
    assert gate({"score": 0.012}) == {
        "passed": True,
        "reason": "promotion-gate passed: evaluate's score is 0.012, above 0",
        "key": "score",
        "value": 0.012,
        "above": 0.0,
    }
    held = gate({"score": -0.012}, above="0.0")
    assert held["passed"] is False
    assert held["reason"] == "promotion-gate held back merge: evaluate's score is -0.012, not above 0"
    assert gate({"score": 0}, above=0)["passed"] is False  # equal is not above
    assert gate({"score": -0.007}, above="-0.02")["passed"] is True
    assert gate({"score": 1}, above=" 2 ")["passed"] is False  # a rendered template may keep spaces


@pytest.mark.parametrize(
    ("result", "key", "above", "message"),
    [
        (None, "score", "0", "promotion-gate: evaluate has no result in this run (it pushed no XCom)"),
        ([0.1], "score", "0", "promotion-gate: evaluate's result is a list, not a JSON object"),
        (
            {"n": 4, "semscore": 0.5},
            "score",
            "0",
            "promotion-gate: evaluate's result has no key 'score' (keys: n, semscore)",
        ),
        ({"score": "0.5"}, "score", "0", "promotion-gate: evaluate's score is '0.5', not a number"),
        ({"score": True}, "score", "0", "promotion-gate: evaluate's score is 'True', not a number"),
        ({"score": None}, "score", "0", "promotion-gate: evaluate's score is 'None', not a number"),
        ({"score": math.nan}, "score", "0", "promotion-gate: evaluate's score is 'nan', not a number"),
        ({"score": 0.5}, "score", "high", "promotion-gate: above is 'high', not a number"),
        ({"score": 0.5}, "score", "inf", "promotion-gate: above is 'inf', not a number"),
        ({"score": 0.5}, "score", "", "promotion-gate: above is '', not a number"),
    ],
)
def test_a_result_the_gate_cannot_read_is_one_line(result: Any, key: str, above: Any, message: str) -> None:
    with pytest.raises(QualityGateError) as caught:
        gate(result, key=key, above=above)
    assert str(caught.value) == message


def test_a_long_hostile_value_is_cut_in_the_message() -> None:
    with pytest.raises(QualityGateError) as caught:
        gate({"score": "x" * 10_000 + "\n"})
    assert len(str(caught.value)) < 200


TRAINING = "set -e\npython -m training {step} --output /pipeline/outputs\n"


def pipeline(gates: dict[str, Any], *, params: dict[str, Any] | None = None, **changes: Any) -> str:
    """A pipeline prepare -> train -> evaluate, train -> merge -> ship, with ``airflow.quality_gates``."""

    def task(name: str, step: str, deps: list[str]) -> dict[str, Any]:
        return {
            "name": name,
            "command": TRAINING.format(step=step) if step else "sleep 0",
            "environment": {"image": "cr.backend.ai/stable/python:3.11-ubuntu22.04"},
            "resources": {"cpu": 1, "mem": "256m"},
            "dependencies": deps,
        }

    spec = {
        "name": "gated",
        "tasks": [
            task("prepare", "prepare", []),
            task("train", "finetune", ["prepare"]),
            task("evaluate", "evaluate", ["prepare", "train"]),
            task("merge", "merge", ["train"]),
            task("ship", "", ["merge"]),
        ],
        "airflow": {"quality_gates": gates, "params": params or {}, **changes},
    }
    return yaml.safe_dump(spec, sort_keys=False)


GATE = {"after": "evaluate", "key": "semscore_difference_ci95_low", "above": 0, "before": ["merge"]}


def test_the_gate_is_a_short_circuit_task_between_after_and_before() -> None:
    from airflow.providers.standard.operators.python import ShortCircuitOperator

    from airflow_provider_fasttrack.operators.session import SKIP_TASKS_PARAM
    from airflow_provider_fasttrack.pipeline.factory import build_pipeline, check_serialisable

    loaded = load_pipeline_text(pipeline({"promotion-gate": GATE}), "gated.yaml")
    dag = build_pipeline(loaded)
    check_serialisable(dag, loaded)
    node = dag.get_task("promotion-gate")
    assert isinstance(node, ShortCircuitOperator) and node.ignore_downstream_trigger_rules is True
    assert node.upstream_task_ids == {"evaluate"} and node.downstream_task_ids == {"merge"}
    assert dag.get_task("merge").upstream_task_ids == {"train", "promotion-gate"}
    # everything after the gate is skipped when it holds back, ship included
    assert {t.task_id for t in node.get_flat_relatives(upstream=False)} == {"merge", "ship"}
    # it may be skipped in a run like a task
    assert "promotion-gate" in dag.params.get_param(SKIP_TASKS_PARAM).schema["items"]["enum"]


def validate(run_cli: Any, tmp_path: Path, text: str) -> tuple[int, str, Path]:
    path = tmp_path / "gated.yaml"
    path.write_text(text)
    code, _, err = run_cli("validate", "-q", str(path))
    return code, err, path


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    lines = [number for number, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return lines[occurrence - 1]


def test_validate_accepts_a_gate(run_cli: Any, tmp_path: Path) -> None:
    code, err, _ = validate(run_cli, tmp_path, pipeline({"promotion-gate": GATE}))
    assert (code, err) == (0, "")


def test_a_gate_whose_after_task_runs_after_a_before_task_is_one_line(run_cli: Any, tmp_path: Path) -> None:
    # evaluate runs after train: a gate reading evaluate cannot hold train back
    code, err, path = validate(
        run_cli, tmp_path, pipeline({"promotion-gate": {**GATE, "before": ["merge", "train"]}})
    )
    assert code == 1
    row = line_of(path, "- train", 3)  # tasks' dependencies name train twice before the gate does
    assert err.splitlines() == [
        f"{path}:{row}:9 airflow.quality_gates.promotion-gate.before[1]: evaluate is not upstream of train "
        "(it runs after train), so promotion-gate cannot hold train back"
    ]


def test_an_unknown_key_of_a_training_step_is_one_line(run_cli: Any, tmp_path: Path) -> None:
    code, err, path = validate(
        run_cli, tmp_path, pipeline({"promotion-gate": {**GATE, "key": "semscore_low"}})
    )
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith(
        f"{path}:{line_of(path, 'key: semscore_low')}:12 airflow.quality_gates.promotion-gate.key: "
        "'semscore_low' is not a key of the result of python -m training evaluate (keys: "
    )
    assert "semscore_difference_ci95_low" in line


def test_a_templated_key_is_checked_against_its_param(run_cli: Any, tmp_path: Path) -> None:
    templated = {**GATE, "key": "{{ params.gate_key }}", "above": "{{ params.threshold }}"}
    params = {
        "gate_key": {
            "default": "semscore_difference_ci95_low",
            "enum": ["semscore_difference_ci95_low", "n_words"],
        },
        "threshold": {"default": 0, "type": "number"},
    }
    code, err, path = validate(run_cli, tmp_path, pipeline({"promotion-gate": templated}, params=params))
    assert code == 1
    assert err.splitlines() == [
        f"{path}:{line_of(path, 'key: ')}:12 airflow.quality_gates.promotion-gate.key: 'n_words' (a value of "
        "params.gate_key) is not a key of the result of python -m training evaluate (keys: "
        + err.split("(keys: ", 1)[1].splitlines()[0]
    ]
    params["gate_key"]["enum"] = ["semscore_difference", "semscore_difference_ci95_low"]
    code, err, _ = validate(run_cli, tmp_path, pipeline({"promotion-gate": templated}, params=params))
    assert (code, err) == (0, "")
    # an undeclared param in the key is the params check's usual error
    undeclared = {**templated, "key": "{{ params.nope }}"}
    code, err, _ = validate(run_cli, tmp_path, pipeline({"promotion-gate": undeclared}, params=params))
    assert code == 1 and "params.nope is not declared" in err


@pytest.mark.parametrize(
    ("change", "needle", "message"),
    [
        (
            {"before": ["merge", "deploy"]},
            "- deploy",
            "before[1]: unknown task 'deploy' (tasks: evaluate, merge, prepare, ship, train)",
        ),
        (
            {"after": "judge"},
            "after: judge",
            "after: unknown task 'judge' (tasks: evaluate, merge, prepare, ship, train)",
        ),
        ({"above": "high"}, "above: high", "above: 'high' is not a number or a template"),
        (
            {"before": []},
            "before: []",
            "before: [] is not valid: value should have at least 1 item after validation, not 0",
        ),
    ],
)
def test_bad_gate_fields_are_one_line_each(
    run_cli: Any, tmp_path: Path, change: dict[str, Any], needle: str, message: str
) -> None:
    code, err, path = validate(run_cli, tmp_path, pipeline({"promotion-gate": {**GATE, **change}}))
    assert code == 1
    [line] = err.splitlines()
    row = line_of(path, needle)
    assert line.startswith(f"{path}:{row}:") and line.endswith(
        f"airflow.quality_gates.promotion-gate.{message}"
    )


def test_a_gate_named_as_a_task_is_an_error(run_cli: Any, tmp_path: Path) -> None:
    code, err, path = validate(run_cli, tmp_path, pipeline({"ship": GATE}))
    assert code == 1
    assert err.splitlines() == [
        f"{path}:{line_of(path, 'ship:')}:5 airflow.quality_gates.ship: 'ship' is the name of a task "
        "(tasks[4]); a quality gate needs its own"
    ]


def test_gates_that_together_make_a_cycle_are_one_line(run_cli: Any, tmp_path: Path) -> None:
    gates = {
        "promotion-gate": GATE,
        "size-gate": {"after": "merge", "key": "parameters", "above": 1000, "before": ["evaluate"]},
    }
    code, err, path = validate(run_cli, tmp_path, pipeline(gates))
    assert code == 1
    [line] = err.splitlines()
    starts = {f"{path}:{line_of(path, name + ':')}:5 airflow.quality_gates.{name}: " for name in gates}
    assert any(line.startswith(start) for start in starts), line
    assert ": the quality gates make a cycle: " in line
    assert {"evaluate", "promotion-gate", "merge", "size-gate"} <= set(line.rsplit(": ", 1)[1].split(" -> "))
