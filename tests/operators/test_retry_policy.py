"""The operators' default retry policy in real DAG runs (dag.test) against backendai-lite: a task whose error a
retry cannot help fails on its first try although it has retries left; a transient error and a failed session
still spend the task's retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.conftest import load_test_dag
from tests.dags.retry_dags import STRICT_CONN_ID, WRONG_SECRET_CONN_ID
from tests.helpers import LOG_FILES, SECRETS, connection_env

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")

#: DAG id -> what the task's log says about the cause
PERMANENT = {
    "retry_invalid_request": "priority",
    "retry_bad_credentials": "401 auth-failed",
    "retry_unknown_image": "No such environment image",
    "retry_missing_vfolder": "no-such-folder",
    "retry_missing_vfolder_mapped": "no-such-folder",
    "retry_never_fits": "cuda.shares=500",
    "retry_missing_secret": "NO_SUCH_SECRET",
    "retry_service_missing_model": "no-such-model",
    "retry_after_deferral": "'latest/task.json' is a directory",
}


@pytest.fixture(scope="module")
def strict_lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiteServer]:
    """A backendai-lite that knows only ``python:*`` images and answers every capacity check with 429."""
    faults = {
        "error_rate": 1.0,
        "error_statuses": [429],
        "retry_after_seconds": 0,
        "paths": ["/resource/check-presets"],
    }
    with LiteServer(
        extra_config={"images": [{"pattern": "python:*"}]},
        faults=faults,
        data_dir=tmp_path_factory.mktemp("strict-lite"),
    ) as server:
        SECRETS.add(server.secret_key)
        LOG_FILES.append(server.log_path)
        yield server


@pytest.fixture
def connections(lite, strict_lite, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(f"AIRFLOW_CONN_{STRICT_CONN_ID.upper()}", connection_env(strict_lite))
    wrong = connection_env(lite, secret_key="not-the-secret-key-of-this-keypair")
    monkeypatch.setenv(f"AIRFLOW_CONN_{WRONG_SECRET_CONN_ID.upper()}", wrong)


def run_task(dag_id: str):  # type: ignore[no-untyped-def]
    dag_run = load_test_dag(dag_id).test()
    (ti,) = dag_run.get_task_instances()
    return ti


@pytest.mark.usefixtures("connections")
@pytest.mark.parametrize("dag_id", sorted(PERMANENT))
def test_an_error_a_retry_cannot_help_fails_the_first_try(dag_id: str, capfd) -> None:  # type: ignore[no-untyped-def]
    ti = run_task(dag_id)
    text = "".join(capfd.readouterr())
    assert (ti.state, ti.try_number, ti.max_tries) == ("failed", 1, 2), text[-3000:]
    decisions = [line for line in text.splitlines() if "Retry policy decision" in line]
    assert len(decisions) == 1, text[-3000:]
    assert "action=fail" in decisions[0] and "a retry cannot help" in decisions[0], decisions
    assert PERMANENT[dag_id] in decisions[0], decisions
    if dag_id == "retry_after_deferral":  # the error came from execute_complete, once the trigger fired
        assert "Pausing task as DEFERRED" in text and "resume_execution" in text


@pytest.mark.usefixtures("connections")
def test_a_transient_error_spends_the_retries(strict_lite, capfd) -> None:  # type: ignore[no-untyped-def]
    ti = run_task("retry_rate_limited")
    text = "".join(capfd.readouterr())
    assert (ti.state, ti.try_number) == ("failed", 3), text[-3000:]
    decisions = [line for line in text.splitlines() if "Retry policy decision" in line]
    assert len(decisions) == 3 and all("429 rate-limit-exceeded" in line for line in decisions), decisions
    assert all("action=retry" in line for line in decisions[:2]), decisions
    with strict_lite.client() as http:
        injected = http.get("/lite/faults").json()
    assert injected["error_before"] + injected["error_after"] >= 3 * 8  # the hook's own retries, each try


def test_a_failed_session_spends_the_retries(lite) -> None:  # type: ignore[no-untyped-def]
    ti = run_task("retry_session_failed")
    assert (ti.state, ti.try_number) == ("failed", 3)


def test_a_task_may_bring_its_own_retry_policy() -> None:
    from airflow.sdk import DAG, ExceptionRetryPolicy

    from airflow_provider_fasttrack.operators.service import BackendAIModelServiceOperator
    from airflow_provider_fasttrack.operators.session import BackendAISessionOperator
    from airflow_provider_fasttrack.retry_policy import BackendAIRetryPolicy

    every_error_retried = ExceptionRetryPolicy(rules=[])
    session = {"image": "python:3.11", "command": "true"}
    with DAG("retry_policy_given", schedule=None, default_args={"retry_policy": every_error_retried}):
        from_default_args = BackendAISessionOperator(task_id="session", **session)
        service = BackendAIModelServiceOperator(task_id="service", name="svc", model="m", image="python:3.11")
    given = BackendAISessionOperator(task_id="given", retry_policy=every_error_retried, **session)
    plain = BackendAISessionOperator(task_id="plain", **session)
    for task in (from_default_args, service, given):
        assert type(task.retry_policy) is ExceptionRetryPolicy, task
        assert task.retry_policy.rules == []
    assert isinstance(plain.retry_policy, BackendAIRetryPolicy)
    assert isinstance(
        BackendAIModelServiceOperator(task_id="s", name="s", model="m", image="python:3.11").retry_policy,
        BackendAIRetryPolicy,
    )
