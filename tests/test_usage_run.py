"""What a pipeline run used, read back from Airflow's metadata database after a dag.test() run on backendai-lite:
``fasttrack usage`` and the functions behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_fasttrack.cli import main as fasttrack
from tests.conftest import load_test_dag
from tests.dags.usage_dags import USAGE_DAG_ID, USAGE_SLACK_CONN_ID
from tests.helpers import connection_env
from tests.slack_stub import slack_webhook_stub

#: the Slack messages of the run
SLACK: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def usage_run(lite, airflow_db) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The run id of one run of ``usage_run`` (four sessions, each one's usage pushed as an XCom), and its Slack
    message in :data:`SLACK`."""
    with pytest.MonkeyPatch.context() as patch, slack_webhook_stub() as (url, received):
        patch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(lite))
        patch.setenv(
            f"AIRFLOW_CONN_{USAGE_SLACK_CONN_ID.upper()}",
            json.dumps({"conn_type": "slackwebhook", "password": url}),
        )
        run = load_test_dag(USAGE_DAG_ID).test()
        assert run.state == "success"
        SLACK[:] = received
        yield run.run_id


def test_the_slack_message_carries_the_totals_and_the_table(usage_run: str) -> None:
    from airflow_provider_fasttrack.pipeline.slack import slack_escape
    from airflow_provider_fasttrack.usage_db import run_usage
    from airflow_provider_fasttrack.usage_text import totals_line, usage_table

    run = run_usage(USAGE_DAG_ID, usage_run)
    # the same table as the command's, in a code block after the message's own text, escaped for Slack (->)
    added = f"\nUsage: {totals_line(run)}\n```\n" + "\n".join(usage_table(run)) + "\n```"
    assert [{"text": f"{USAGE_DAG_ID} done{slack_escape(added)}"}] == SLACK
    assert "critical path prepare -&gt; train -&gt; report" in SLACK[0]["text"]


def test_the_run_usage_has_every_session_and_the_critical_path(usage_run: str) -> None:
    from airflow_provider_fasttrack.usage_db import run_usage

    run = run_usage(USAGE_DAG_ID, usage_run)
    assert sorted(u.task_id for u in run.sessions) == ["evaluate", "prepare", "report", "train"]
    train = next(u for u in run.sessions if u.task_id == "train")
    assert train.occupied_slots["cuda.shares"] == 0.5
    assert run.gpu_hours == pytest.approx(train.gpu_hours) and run.gpu_hours > 0
    assert run.cpu_core_hours == pytest.approx(sum(u.cpu_core_hours for u in run.sessions))
    # train sleeps 2.5 s, evaluate 0.2 s: the path goes through the task without a session (gate)
    assert run.critical_path == ["prepare", "train", "report"]
    assert run.wall_seconds is not None and run.critical_path_seconds is not None
    assert 2.5 < run.critical_path_seconds <= run.wall_seconds


def test_fasttrack_usage_prints_the_table_of_a_run(usage_run: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert fasttrack(["usage", "--dag-id", USAGE_DAG_ID, "--run-id", usage_run]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{USAGE_DAG_ID} run {usage_run}: 4 sessions, ")
    assert "critical path prepare -> train -> report (" in out[0]
    assert out[1].split()[:5] == ["task", "queued", "preparing", "running", "slots"]
    tasks = [line.split()[0] for line in out[2:]]
    assert (tasks[0], set(tasks[1:3]), tasks[3:]) == ("prepare", {"evaluate", "train"}, ["report", "total"])
    train = next(line for line in out if line.startswith("train"))
    assert "cpu=2 mem=512.0MiB cuda.shares=0.5" in train


def test_fasttrack_usage_lists_the_last_runs_and_counts_them(usage_run: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert fasttrack(["usage", "--dag-id", USAGE_DAG_ID, "--last", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["run", "state", "duration", "sessions", "GPU-h", "CPU-core-h", "queued"]
    row = next(line.split() for line in out if line.startswith(usage_run))
    assert row[1:2] == ["success"] and row[3] == "4"
    assert out[-1] == f"{USAGE_DAG_ID}: 1 run: 1 success"


def test_fasttrack_usage_of_an_unknown_run_is_one_line(airflow_db, capsys) -> None:  # type: ignore[no-untyped-def]
    assert fasttrack(["usage", "--dag-id", USAGE_DAG_ID, "--run-id", "nope"]) == 1
    assert (
        capsys.readouterr().err
        == f"fasttrack: no run 'nope' of DAG '{USAGE_DAG_ID}' in the Airflow database\n"
    )
    assert fasttrack(["usage", "--dag-id", "never-ran", "--last", "3"]) == 1
    assert "no runs of DAG 'never-ran'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args", [["--dag-id", "x"], ["--dag-id", "x", "--last", "0"], ["--run-id", "r", "--last", "1"]]
)
def test_fasttrack_usage_wants_one_run_or_a_count(args: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        fasttrack(["usage", *args])
    assert exit_info.value.code == 2


def test_the_demo_summary_shows_the_usage_table(usage_run: str, lite) -> None:  # type: ignore[no-untyped-def]
    import importlib.util
    import time

    from airflow_provider_fasttrack.usage_text import totals_line, usage_table
    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)

    usage = demo.latest_usage(USAGE_DAG_ID)  # the run the demo's `airflow dags test` made, from the database
    assert usage.run_id == usage_run
    lines = demo.summary(lite, USAGE_DAG_ID, time.monotonic(), usage)
    assert lines[1:] == [
        "  no evaluation report was written",
        f"  Usage: {totals_line(usage)}",
        *(f"    {line}" for line in usage_table(usage)),
    ]
    assert len(lines) == 1 + 1 + 1 + (
        1 + 4 + 1
    )  # title, results, totals; the table: header, 4 sessions, totals
    assert demo.summary(lite, "never-ran", time.monotonic(), demo.latest_usage("never-ran"))[2:] == [
        "  Usage: no session task of the run reported its usage"
    ]
