"""``airflow.approvals``: a human approves or rejects before the promotion tasks run.

The operator's behaviour in a deployment (answers through the REST API and the UI, a timeout) is tested in
``tests/e2e/test_approvals.py``; here: the format, ``fasttrack validate``'s errors, the DAG's shape and what the
approver reads.
"""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.approvals import BODY_LIMIT, evaluation_summary
from airflow_provider_fasttrack.pipeline.factory import build_pipeline
from airflow_provider_fasttrack.pipeline.validate import load_pipeline_text
from airflow_provider_fasttrack.usage import SessionUsage, build_run_usage

PIPELINE = """
name: promoted
tasks:
- name: evaluate
  command: echo evaluate
  environment: {image: python:3.11}
- name: archive
  command: echo archive
  dependencies: [evaluate]
  environment: {image: python:3.11}
- name: merge-model
  command: echo merge
  dependencies: [evaluate]
  environment: {image: python:3.11}
- name: serve
  command: echo serve
  dependencies: [merge-model]
  environment: {image: python:3.11}
airflow:
  execution_timeout: 2h
  approvals:
    approve-promotion:
      after: evaluate
      before: [merge-model]
      response_timeout: 24h
"""


def approvals_block(block: str) -> str:
    """The pipeline with ``block`` (indented under ``approvals:``) as its approvals."""
    head = PIPELINE[: PIPELINE.index("  approvals:\n")]
    return head + "  approvals:\n" + block


def errors_of(text: str) -> list[str]:
    with pytest.raises(PipelineSpecError) as caught:
        load_pipeline_text(text, "promoted.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_an_approval_sits_between_its_after_and_before_tasks() -> None:
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    dag = build_pipeline(load_pipeline_text(PIPELINE, "promoted.yaml"))
    approval = dag.get_task("approve-promotion")
    assert isinstance(approval, ApprovalOperator)
    assert approval.upstream_task_ids == {"evaluate"}
    assert approval.downstream_task_ids == {"merge-model"}
    assert dag.get_task("merge-model").upstream_task_ids == {"evaluate", "approve-promotion"}
    assert dag.get_task("archive").upstream_task_ids == {"evaluate"}  # not held back
    # a rejection skips every task after the approval, whatever their trigger rule (pipeline tasks: none_failed)
    assert approval.ignore_downstream_trigger_rules is True
    assert approval.fail_on_reject is False
    assert approval.defaults == ["Reject"]  # the answer when nobody answers in time
    assert approval.response_timeout == dt.timedelta(hours=24)
    # the pipeline's execution_timeout is the sessions' limit, not the wait for a person
    assert approval.execution_timeout is None
    assert approval.retries == 0
    # a skipped evaluation does not let the promotion pass unasked
    assert approval.trigger_rule == "none_failed"
    assert "approve-promotion" in dag.params.get_param("skip_tasks").schema["items"]["enum"]


def test_default_answer_and_timeout() -> None:
    block = (
        "    approve:\n      after: evaluate\n      before: [merge-model]\n      default: approve\n"
        "      response_timeout: 90\n"
        "    ask:\n      after: approve\n      before: [serve]\n      default: none\n"
    )
    dag = build_pipeline(load_pipeline_text(approvals_block(block), "promoted.yaml"))
    assert dag.get_task("approve").defaults == ["Approve"]
    assert dag.get_task("approve").response_timeout == dt.timedelta(seconds=90)
    ask = dag.get_task("ask")
    assert ask.defaults is None and ask.response_timeout is None
    assert ask.upstream_task_ids == {"approve"}  # an approval may follow another


def test_the_dag_with_approvals_serialises() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = build_pipeline(load_pipeline_text(PIPELINE, "promoted.yaml"))
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert restored.get_task("approve-promotion").downstream_task_ids == {"merge-model"}


@pytest.mark.parametrize(
    ("block", "needle", "message"),
    [
        (
            "    a:\n      after: evaluat\n      before: [merge-model]\n",
            "evaluat\n",
            "airflow.approvals.a.after: unknown task 'evaluat'",
        ),
        (
            "    a:\n      after: evaluate\n      before: [merge-model, serv]\n",
            "serv]",
            "airflow.approvals.a.before[1]: unknown task 'serv'",
        ),
        (
            "    a:\n      after: serve\n      before: [merge-model]\n",
            "before: [merge-model]",
            "airflow.approvals.a.before[0]: 'serve' is not upstream of 'merge-model'",
        ),
        (
            "    a:\n      after: archive\n      before: [merge-model]\n",
            "before: [merge-model]",
            "airflow.approvals.a.before[0]: 'archive' is not upstream of 'merge-model'",
        ),
        (
            "    a:\n      after: evaluate\n      before: [merge-model]\n      default: maybe\n",
            "maybe",
            "airflow.approvals.a.default: 'maybe' is not allowed (use 'reject', 'approve' or 'none')",
        ),
        (
            "    merge-model:\n      after: evaluate\n      before: [serve]\n",
            "merge-model:\n      after",
            "airflow.approvals.merge-model: 'merge-model' is the name of a task",
        ),
        (
            "    a:\n      after: evaluate\n      before: []\n",
            "[]",
            "airflow.approvals.a.before: name the tasks that wait for the approval",
        ),
        (
            "    a:\n      after: evaluate\n      before: [merge-model]\n      response_timeout: soon\n",
            "soon",
            "airflow.approvals.a.response_timeout: 'soon' is not a duration",
        ),
        (
            "    a:\n      after: evaluate\n      before: [merge-model]\n      body: '{{ oops'\n",
            "'{{ oops'",
            "airflow.approvals.a.body: template syntax error",
        ),
        (
            "    a b:\n      after: evaluate\n      before: [merge-model]\n",
            "a b:",
            "airflow.approvals['a b']: 'a b' is not a task name",
        ),
        (
            "    a:\n      after: evaluate\n      before: [merge-model]\n"
            "    b:\n      after: merge-model\n      before: [a]\n",
            "[a]",
            "airflow.approvals.b.before[0]: 'merge-model' is not upstream of 'a'",
        ),
    ],
)
def test_validate_names_the_approval_field(block: str, needle: str, message: str) -> None:
    text = approvals_block(block)
    before = text[: text.index(needle)]
    line = before.count("\n") + 1
    found = errors_of(text)
    assert any(e.startswith(f"promoted.yaml:{line}:") and message in e for e in found), found


def test_unknown_approval_fields_are_errors() -> None:
    text = approvals_block("    a:\n      after: evaluate\n      before: [merge-model]\n      extra: 1\n")
    assert any("extra" in e for e in errors_of(text))  # the airflow block rejects unknown fields


SESSIONS = [
    SessionUsage.model_validate(
        {
            "task_id": "evaluate",
            "session_id": "s-1",
            "session_name": "ft-evaluate-1",
            "created_at": "2026-12-07T10:00:00Z",
            "ended_at": "2026-12-07T10:00:30Z",
            "status": "TERMINATED",
            "result": "SUCCESS",
            "occupied_slots": {"cpu": 1, "mem": 268435456},
            "running_seconds": 30.0,
            "cpu_core_hours": 0.0083,
            "gpu_hours": 0.0,
        }
    )
]


def test_the_summary_shows_the_metrics_the_usage_and_the_report_link() -> None:
    run = build_run_usage("promoted", "manual__1", SESSIONS, {"evaluate": set()})
    body = evaluation_summary(
        source="evaluate",
        result={"semscore": 0.71, "samples": 120, "split": "test"},
        decision=None,
        usage=run,
        report_url="/dags/promoted/runs/manual__1/plugin/fasttrack",
    )
    assert "| semscore | 0.71 |" in body
    assert "| samples | 120 |" in body
    assert "evaluate" in body
    assert "**Usage so far:** 1 session, 0.000 GPU-h, 0.008 CPU-core-h" in body  # the run's totals line
    assert "| task | queued | preparing | running | slots |" in body  # its sessions, a markdown table
    assert "| evaluate | - | - | 30s | cpu=1 mem=256.0MiB |" in body
    assert "[FastTrack view of this run](/dags/promoted/runs/manual__1/plugin/fasttrack)" in body


def test_the_summary_escapes_session_values_hides_secrets_and_is_capped() -> None:
    result = {
        "note": "[click](javascript:alert(1)) <img src=x onerror=alert(2)> | pipe",
        "api_token": "hunter2-token-value",
        "nested": {"password": "pw-in-nested", "ok": 1},
        **{f"metric_{i}": "x" * 500 for i in range(200)},
    }
    body = evaluation_summary(source="evaluate", result=result, decision=None, usage=None, report_url="/r")
    assert len(body) <= BODY_LIMIT
    assert "hunter2-token-value" not in body and "pw-in-nested" not in body
    assert "](javascript:" not in body and "<img" not in body
    assert "\\|" in body  # a | in a value does not end the table cell
    assert "not shown" in body  # the table was cut, and says so


def test_the_summary_of_a_quality_gate_shows_its_decision() -> None:
    body = evaluation_summary(
        source="evaluate",
        result={"semscore_difference_ci95_low": 0.02},
        decision={"passed": True, "reason": "0.02 > 0.0", "key": "semscore_difference_ci95_low"},
        usage=None,
        report_url="/r",
    )
    assert "0.02 &gt; 0.0" in body and "| semscore_difference_ci95_low | 0.02 |" in body


def test_no_result_is_said_plainly() -> None:
    body = evaluation_summary(source="evaluate", result=None, decision=None, usage=None, report_url="/r")
    assert "evaluate returned no result" in body


def test_a_given_subject_and_body_hide_known_secrets_and_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the pipeline's own templates render (a connection's password, say) is masked before Airflow stores
    the request; the operator's own asking is Airflow's and is replaced here by a recorder."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.sdk.log import mask_secret

    asked: dict[str, str] = {}
    monkeypatch.setattr(
        ApprovalOperator, "execute", lambda self, context: asked.update(subject=self.subject, body=self.body)
    )
    approval = build_pipeline(load_pipeline_text(PIPELINE, "promoted.yaml")).get_task("approve-promotion")
    mask_secret("s3cr3t-from-a-connection")
    approval.subject = "Promote with s3cr3t-from-a-connection?"
    approval.body = "the key is s3cr3t-from-a-connection\n" + "x" * (2 * BODY_LIMIT)
    approval.execute({"params": {}})
    assert "s3cr3t" not in asked["subject"] and "s3cr3t" not in asked["body"]
    assert asked["body"].startswith("the key is ***") and len(asked["body"]) <= BODY_LIMIT


def test_graph_shows_the_approval_between_its_tasks(run_cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "promoted.yaml"
    path.write_text(PIPELINE)
    code, out, _ = run_cli("graph", str(path))
    assert code == 0
    (line,) = [line for line in out.splitlines() if "approve-promotion " in line]
    assert line.strip() == "[1] approve-promotion  <- evaluate"  # not flagged skip: it runs unless skipped
    assert "[2] merge-model        <- evaluate, approve-promotion" in out


@pytest.mark.parametrize("section", ["approvals", "quality_gates"])
@pytest.mark.parametrize("name", ["serve-teardown", "evaluate.continue_on_failure"])
def test_an_approval_or_gate_may_not_take_the_name_of_a_task_the_pipeline_adds(
    section: str, name: str
) -> None:
    """An ephemeral service's teardown and a continue_on_failure task's stand-in are tasks the pipeline adds."""
    fields = "key: score\n      above: 0\n      " if section == "quality_gates" else ""
    text = f"""
name: promoted
tasks:
- name: evaluate
  command: echo evaluate
  environment: {{image: python:3.11}}
  continue_on_failure: true
- name: serve
  type: serving
  dependencies: [evaluate]
  environment: {{image: python:3.11}}
  service: {{name: serve-it, model: models, ephemeral: true}}
airflow:
  {section}:
    {name}:
      after: evaluate
      {fields}before: [serve]
"""
    line = text[: text.index(f"    {name}:")].count("\n") + 1
    found = errors_of(text)
    assert any(e.startswith(f"promoted.yaml:{line}:") and "a task the pipeline adds" in e for e in found), (
        found
    )
