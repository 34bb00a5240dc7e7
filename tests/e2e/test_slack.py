"""Slack in a real Airflow deployment: one message per DAG run, posted by the DAG processor."""

from __future__ import annotations

import time
from typing import Any

from tests.helpers import SECRETS, wait_for
from tests.slack_stub import WEBHOOK_PATH, slack_webhook_stub


def settled(received: list[dict[str, Any]], quiet: float = 8.0) -> list[dict[str, Any]]:
    """The messages once the first has arrived and nothing more came for ``quiet`` seconds."""
    wait_for(lambda: received, timeout=90)
    count = -1
    while count != len(received):
        count = len(received)
        time.sleep(quiet)
    return list(received)


def test_one_message_per_run(airflow_deployment, lite) -> None:  # type: ignore[no-untyped-def]
    SECRETS.add(WEBHOOK_PATH.rsplit("/", 1)[-1])  # the webhook token must not reach any log
    with slack_webhook_stub() as (url, received):
        airflow_deployment.cli(
            "connections", "add", "slack_e2e", "--conn-type", "slackwebhook", "--conn-password", url
        )
        run = airflow_deployment.run_dag("notify-once")
        assert run["state"] == "success"
        # two final tasks, one message, with a result of one task read from XCom
        messages = settled(received)
        assert len(messages) == 1
        first, usage = messages[0]["text"].split("\n", 1)
        assert first == "notify-once: SemScore 0.449 -> 0.509"
        assert usage.startswith("Usage: ")  # the run's usage, read from its session tasks' XComs

        received.clear()
        run = airflow_deployment.run_dag("notify-fail-fast", timeout=200)
        assert run["state"] == "failed"
        messages = settled(received)
        # two failed tasks (the one that broke and the sibling fail-fast destroyed), one message
        assert len(messages) == 1
        assert messages[0]["text"].startswith(":x: Pipeline notify-fail-fast failed at task ")
