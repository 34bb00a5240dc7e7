"""What the operators' retry policy decides for each answer of the manager, as the hook maps it to an error."""

from __future__ import annotations

import httpx
import pytest
from airflow.sdk import RetryAction

from airflow_provider_fasttrack.exceptions import (
    BackendAIConnectionError,
    ResourceRequestError,
    SecretNotFoundError,
    ServiceFailedError,
    ServiceRequestError,
    SessionFailedError,
)
from airflow_provider_fasttrack.hooks.base import error_from_response
from airflow_provider_fasttrack.retry_policy import BackendAIRetryPolicy

PROBLEM = "https://api.backend.ai/probs/"


def answer(status: int, kind: str, msg: str = "") -> Exception:
    request = httpx.Request("POST", "http://manager.invalid/session")
    body = {"type": PROBLEM + kind, "title": kind, "msg": msg}
    return error_from_response(httpx.Response(status, json=body, request=request))


def decide(error: BaseException) -> RetryAction:
    return BackendAIRetryPolicy().evaluate(error, try_number=1, max_tries=2).action


@pytest.mark.parametrize(
    ("status", "kind", "action"),
    [
        (400, "invalid-api-params", RetryAction.FAIL),
        (400, "generic-bad-request", RetryAction.FAIL),
        (400, "quota-exceeded", RetryAction.FAIL),
        (400, "unknown-resource-slot-type", RetryAction.FAIL),
        (400, "invalid-auth-params", RetryAction.FAIL),
        (401, "auth-failed", RetryAction.FAIL),
        (403, "not-enough-permission", RetryAction.FAIL),
        (404, "object-not-found", RetryAction.FAIL),
        (429, "rate-limit-exceeded", RetryAction.RETRY),
        (500, "internal-error", RetryAction.RETRY),
        (503, "server-frozen", RetryAction.RETRY),
    ],
)
def test_each_answer_of_the_manager(status: int, kind: str, action: RetryAction) -> None:
    assert decide(answer(status, kind)) is action


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (BackendAIConnectionError("POST /session: ConnectError"), RetryAction.RETRY),
        (ResourceRequestError("requests cpu=1000"), RetryAction.FAIL),
        (ServiceRequestError("the model folder 'm' does not exist"), RetryAction.FAIL),
        (SecretNotFoundError("no Airflow Variable 'TOKEN'"), RetryAction.FAIL),
        (SessionFailedError("result FAILURE, exit code 3"), RetryAction.DEFAULT),
        (ServiceFailedError("replicas failed"), RetryAction.DEFAULT),
        (ValueError("anything else"), RetryAction.DEFAULT),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_the_provider_s_own_errors(error: BaseException, action: RetryAction) -> None:
    assert decide(error) is action


def test_the_reason_is_one_line_with_the_whole_message() -> None:
    error = answer(
        400, "generic-bad-request", "Schema validation failed.\npriority\n  Input should be <= 100"
    )
    decision = BackendAIRetryPolicy().evaluate(error, try_number=1, max_tries=2)
    assert decision.reason is not None and "\n" not in decision.reason
    assert decision.reason.startswith("a retry cannot help (BackendAIBadRequestError: POST /session -> 400")
    assert "priority Input should be <= 100" in decision.reason
