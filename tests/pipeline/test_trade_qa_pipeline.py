"""The shipped trade-QA pipeline, shortened through its run params, through Airflow (dag.test()) on backendai-lite.

The sessions run in backendai-lite's session runtime (``.venv-session``: training's requirements, no Airflow); the
code and the English sample reach them through ``fasttrack stage``; upstream outputs are mounted read-only; the
judge is a local OpenAI-compatible server behind the Airflow connection ``llm_judge``; the run's Slack message
goes to a local webhook stub.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fasttrack.cli import main as fasttrack
from airflow_provider_fasttrack.lite.testing import LiteServer, session_runtime_config
from airflow_provider_fasttrack.naming import pipeline_job_id, session_name
from tests.conftest import load_test_dag
from tests.helpers import LOG_FILES, SECRETS, connection_env
from tests.lite.conftest import create_session, session_logs, terminated, wait_for
from tests.slack_stub import slack_webhook_stub
from tests.training.openai_stub import OpenAIStub
from training.results import RESULT_KEYS

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "trade-qa-finetune"
JUDGE_KEY = "judge-key-4f1c9e"
OFFLINE = json.loads((ROOT / "dags" / "pipelines" / f"{DAG_ID}.offline.json").read_text())
#: The offline params as the trigger form or ``--conf`` gives them, shortened: a few steps and questions, a judge,
#: the continual pre-training that the offline params skip, for two steps, and a promotion threshold that any
#: SemScore difference's lower bound clears.
SHORT_RUN = {
    **OFFLINE,
    "skip_tasks": [],
    "pretrain_max_steps": 2,
    "max_steps": 2,
    "judge": "openai",
    "eval_limit": 4,
    "max_new_tokens": 16,
    "promotion_threshold": -1,
}
#: The cheapest run that reaches the quality gate, with a threshold no SemScore difference can clear (at most 1).
HELD_BACK_RUN = {
    **OFFLINE,
    "skip_tasks": ["pretrain-domain"],
    "judge": "none",
    "definitions": "none",
    "max_steps": 1,
    "eval_limit": 2,
    "max_new_tokens": 8,
    "promotion_threshold": 2,
}
IMAGE = "cr.backend.ai/stable/python:3.11-ubuntu22.04"


@pytest.fixture(scope="module")
def session_lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteServer]:
    """A backendai-lite whose pipeline images run in the session runtime, with 10 (mock) fGPU shares."""
    config = session_runtime_config(ROOT)
    slots = {"cpu": 8, "mem": "32g", "cuda.shares": 10}
    with LiteServer(
        data_dir=tmp_path_factory.mktemp("lite-session"), slots=slots, extra_config=config
    ) as lite:
        SECRETS.add(lite.secret_key)
        LOG_FILES.append(lite.log_path)
        yield lite


@pytest.fixture
def connections(session_lite: LiteServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """backendai_default, llm_judge (a local judge) and slack_default (a webhook stub); yields Slack's messages."""
    SECRETS.add(JUDGE_KEY)
    with OpenAIStub() as judge, slack_webhook_stub() as (webhook, received):
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(session_lite))
        monkeypatch.setenv(
            "AIRFLOW_CONN_LLM_JUDGE",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": judge.base_url,
                    "password": JUDGE_KEY,
                    "extra": {"model": "stub"},
                }
            ),
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLACK_DEFAULT", json.dumps({"conn_type": "slackwebhook", "password": webhook})
        )
        yield received


def logs_of(lite: LiteServer, run_id: str, task_id: str) -> str:
    name = session_name(DAG_ID, run_id, task_id)
    with lite.client() as http:
        (session,) = [s for s in http.get("/lite/sessions").json()["sessions"] if s["name"] == name]
        return session_logs(http, session["id"])


def mount_options(lite: LiteServer, run_id: str, task_id: str) -> dict[str, Any]:
    with closing(sqlite3.connect(lite.data_dir / "lite.sqlite3")) as db:
        (config,) = db.execute(
            "SELECT config FROM sessions WHERE name = ?", (session_name(DAG_ID, run_id, task_id),)
        ).fetchone()
    return dict(json.loads(config).get("mount_options") or {})


def stage_trade_qa(capfd: pytest.CaptureFixture[str]) -> None:
    """The code, the English sample and the model vfolder, as the demo stages them (again: nothing changes)."""
    stage = [
        "stage",
        "trade-qa",
        "--code",
        str(ROOT / "training"),
        "--data",
        str(ROOT / "training/samples/en"),
    ]
    assert fasttrack([*stage, "--create-model", "trade-qa-models"]) == 0, capfd.readouterr().err
    capfd.readouterr()


@pytest.mark.usefixtures("airflow_db")
def test_shortened_run_reports_real_metrics_through_xcom_and_slack(
    session_lite: LiteServer, connections: list[dict[str, Any]], capfd: pytest.CaptureFixture[str]
) -> None:
    stage_trade_qa(capfd)

    dag = load_test_dag(DAG_ID)
    run = dag.test(run_conf=SHORT_RUN)
    task_logs = "".join(capfd.readouterr())
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {
        "extract-qa": "skipped",
        "prepare-dataset": "success",
        "pretrain-domain": "success",
        "finetune": "success",
        "evaluate": "success",
        "promotion-gate": "success",
        "merge-model": "success",
        "serve-model": "success",
        "smoke-query": "success",
        "serve-model-teardown": "success",
    }, states

    # result.json of each step is its XCom value
    evaluate = run.get_task_instance("evaluate")
    result = evaluate.xcom_pull(task_ids="evaluate")
    job = session_lite.vfolder_path("fasttrack-trade-qa-finetune") / pipeline_job_id(DAG_ID, run.run_id)
    assert result == json.loads((job / "evaluate" / "result.json").read_text())
    assert result["n"] == 4 and result["embedding_model"] == SHORT_RUN["embedding_model"]
    assert 0 < result["semscore_base"] <= 1 and 0 < result["semscore_finetuned"] <= 1
    low, high = result["truthfulness_base_low"], result["truthfulness_base_high"]
    assert low + high + result["truthfulness_base_failures"] <= 4
    finetune = evaluate.xcom_pull(task_ids="finetune")
    assert finetune == json.loads((job / "finetune" / "result.json").read_text())
    assert finetune["global_step"] == 2 and finetune["train_tokens_per_second"] > 0
    pretrain = evaluate.xcom_pull(task_ids="pretrain-domain")
    assert pretrain == json.loads((job / "pretrain-domain" / "result.json").read_text())
    assert (
        pretrain["global_step"] == 2
        and pretrain["perplexity_before"] > 1
        and pretrain["perplexity_after"] > 1
    )
    assert pretrain["documents_excluded"] > 0  # the prepared dataset's held-out facts
    # finetune and evaluate started from this run's domain-adapted model
    finetune_log = logs_of(session_lite, run.run_id, "finetune")
    assert "finetune: base model /pipeline/input2\n" in finetune_log
    assert "base model /pipeline/input2/model (llama)" in finetune_log
    assert "/pipeline/input3/model" in logs_of(session_lite, run.run_id, "evaluate")
    assert (job / "evaluate" / "report.md").is_file() and (job / "evaluate" / "semscore.png").is_file()

    # the run's one Slack message: the DAG's own notifier, rendered with the run's last task as the DAG processor
    # renders it (dag.test() runs it too, where the template's ti.xcom_pull fails: no message from there)
    dag.on_success_callback({"dag": dag, "run_id": run.run_id, "ti": evaluate})
    [message] = [m["text"] for m in connections]
    text, usage = message.split("\nUsage: ", 1)
    assert text == (
        f":white_check_mark: {DAG_ID} (run {run.run_id}): SemScore {result['semscore_base']} -> "
        f"{result['semscore_finetuned']} on 4 test questions ({result['embedding_model']}); "
        f"truthfulness low (1-2) {low} -> {result['truthfulness_finetuned_low']}, "
        f"high (4-5) {high} -> {result['truthfulness_finetuned_high']}. Promoted (promotion-gate passed: "
        f"evaluate's semscore_difference_ci95_low is {result['semscore_difference_ci95_low']:g}, above -1)"
    )
    assert_the_usage_is_lite_s_own(session_lite, dag, run, task_logs, usage, capfd)

    # upstream outputs were mounted read-only into the model tasks
    for task_id, inputs in (("pretrain-domain", 1), ("finetune", 2), ("evaluate", 3)):
        options = mount_options(session_lite, run.run_id, task_id)
        assert len(options) == inputs and all(o == {"permission": "ro"} for o in options.values())
    # the offline model was converted once, by the first model task, into the shared cache vfolder
    assert "converting" in logs_of(session_lite, run.run_id, "pretrain-domain")
    assert "converting" not in finetune_log
    assert "converting" not in logs_of(session_lite, run.run_id, "evaluate")
    converted = session_lite.vfolder_path("trade-qa-models") / "converted"
    assert [p.name for p in converted.iterdir()] == ["SmolLM2-135M-Instruct-v1"]
    assert "mock accelerator: cuda.shares=5" in logs_of(session_lite, run.run_id, "finetune")

    assert_the_fine_tuned_model_of_this_run_answered(session_lite, run, job)


@pytest.mark.usefixtures("airflow_db")
def test_a_run_the_quality_gate_holds_back_serves_nothing_and_succeeds(
    session_lite: LiteServer, connections: list[dict[str, Any]], capfd: pytest.CaptureFixture[str]
) -> None:
    stage_trade_qa(capfd)
    dag = load_test_dag(DAG_ID)
    run = dag.test(run_conf=HELD_BACK_RUN)
    task_logs = "".join(capfd.readouterr())
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success"
    assert states == {
        "extract-qa": "skipped",
        "prepare-dataset": "success",
        "pretrain-domain": "skipped",
        "finetune": "success",
        "evaluate": "success",
        "promotion-gate": "success",
        "merge-model": "skipped",
        "serve-model": "skipped",
        "smoke-query": "skipped",
        "serve-model-teardown": "success",  # found no service to delete
    }, states
    evaluate = run.get_task_instance("evaluate")
    low = evaluate.xcom_pull(task_ids="evaluate")["semscore_difference_ci95_low"]
    assert isinstance(low, float) and low <= 1
    reason = f"promotion-gate held back merge-model: evaluate's semscore_difference_ci95_low is {low:g}, not above 2"
    assert evaluate.xcom_pull(task_ids="promotion-gate") == {
        "passed": False,
        "reason": reason,
        "key": "semscore_difference_ci95_low",
        "value": low,
        "above": 2.0,
    }
    assert reason in task_logs
    assert "Task serve-model created no service; nothing to delete" in task_logs
    job = session_lite.vfolder_path("trade-qa-models") / "served" / pipeline_job_id(DAG_ID, run.run_id)
    assert not job.exists()  # nothing was merged for serving

    dag.on_success_callback({"dag": dag, "run_id": run.run_id, "ti": evaluate})
    [message] = [m["text"] for m in connections]
    assert message.split("\nUsage: ", 1)[0].endswith(f". Not promoted ({reason})")

    # the demo's summary says that nothing was served, and why
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    decision = demo.latest_gate_decision(DAG_ID)
    assert decision == evaluate.xcom_pull(task_ids="promotion-gate")
    lines = demo.summary(session_lite, DAG_ID, time.monotonic(), None, decision)
    assert f"  Not promoted, so no model was merged or served: {reason}" in lines
    assert not any("Served fine-tuned model" in line for line in lines)


def lite_session(lite: LiteServer, session_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A session's row and its kernels' rows in backendai-lite's own database (JSON columns decoded)."""
    with closing(sqlite3.connect(lite.data_dir / "lite.sqlite3")) as db:
        db.row_factory = sqlite3.Row
        session = dict(db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone())
        kernels = [dict(k) for k in db.execute("SELECT * FROM kernels WHERE session_id = ?", (session_id,))]
    session["status_history"] = json.loads(session["status_history"])
    return session, kernels


def lite_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def assert_the_usage_is_lite_s_own(
    lite: LiteServer, dag: Any, run: Any, task_logs: str, slack_usage: str, capfd: Any
) -> None:
    """Each session task's usage (XCom and task log), the Slack message's totals and ``fasttrack usage`` agree with
    backendai-lite's own records: status history times, kernel slots, GPU-hours = shares x running time."""
    from airflow_provider_fasttrack.operators.session import BackendAISessionOperator
    from airflow_provider_fasttrack.pipeline.slack import slack_escape
    from airflow_provider_fasttrack.slots import parse_slots
    from airflow_provider_fasttrack.usage import format_usage, session_usage_from_xcom

    ran = {ti.task_id for ti in run.get_task_instances() if ti.state == "success"}
    session_tasks = sorted(
        t.task_id for t in dag.tasks if isinstance(t, BackendAISessionOperator) and t.task_id in ran
    )
    assert {"prepare-dataset", "pretrain-domain", "finetune", "evaluate"} <= set(session_tasks)
    gpu_hours = cpu_core_hours = 0.0
    for task_id in session_tasks:
        value = run.get_task_instance(task_id).xcom_pull(task_ids=task_id, key="backendai_usage")
        usage = session_usage_from_xcom(value, task_id=task_id)
        session, kernels = lite_session(lite, usage.session_id)
        assert usage.session_name == session["name"] == session_name(DAG_ID, run.run_id, task_id)
        assert (usage.task_id, usage.status, usage.result) == (task_id, "TERMINATED", "SUCCESS")
        history = {status: lite_time(moment) for status, moment in session["status_history"].items()}
        assert usage.created_at == lite_time(session["created_at"])
        assert (usage.scheduled_at, usage.started_at) == (history.get("SCHEDULED"), history["RUNNING"])
        assert usage.ended_at == lite_time(session["terminated_at"]) == history["TERMINATED"]
        stopped = min(history.get("TERMINATING", history["TERMINATED"]), history["TERMINATED"])
        running = (stopped - history["RUNNING"]).total_seconds()
        assert usage.running_seconds == pytest.approx(running) and running > 0
        slots: dict[str, float] = {}
        for kernel in kernels:
            for name, amount in parse_slots(json.loads(kernel["occupied_slots"])).items():
                slots[name] = slots.get(name, 0.0) + float(amount)
        assert usage.occupied_slots == {name: amount for name, amount in slots.items() if amount}
        # GPU-hours: the kernels' fGPU shares x the running time, both as lite recorded them
        shares = sum(amount for name, amount in slots.items() if name.endswith(".shares"))
        assert usage.gpu_hours == pytest.approx(shares * running / 3600, rel=1e-9, abs=1e-12)
        assert usage.cpu_core_hours == pytest.approx(slots["cpu"] * running / 3600, rel=1e-9, abs=1e-12)
        gpu_hours, cpu_core_hours = (
            gpu_hours + shares * running / 3600,
            cpu_core_hours + slots["cpu"] * running / 3600,
        )
        # peak memory: the largest of the kernels' lifetime peaks
        peaks = [float(json.loads(k["last_stat"])["mem"]["stats.max"]) for k in kernels if k["last_stat"]]
        assert peaks and usage.stats["mem"].peak == max(peaks)
        # the task log's line says the same
        assert format_usage(usage) in task_logs, task_id
    assert gpu_hours > 0  # the model tasks hold mock fGPU shares

    # `fasttrack usage` reads the same from Airflow's database, and the Slack message carries its totals and table
    assert fasttrack(["usage", "--dag-id", DAG_ID, "--run-id", run.run_id]) == 0
    out = capfd.readouterr().out.splitlines()
    heading = f"{DAG_ID} run {run.run_id}: "
    assert out[0].startswith(heading)
    totals = out[0].removeprefix(heading)
    assert totals.startswith(
        f"{len(session_tasks)} sessions, {gpu_hours:.3f} GPU-h, {cpu_core_hours:.3f} CPU-core-h, queued "
    )
    assert sorted(line.split()[0] for line in out[2:-1]) == session_tasks
    assert out[-1].split()[0] == "total" and f"{gpu_hours:.3f}" in out[-1].split()
    assert slack_usage == slack_escape(totals + "\n```\n" + "\n".join(out[1:]) + "\n```")


def assert_the_fine_tuned_model_of_this_run_answered(lite: LiteServer, run: Any, job: Path) -> None:
    """smoke-query's answer came from this run's merged model, served from its own folder; the service is gone."""
    from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
    from training.generate import generate
    from training.models import load_tokenizer

    job_id = pipeline_job_id(DAG_ID, run.run_id)
    smoke = run.get_task_instance("smoke-query").xcom_pull(task_ids="smoke-query")
    assert smoke == json.loads((job / "smoke-query" / "result.json").read_text())
    assert set(smoke) == RESULT_KEYS["ask"]
    assert isinstance(smoke["answer"], str) and smoke["answer"].strip()
    (row,) = [
        r
        for r in map(json.loads, (job / "prepare-dataset" / "test.jsonl").read_text().splitlines())
        if r["question"] == smoke["question"]
    ]
    assert smoke["reference"] == row["answer"]
    # merge-model merged this run's adapter onto this run's domain-adapted model
    merged = run.get_task_instance("merge-model").xcom_pull(task_ids="merge-model")
    assert merged["model_dir"] == f"/home/work/trade-qa-models/served/{job_id}"
    assert (
        merged["adapter"] == "/pipeline/input1/adapter" and merged["base_model"] == "/pipeline/input2/model"
    )
    assert merged["server"] == "transformers"
    # the model asset's event says where a consumer mounts this run's model
    from tests.pipeline.test_pipeline_assets import asset_events

    [(_, _, event)] = asset_events("trade-qa-finetune.model")
    assert (event["vfolder"], event["path"], event["job_id"]) == (
        "trade-qa-models",
        f"served/{job_id}",
        job_id,
    )
    assert event["metrics"] == merged
    # the service's replica mounted this run's merged model at /models, and no other model folder
    with closing(sqlite3.connect(lite.data_dir / "lite.sqlite3")) as db:
        replicas = [
            json.loads(config)
            for (config,) in db.execute("SELECT config FROM sessions WHERE name LIKE 'svc-trade-qa-model-%'")
        ]
    assert replicas and all(
        c["mounts"] == [f"trade-qa-models/served/{job_id}"]
        and c["mount_map"] == {f"trade-qa-models/served/{job_id}": "/models"}
        for c in replicas
    ), replicas
    # and it answers as that model does: greedy, the same chat messages and token limit
    folder = lite.vfolder_path("trade-qa-models") / "served" / job_id
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder))
    (expected,) = generate(
        model, load_tokenizer(str(folder)), [list(row["prompt"])], max_new_tokens=SHORT_RUN["max_new_tokens"]
    )
    assert smoke["answer"] == expected
    hook = BackendAIHook("backendai_default")
    try:
        assert hook.list_services() == []
    finally:
        hook.close()


def test_sessions_of_the_pipeline_image_have_no_airflow_and_only_staged_code(
    session_lite: LiteServer,
) -> None:
    with session_lite.client() as http:
        airflow = create_session(http, "python -c 'import airflow'", image=IMAGE)
        staged = create_session(http, "python -c 'import training'", image=IMAGE)
        runtime = create_session(
            http, "python -c 'import torch, trl, peft, datasets, sentence_transformers'", image=IMAGE
        )
        records = {
            name: (
                wait_for(http, created["sessionId"], terminated, timeout=120),
                session_logs(http, created["sessionId"]),
            )
            for name, created in (("airflow", airflow), ("staged", staged), ("runtime", runtime))
        }
    assert records["airflow"][0]["result"] == "FAILURE"
    assert "No module named 'airflow'" in records["airflow"][1]
    assert records["staged"][0]["result"] == "FAILURE"  # training comes only from the staged vfolder
    assert "No module named 'training'" in records["staged"][1]
    assert records["runtime"][0]["result"] == "SUCCESS", records["runtime"][1]
