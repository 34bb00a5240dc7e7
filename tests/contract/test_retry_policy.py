"""What each server answers to a session request that a retry cannot help, and that the operators' retry policy
reads that answer as permanent: the task fails on its first try, no session was made."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from airflow.sdk import RetryAction

from airflow_provider_fasttrack.exceptions import BackendAIAPIError, BackendAIError, ResourceRequestError
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.operators.session import BackendAISessionOperator
from airflow_provider_fasttrack.retry_policy import BackendAIRetryPolicy
from tests.contract.conftest import Backend
from tests.contract.support import hook_with_a_wrong_secret, request_of, unique_name

#: the request fields that make each refusal, over those of a request the server would run
REFUSED: dict[str, dict[str, Any]] = {
    "invalid request": {"priority": 500},  # priorities go from 0 to 100
    "unknown image": {"image": "registry.invalid/no-such-image:1"},
    "missing vfolder": {"mounts": ["ct-no-such-folder"]},
}


def assert_permanent(error: BaseException) -> None:
    decision = BackendAIRetryPolicy().evaluate(error, try_number=1, max_tries=2)
    assert decision.action is RetryAction.FAIL, (decision, error)


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_a_refused_session_request_is_not_retried(
    backend: Backend, contract_hook: BackendAIHook, kind: str
) -> None:
    name = unique_name("refused")
    request = replace(request_of(backend, "exit 0"), **REFUSED[kind])
    with pytest.raises(BackendAIError) as refused:
        contract_hook.create_session(request.body(name, defaults=contract_hook.settings))
    error = refused.value
    assert isinstance(error, BackendAIAPIError) and 400 <= error.status_code < 500, error
    assert error.status_code != 429, error
    assert_permanent(error)
    assert contract_hook.find_sessions(name) == []  # the manager made nothing


def test_a_refused_keypair_is_not_retried(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = hook_with_a_wrong_secret(backend, monkeypatch)
    try:
        body = request_of(backend, "exit 0").body(unique_name("badkey"), defaults=hook.settings)
        with pytest.raises(BackendAIError) as refused:
            hook.create_session(body)
    finally:
        hook.close()
    assert isinstance(refused.value, BackendAIAPIError) and refused.value.status_code == 401, refused.value
    assert_permanent(refused.value)


@pytest.mark.parametrize("resources", [{"cpu": 100000}, {"mem": "64t"}], ids=["cpu", "mem"])
def test_a_request_that_never_fits_is_not_retried(
    backend: Backend, contract_hook: BackendAIHook, resources: dict[str, Any]
) -> None:
    """The operator's capacity check reads the keypair's policy and the scaling group's total from check-presets
    on both servers, before any session exists."""
    operator = BackendAISessionOperator(
        task_id="never_fits",
        image=backend.image,
        command="exit 0",
        resources=resources,
        scaling_group=backend.scaling_group,
        backendai_conn_id=contract_hook.backendai_conn_id,
    )
    with pytest.raises(ResourceRequestError) as never:
        operator._check_capacity()
    assert re.search("can never provide more than", str(never.value)), never.value
    assert_permanent(never.value)
