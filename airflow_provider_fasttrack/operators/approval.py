"""``PipelineApproval``: a pipeline's ``airflow.approvals`` entry, Airflow's ``ApprovalOperator`` with the
pipeline's rules.

- It asks with the evaluation summary of the run as its body unless the pipeline gives one
  (:func:`airflow_provider_fasttrack.pipeline.approvals.evaluation_summary`); any body is cut to
  :data:`~airflow_provider_fasttrack.pipeline.approvals.BODY_LIMIT` characters, and the secrets Airflow's
  masker knows are hidden in it and in the subject.
- Subject and body render as the pipeline's other templates do (restricted where the deployment restricts
  connections and variables).
- Reject skips every task after it, whatever their trigger rule: pipeline tasks run after a skipped upstream
  (``none_failed``), so skipping only the direct ones would let the rest of the promotion run.
- It runs when nothing before it failed (``none_failed``): a skipped evaluation does not let the promotion pass
  unasked. Listed in the run's ``skip_tasks``, it is skipped and the tasks after it run without asking.
- The pipeline's ``execution_timeout`` limits sessions, not the wait for a person: only ``response_timeout`` does.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_fasttrack.pipeline.entities import TRIGGER_RULE

__all__ = ["PipelineApproval"]


class PipelineApproval(ApprovalOperator):
    """Approve or reject the tasks after it.

    :param summary_of: the task whose result (XCom) the default body shows.
    :param decision_of: a quality gate whose decision (XCom) the default body shows too, or ``None``.
    """

    ui_color = "#e8dcff"

    def __init__(self, *, summary_of: str, decision_of: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("ignore_downstream_trigger_rules", True)
        kwargs.setdefault("trigger_rule", TRIGGER_RULE)
        kwargs.setdefault("retries", 0)
        kwargs.setdefault("execution_timeout", None)
        super().__init__(**kwargs)
        self.summary_of = summary_of
        self.decision_of = decision_of

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        from airflow_provider_fasttrack.operators.session import skip_reason
        from airflow_provider_fasttrack.pipeline.template_context import restricted_rendering

        if skip_reason(self.task_id, False, context) is None:
            context, jinja_env = restricted_rendering(
                f"Approval {self.task_id}", context, jinja_env, self.dag
            )
            super().render_template_fields(context, jinja_env)

    def execute(self, context: Context) -> Any:
        from airflow_provider_fasttrack.masking import redacted
        from airflow_provider_fasttrack.operators.session import skip_reason
        from airflow_provider_fasttrack.pipeline.approvals import capped

        if why := skip_reason(self.task_id, False, context):
            raise AirflowSkipException(
                f"Approval {self.task_id} skipped ({why}); the tasks after it run unasked"
            )
        # a subject or body the pipeline gives may read connections: the secrets the masker knows are hidden
        self.subject = str(redacted(self.subject))
        self.body = capped(str(redacted(self.body)) if self.body else self._summary(context))
        return super().execute(context)

    def _summary(self, context: Context) -> str:
        from airflow_provider_fasttrack.links import run_view_url
        from airflow_provider_fasttrack.pipeline.approvals import evaluation_summary
        from airflow_provider_fasttrack.usage import RunUsage, run_usage_from_xcom

        ti, dag, run_id = context["ti"], context["dag"], context["run_id"]
        result = ti.xcom_pull(task_ids=self.summary_of)
        decision = ti.xcom_pull(task_ids=self.decision_of) if self.decision_of else None
        usage: RunUsage | None = None
        try:
            usage = run_usage_from_xcom(ti, dag, run_id)
        except ValueError as exc:  # a malformed usage XCom: the request goes without the usage
            self.log.warning("The approval request goes without the run's usage: %s", exc)
        return evaluation_summary(
            source=self.summary_of,
            result=result,
            decision=decision,
            usage=usage if usage is not None and usage.sessions else None,
            report_url=run_view_url(dag.dag_id, run_id),
        )
