"""The operators' default task retry policy: spend a task's retries only where a retry can help.

Airflow's task runner asks a task's ``retry_policy`` about each failure, in the worker, whether ``execute`` or a
deferred task's ``execute_complete`` raised it. :class:`BackendAIRetryPolicy` answers from the one classification
in :mod:`airflow_provider_fasttrack.exceptions`: FAIL for :data:`~airflow_provider_fasttrack.exceptions.
PERMANENT_ERRORS` (the task fails on this try, whatever ``retries`` says), RETRY for :data:`~airflow_provider_
fasttrack.exceptions.TRANSIENT_ERRORS` (while retries are left), Airflow's default for everything else (a failed
session, a timeout). The runner logs the decision in one line with its reason, which names the error.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryDecision, RetryRule

from airflow_provider_fasttrack.exceptions import PERMANENT_ERRORS, TRANSIENT_ERRORS

__all__ = ["BackendAIRetryPolicy", "with_default_retry_policy"]


class BackendAIRetryPolicy(ExceptionRetryPolicy):
    """FAIL on the errors a retry cannot help, RETRY on transient ones, the task's default otherwise."""

    def __init__(self) -> None:
        super().__init__(
            rules=[
                RetryRule(
                    exception=list(PERMANENT_ERRORS), action=RetryAction.FAIL, reason="a retry cannot help"
                ),
                RetryRule(exception=list(TRANSIENT_ERRORS), action=RetryAction.RETRY, reason="transient"),
            ]
        )

    def evaluate(
        self, exception: BaseException, try_number: int, max_tries: int, context: Any = None
    ) -> RetryDecision:
        decision = super().evaluate(exception, try_number, max_tries, context)
        if decision.action is RetryAction.DEFAULT:
            return decision
        message = " ".join(str(exception).split())  # one line, as the manager's messages may span several
        cause = f"{type(exception).__name__}: {message}" if message else type(exception).__name__
        return replace(decision, reason=f"{decision.reason} ({cause})")


def with_default_retry_policy(kwargs: dict[str, Any]) -> dict[str, Any]:
    """An operator's keyword arguments with :class:`BackendAIRetryPolicy` as ``retry_policy`` unless one is given.

    One given in ``default_args`` counts as given. ``None`` counts as not given: ``partial()`` passes it for a
    mapped task that names none. A task that wants Airflow's plain retries passes ``ExceptionRetryPolicy(rules=[])``.
    """
    if kwargs.get("retry_policy") is None:
        from_defaults = (kwargs.get("default_args") or {}).get("retry_policy")
        kwargs["retry_policy"] = from_defaults or BackendAIRetryPolicy()
    return kwargs
