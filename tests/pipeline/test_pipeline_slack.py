"""Slack notifiers post to a local server that speaks the incoming-webhook protocol, with XCom metrics.

The factory's wiring (one message per DAG run, from the DAG processor) is tested in a real deployment:
``tests/e2e/test_slack.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fasttrack.pipeline.notify import slack_notifiers
from airflow_provider_fasttrack.pipeline.spec import SlackNotification
from tests.helpers import SECRETS
from tests.slack_stub import BOT_TOKEN, slack_web_api_stub, slack_webhook_stub


@pytest.fixture
def slack_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """A running stub and an Airflow connection ``slack_stub`` (type slackwebhook) pointing at it."""
    with slack_webhook_stub() as (url, received):
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLACK_STUB", json.dumps({"conn_type": "slackwebhook", "password": url})
        )
        yield received


@pytest.fixture
def slack_bot_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """A running Web API stub and an Airflow connection ``slack_bot_stub`` (type slack, a bot token) for it."""
    SECRETS.add(BOT_TOKEN)  # the token must not reach any log
    with slack_web_api_stub() as (base_url, received):
        monkeypatch.setenv(
            "AIRFLOW_CONN_SLACK_BOT_STUB",
            json.dumps({"conn_type": "slack", "password": BOT_TOKEN, "extra": {"base_url": base_url}}),
        )
        yield received


def test_notifiers_follow_the_configuration() -> None:
    assert slack_notifiers(None) == (None, None)
    on_success, on_failure = slack_notifiers(SlackNotification(conn_id="c", on_failure=True))
    assert on_success is None
    assert on_failure.slack_webhook_conn_id == "c"
    assert "{{ ti.task_id }}" in on_failure.text
    (webhook,), (bot,) = (
        [n for n in slack_notifiers(SlackNotification(**mode, on_success=True)) if n]
        for mode in ({}, {"channel": "#ml-runs"})
    )
    assert webhook.slack_webhook_conn_id == "slack_default"  # the Slack provider's default connections
    assert (bot.slack_conn_id, bot.channel) == ("slack_api_default", "#ml-runs")


DAG_FILE = """
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_fasttrack.pipeline.notify import slack_notifiers
from airflow_provider_fasttrack.pipeline.spec import SlackNotification


def evaluate():
    return {"n": 42, "semscore_base": 0.449, "semscore_finetuned": 0.509}


def crash():
    raise RuntimeError("evaluation crashed")


def hostile():
    return {"note": "<!channel> read <https://evil.example|the results> & act"}


MARKUP = "<https://fasttrack.example/runs|Runs> {{ dag.dag_id }}: {{ ti.xcom_pull(task_ids='evaluate')['note'] }}"
on_markup, _ = slack_notifiers(SlackNotification(conn_id="slack_stub", on_success=MARKUP))
on_bot_markup, _ = slack_notifiers(SlackNotification(conn_id="slack_bot_stub", channel="#ml-runs", on_success=MARKUP))


on_success, on_failure = slack_notifiers(SlackNotification(
    conn_id="slack_stub",
    on_success="{{ dag.dag_id }} done: SemScore {{ ti.xcom_pull(task_ids='evaluate')['semscore_base'] }} -> "
    "{{ ti.xcom_pull(task_ids='evaluate')['semscore_finetuned'] }}",
    on_failure=True,
))

on_bot_success, on_bot_failure = slack_notifiers(SlackNotification(
    conn_id="slack_bot_stub",
    channel="#ml-runs",
    on_success="{{ dag.dag_id }}: SemScore {{ ti.xcom_pull(task_ids='evaluate')['semscore_finetuned'] }}",
    on_failure=True,
))

on_leak, _ = slack_notifiers(SlackNotification(conn_id="slack_stub", on_success="leak {{ conn.slack_stub.password }}"))

with DAG("slack_restricted_check", schedule=None):
    PythonOperator(task_id="evaluate", python_callable=evaluate, on_success_callback=on_leak)

with DAG("slack_bot_success_check", schedule=None):
    PythonOperator(task_id="evaluate", python_callable=evaluate,
                   on_success_callback=on_bot_success, on_failure_callback=on_bot_failure)

with DAG("slack_bot_failure_check", schedule=None):
    PythonOperator(task_id="evaluate", python_callable=crash,
                   on_success_callback=on_bot_success, on_failure_callback=on_bot_failure)

with DAG("slack_markup_check", schedule=None):
    PythonOperator(task_id="evaluate", python_callable=hostile, on_success_callback=on_markup)

with DAG("slack_bot_markup_check", schedule=None):
    PythonOperator(task_id="evaluate", python_callable=hostile, on_success_callback=on_bot_markup)

with DAG("slack_success_check", schedule=None) as success_dag:
    PythonOperator(task_id="evaluate", python_callable=evaluate,
                   on_success_callback=on_success, on_failure_callback=on_failure)

on_finished, _ = slack_notifiers(SlackNotification(conn_id="slack_stub", on_success="{{ dag.dag_id }} finished"))

with DAG("slack_dag_callback_check", schedule=None, on_success_callback=on_finished):
    PythonOperator(task_id="evaluate", python_callable=evaluate)

with DAG("slack_failure_check", schedule=None) as failure_dag:
    PythonOperator(task_id="evaluate", python_callable=crash,
                   on_success_callback=on_success, on_failure_callback=on_failure)
"""


@pytest.fixture
def notify_dags(tmp_path, monkeypatch: pytest.MonkeyPatch, airflow_db: None):
    """A DAG bundle holding two small DAGs that use the notifiers the factory builds."""
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "notify_dags.py").write_text(DAG_FILE)
    bundles = [
        {
            "name": "notify-check",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(tmp_path), "refresh_interval": 0},
        }
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    return bag.dags


def test_success_message_carries_metrics_from_xcom(slack_stub: list[dict], notify_dags) -> None:
    run = notify_dags["slack_success_check"].test()
    assert run.state == "success"
    assert slack_stub == [{"text": "slack_success_check done: SemScore 0.449 -> 0.509"}]


def test_a_dag_callback_posts_under_dag_test(slack_stub: list[dict], notify_dags) -> None:
    """``dag.test()`` (and ``airflow dags test``) runs a DAG's callbacks with the serialized DAG in the context
    (and outside any task: XComs cannot be read there, a deployment's DAG processor reads them)."""
    assert notify_dags["slack_dag_callback_check"].test().state == "success"
    assert slack_stub == [{"text": "slack_dag_callback_check finished"}]


def test_a_restricting_deployment_renders_messages_in_its_restricted_context(  # type: ignore[no-untyped-def]
    slack_stub: list[dict], notify_dags, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__FASTTRACK__PIPELINE_CONNECTIONS", "")
    monkeypatch.setenv("AIRFLOW__FASTTRACK__PIPELINE_VARIABLES", "")
    assert notify_dags["slack_success_check"].test().state == "success"
    assert notify_dags["slack_restricted_check"].test().state == "success"
    # XCom and the DAG id still read; the message that reads a connection is refused and not sent
    assert slack_stub == [{"text": "slack_success_check done: SemScore 0.449 -> 0.509"}]


def test_failure_message_names_the_task(slack_stub: list[dict], notify_dags) -> None:
    run = notify_dags["slack_failure_check"].test()
    assert run.state == "failed"
    assert len(slack_stub) == 1
    assert slack_stub[0]["text"].startswith(":x: Pipeline slack_failure_check failed at task evaluate (run ")


def test_bot_token_mode_posts_to_the_channel(slack_bot_stub: list[dict], notify_dags) -> None:
    run = notify_dags["slack_bot_success_check"].test()
    assert run.state == "success"
    assert [(m["channel"], m["text"]) for m in slack_bot_stub] == [
        ("#ml-runs", "slack_bot_success_check: SemScore 0.509")
    ]


def test_bot_token_mode_reports_a_failure(slack_bot_stub: list[dict], notify_dags) -> None:
    run = notify_dags["slack_bot_failure_check"].test()
    assert run.state == "failed"
    assert [m["channel"] for m in slack_bot_stub] == ["#ml-runs"]
    assert slack_bot_stub[0]["text"].startswith(
        ":x: Pipeline slack_bot_failure_check failed at task evaluate"
    )


ESCAPED = "&lt;!channel&gt; read &lt;https://evil.example|the results&gt; &amp; act"


def test_values_from_a_run_cannot_mention_or_link_in_slack(slack_stub: list[dict], notify_dags) -> None:
    """A task's result is escaped as Slack says (``&``, ``<``, ``>``); the message's own link stays a link."""
    assert notify_dags["slack_markup_check"].test().state == "success"
    assert slack_stub == [{"text": f"<https://fasttrack.example/runs|Runs> slack_markup_check: {ESCAPED}"}]


def test_bot_token_mode_escapes_values_from_a_run(slack_bot_stub: list[dict], notify_dags) -> None:
    assert notify_dags["slack_bot_markup_check"].test().state == "success"
    assert [m["text"] for m in slack_bot_stub] == [
        f"<https://fasttrack.example/runs|Runs> slack_bot_markup_check: {ESCAPED}"
    ]


def _usage_run(count: int, run_id: str = "manual__1"):  # type: ignore[no-untyped-def]
    import datetime as dt

    from airflow_provider_fasttrack.usage import SessionUsage, build_run_usage

    start = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    sessions = [
        SessionUsage(
            task_id="score",
            map_index=i,
            session_id=f"s{i}",
            session_name=f"ft-score-{i}",
            status="TERMINATED",
            created_at=start,
            ended_at=start + dt.timedelta(minutes=10),
            running_seconds=600,
            occupied_slots={"cpu": 4, "mem": 2**34, "cuda.shares": 1},
            gpu_hours=1 / 6,
            cpu_core_hours=4 / 6,
        )
        for i in range(count)
    ]
    return build_run_usage("scores", run_id, sessions, {"score": set()})


def test_a_long_usage_table_is_cut_to_fit_a_slack_message_and_says_so() -> None:
    from airflow_provider_fasttrack.pipeline.slack import SLACK_TEXT_LIMIT, with_usage

    text = with_usage("<https://x.example|Run> done", _usage_run(300))
    assert len(text) <= SLACK_TEXT_LIMIT
    assert text.startswith(
        "<https://x.example|Run> done\nUsage: 300 sessions, 50.000 GPU-h, 200.000 CPU-core-h"
    )
    block = text.split("```")[1].strip("\n").splitlines()
    assert block[0].split()[0] == "task" and block[1].startswith("score[0]")
    assert block[-2] == f"... {300 - (len(block) - 3)} more sessions not shown"
    assert block[-1].split() == ["total", "0.0s", "50.000", "200.000"]  # the totals cover all 300
    assert text.endswith(
        "The table is cut to fit a Slack message; all 300 sessions: "
        "`fasttrack usage --dag-id scores --run-id manual__1`"
    )
    # a short table is whole
    whole = with_usage("done", _usage_run(3))
    assert "more sessions not shown" not in whole and "cut to fit" not in whole
    assert whole.count("score[") == 3


def test_usage_text_in_slack_cannot_mention_or_link() -> None:
    from airflow_provider_fasttrack.pipeline.slack import with_usage

    text = with_usage("done", _usage_run(300, run_id="<!channel>&<https://evil.example|x>"), limit=800)
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "--run-id &lt;!channel&gt;&amp;&lt;https://evil.example|x&gt;`" in text


@settings(max_examples=30, deadline=None)
@given(count=st.integers(1, 120), limit=st.integers(1000, 6000))
def test_usage_in_slack_fits_the_limit_and_keeps_the_totals(count: int, limit: int) -> None:
    from airflow_provider_fasttrack.pipeline.slack import with_usage

    text = with_usage("done", _usage_run(count), limit=limit)
    assert len(text) <= limit
    shown = text.count("score[")
    assert 1 <= shown <= count
    assert ("more sessions not shown" in text) == (shown < count)
    assert "\ntotal " in text.split("```")[1]  # the totals row stays
