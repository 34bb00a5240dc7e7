"""The Slack provider's notifiers, with the values a message template writes escaped as Slack asks.

Slack reads ``<!channel>``, ``<@U123>`` and ``<https://...|label>`` in a message's text as mentions and links, and
asks that ``&``, ``<`` and ``>`` be written ``&amp;``, ``&lt;`` and ``&gt;`` wherever they are meant as text. A
pipeline's message is a Jinja template whose values come from the run (a task's ``result.json`` through XCom, an
error message): every ``{{ ... }}`` value is escaped, so a session cannot mention a channel or plant a link. The
template's own text is sent as written, links and mentions included. A message renders as pipeline templates do:
under a deployment that restricts connections and variables, in the restricted context
(:func:`airflow_provider_fasttrack.pipeline.template_context.restricted_rendering`).

A message gains what the run used when its session tasks reported usage (``backendai_usage`` XComs): the totals
and the table of :mod:`airflow_provider_fasttrack.usage_text` in a code block, cut to fit a Slack message.

Imports the Slack provider: loaded only when a pipeline has Slack notifications.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.slack.notifications.slack import SlackNotifier
from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

if TYPE_CHECKING:
    import jinja2

    from airflow_provider_fasttrack.usage import RunUsage

__all__ = [
    "SLACK_TEXT_LIMIT",
    "EscapingSlackNotifier",
    "EscapingSlackWebhookNotifier",
    "slack_escape",
    "with_usage",
]

#: characters of a message's text: Slack advises at most 4,000 (and cuts messages at 40,000)
SLACK_TEXT_LIMIT = 4000
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
log = logging.getLogger(__name__)


def slack_escape(value: Any) -> str:
    """``value`` as text that Slack shows as it is (its ``&``, ``<`` and ``>`` escaped)."""
    return str(value).translate(_ESCAPES)


def with_usage(message: str, run: RunUsage, *, limit: int = SLACK_TEXT_LIMIT) -> str:
    """``message`` followed by the run's totals and its usage table in a code block.

    Rows are left out, last first, until the whole text fits ``limit`` characters (at worst the table keeps its
    header and totals); the text then names the command that shows them all. What is added is escaped.
    """
    from airflow_provider_fasttrack.usage_text import totals_line, usage_table  # at send time, not parse time

    def text(rows: int) -> str:
        added = f"\nUsage: {totals_line(run)}\n```\n" + "\n".join(usage_table(run, max_rows=rows)) + "\n```"
        if rows < len(run.sessions):
            added += (
                f"\nThe table is cut to fit a Slack message; all {len(run.sessions)} sessions: "
                f"`fasttrack usage --dag-id {run.dag_id} --run-id {run.run_id}`"
            )
        return message + slack_escape(added)

    if len(whole := text(len(run.sessions))) <= limit:
        return whole
    low, high = 0, len(run.sessions) - 1  # the most rows that fit lie in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if len(text(middle)) <= limit else (low, middle - 1)
    return text(low)


def _reads_xcoms(ti: Any) -> bool:
    """Whether ``ti`` reads XComs here: a Task SDK task instance asks its supervisor (a task's, or the DAG
    processor's), which ``dag.test()`` and ``airflow dags test`` do not give their DAG callbacks."""
    from airflow.sdk.execution_time import task_runner

    return (
        isinstance(ti, task_runner.RuntimeTaskInstance)
        and getattr(task_runner, "SUPERVISOR_COMMS", None) is not None
    )


def _run_usage(context: Any) -> RunUsage | None:
    """The usage of the context's run; ``None`` when no session task reported any, or it cannot be read (logged:
    the message goes without it).

    Read through the context's task instance where it can read XComs (a DAG callback in the DAG processor, a
    task's callback); else (``dag.test()`` and ``airflow dags test`` run DAG callbacks in a process with the
    metadata database) from that database, as ``fasttrack usage`` reads it.
    """
    ti, dag, run_id = context.get("ti"), context.get("dag"), context.get("run_id")
    if dag is None or run_id is None:
        return None
    from airflow_provider_fasttrack.usage import run_usage_from_xcom  # at send time, not parse time

    try:
        if _reads_xcoms(ti):
            run = run_usage_from_xcom(ti, dag, run_id)
        else:
            from airflow_provider_fasttrack.usage_db import run_usage

            run = run_usage(dag.dag_id, run_id)
    except Exception as exc:  # the message matters more than its usage table
        log.warning("The Slack message goes without the run's usage: %s", exc)
        return None
    return run if run.sessions else None


class _EscapedValues:
    """Renders the template fields as pipeline templates render, with every expression's value escaped."""

    def get_template_env(self, dag: Any = None) -> jinja2.Environment:
        # ``dag.test()`` runs DAG callbacks with the serialized DAG, which has no template environment
        own = dag if hasattr(dag, "get_template_env") else None
        env: jinja2.Environment = super().get_template_env(dag=own)  # type: ignore[misc]
        return env.overlay(finalize=slack_escape)

    def render_template_fields(self, context: Any, jinja_env: jinja2.Environment | None = None) -> None:
        from airflow_provider_fasttrack.pipeline.template_context import restricted_rendering

        usage = _run_usage(context)
        context, jinja_env = restricted_rendering(
            "The Slack notification", context, jinja_env, context.get("dag")
        )
        if jinja_env is not None:
            jinja_env = jinja_env.overlay(finalize=slack_escape)
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]
        text = getattr(self, "text", None)
        if usage is not None and isinstance(text, str):
            self.text = with_usage(text, usage)

    def _should_render_native(self, dag: Any = None) -> bool:
        return False  # a message is text (the restricted context's ``dag`` is a view, not the DAG)


class EscapingSlackWebhookNotifier(_EscapedValues, SlackWebhookNotifier):
    """An incoming-webhook notifier whose message values are escaped."""


class EscapingSlackNotifier(_EscapedValues, SlackNotifier):
    """A bot-token (``chat.postMessage``) notifier whose message values are escaped."""
