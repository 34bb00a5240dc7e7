"""Slack notifications for a pipeline: the Slack provider's notifiers as the DAG's success and failure callbacks.

An incoming webhook (``SlackWebhookNotifier``), or with a ``channel`` a bot token (``SlackNotifier``, Slack's
``chat.postMessage``).

One message per DAG run. Airflow runs DAG callbacks in the DAG processor with the context of the run's last
task instance: for a failure, the failed task that ended last; for a success, the task that ended last. Messages
are Jinja templates rendered with that context, so they can read any task's results from XCom, e.g.
``{{ ti.xcom_pull(task_ids='evaluate')['semscore_finetuned'] }}``. Each value a template writes is escaped as
Slack asks (``&``, ``<``, ``>``: :mod:`~airflow_provider_fasttrack.pipeline.slack`), so a result cannot mention a
channel or plant a link; the template's own text, links included, is sent as written.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_fasttrack.pipeline.spec import SlackNotification

__all__ = ["DEFAULT_FAILURE_TEXT", "DEFAULT_SUCCESS_TEXT", "slack_notifiers"]

#: the connections used when ``conn_id`` is not given (the Slack provider's own defaults)
WEBHOOK_CONN_ID = "slack_default"
BOT_CONN_ID = "slack_api_default"
DEFAULT_SUCCESS_TEXT = ":white_check_mark: Pipeline {{ dag.dag_id }} succeeded (run {{ run_id }})."
DEFAULT_FAILURE_TEXT = ":x: Pipeline {{ dag.dag_id }} failed at task {{ ti.task_id }} (run {{ run_id }})."


def _text(message: bool | str, default: str) -> str | None:
    if message is True:
        return default
    if isinstance(message, str) and message.strip():
        return message
    return None


def slack_notifiers(slack: SlackNotification | None) -> tuple[Any | None, Any | None]:
    """``(on_success, on_failure)`` notifiers for this configuration; ``None`` where not wanted."""
    if slack is None:
        return None, None
    success_text = _text(slack.on_success, DEFAULT_SUCCESS_TEXT)
    failure_text = _text(slack.on_failure, DEFAULT_FAILURE_TEXT)
    if success_text is None and failure_text is None:
        return None, None
    return (
        _notifier(slack, success_text) if success_text else None,
        _notifier(slack, failure_text) if failure_text else None,
    )


def _notifier(slack: SlackNotification, text: str) -> Any:
    """A bot-token notifier when a channel is named, else an incoming-webhook notifier (see
    :mod:`airflow_provider_fasttrack.pipeline.slack`: values escaped, rendered as pipeline templates render)."""
    from airflow_provider_fasttrack.pipeline.slack import (
        EscapingSlackNotifier,
        EscapingSlackWebhookNotifier,
    )

    if slack.channel:
        return EscapingSlackNotifier(
            slack_conn_id=slack.conn_id or BOT_CONN_ID, channel=slack.channel, text=text
        )
    return EscapingSlackWebhookNotifier(slack_webhook_conn_id=slack.conn_id or WEBHOOK_CONN_ID, text=text)
