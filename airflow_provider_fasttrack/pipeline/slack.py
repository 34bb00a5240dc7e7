"""The Slack provider's notifiers, with the values a message template writes escaped as Slack asks.

Slack reads ``<!channel>``, ``<@U123>`` and ``<https://...|label>`` in a message's text as mentions and links, and
asks that ``&``, ``<`` and ``>`` be written ``&amp;``, ``&lt;`` and ``&gt;`` wherever they are meant as text. A
pipeline's message is a Jinja template whose values come from the run (a task's ``result.json`` through XCom, an
error message): every ``{{ ... }}`` value is escaped, so a session cannot mention a channel or plant a link. The
template's own text is sent as written, links and mentions included. A message renders as pipeline templates do:
under a deployment that restricts connections and variables, in the restricted context
(:func:`airflow_provider_fasttrack.pipeline.template_context.restricted_rendering`).

Imports the Slack provider: loaded only when a pipeline has Slack notifications.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.slack.notifications.slack import SlackNotifier
from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

if TYPE_CHECKING:
    import jinja2

__all__ = ["EscapingSlackNotifier", "EscapingSlackWebhookNotifier", "slack_escape"]

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def slack_escape(value: Any) -> str:
    """``value`` as text that Slack shows as it is (its ``&``, ``<`` and ``>`` escaped)."""
    return str(value).translate(_ESCAPES)


class _EscapedValues:
    """Renders the template fields as pipeline templates render, with every expression's value escaped."""

    def get_template_env(self, dag: Any = None) -> jinja2.Environment:
        # ``dag.test()`` runs DAG callbacks with the serialized DAG, which has no template environment
        own = dag if hasattr(dag, "get_template_env") else None
        env: jinja2.Environment = super().get_template_env(dag=own)  # type: ignore[misc]
        return env.overlay(finalize=slack_escape)

    def render_template_fields(self, context: Any, jinja_env: jinja2.Environment | None = None) -> None:
        from airflow_provider_fasttrack.pipeline.template_context import restricted_rendering

        context, jinja_env = restricted_rendering(
            "The Slack notification", context, jinja_env, context.get("dag")
        )
        if jinja_env is not None:
            jinja_env = jinja_env.overlay(finalize=slack_escape)
        super().render_template_fields(context, jinja_env)  # type: ignore[misc]

    def _should_render_native(self, dag: Any = None) -> bool:
        return False  # a message is text (the restricted context's ``dag`` is a view, not the DAG)


class EscapingSlackWebhookNotifier(_EscapedValues, SlackWebhookNotifier):
    """An incoming-webhook notifier whose message values are escaped."""


class EscapingSlackNotifier(_EscapedValues, SlackNotifier):
    """A bot-token (``chat.postMessage``) notifier whose message values are escaped."""
