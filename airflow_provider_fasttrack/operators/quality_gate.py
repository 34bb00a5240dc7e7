"""``QualityGateOperator``: Airflow's ``ShortCircuitOperator`` deciding on another task's result.

It reads the XCom of ``after`` (a pipeline task's ``result.json``), renders ``key`` and ``above``, and
short-circuits when ``result[key] > above`` is false: every task downstream of it ends as skipped, whatever its
trigger rule (pipeline tasks run after a skipped upstream), and the run still succeeds. Teardown tasks still run.
Its XCom says what it decided and why; a result it cannot read fails it with one line.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import Context
from airflow.sdk.bases.xcom import BaseXCom
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_provider_fasttrack.pipeline.entities import TRIGGER_RULE
from airflow_provider_fasttrack.pipeline.quality_gates import QualityGateDecision, QualityGateError, decide

__all__ = ["QualityGateOperator"]


def _passes(task: QualityGateOperator, ti: Any) -> bool:
    """The condition: the gate's decision on this run's result of its ``after`` task, pushed as its XCom now (a
    short circuit ends ``execute`` with an exception, so a returned value would not be pushed)."""
    decision = task.decide(ti.xcom_pull(task_ids=task.after))
    ti.xcom_push(key=BaseXCom.XCOM_RETURN_KEY, value=decision.xcom())
    return decision.passed


class QualityGateOperator(ShortCircuitOperator):
    """Let the downstream tasks run only when ``after``'s ``key`` is above ``above``.

    :param after: the task whose result (its XCom) is read.
    :param key: the key of that result (templated).
    :param above: the threshold (templated; renders to a number).
    :param before: the tasks it holds back (for its messages; they are its downstream tasks).
    """

    template_fields = ("key", "above")
    ui_color = "#d7ecd9"

    def __init__(self, *, after: str, key: str, above: str, before: tuple[str, ...], **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", TRIGGER_RULE)
        kwargs.setdefault("retries", 0)  # the decision would be the same
        kwargs.setdefault("do_xcom_push", False)  # the condition pushes the decision
        super().__init__(python_callable=_passes, ignore_downstream_trigger_rules=True, **kwargs)
        self.after = after
        self.key = key
        self.above = above
        self.before = before

    def decide(self, result: Any) -> QualityGateDecision:
        try:
            decision = decide(
                self.task_id,
                after=self.after,
                result=result,
                key=self.key,
                above=self.above,
                before=self.before,
            )
        except QualityGateError as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("%s", decision.reason)
        return decision

    def execute(self, context: Context) -> None:
        from airflow_provider_fasttrack.operators.session import skip_reason

        if why := skip_reason(self.task_id, False, context):
            raise AirflowSkipException(f"Quality gate {self.task_id} skipped ({why}); nothing is held back")
        super().execute(context)
