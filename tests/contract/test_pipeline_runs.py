"""Pipelines built from YAML, run with dag.test() on each server: fan-in, per-task resources, a skipped task, a
failure with fail-fast, a timeout.

The assertions are the same on both servers except what the manager's dummy agent cannot give: it runs no command,
so there are no real exit codes, no session output in the task log and no ``result.json`` (no XCom value); those
are checked on backendai-lite only.
"""

from __future__ import annotations

import pendulum
import pytest

from airflow_provider_fasttrack.naming import session_name
from airflow_provider_fasttrack.session_request import SessionRequest
from tests.conftest import load_test_dag
from tests.contract.conftest import Backend
from tests.helpers import wait_for
from tests.operators.test_fail_fast_retries import manual_run_id

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def pipeline_conn(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """The pipelines' connection (``backendai_default``) on the server under test."""
    monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", backend.conn_env("user"))
    return backend


def states(dag_run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_fan_in_with_resources_and_a_skipped_task(pipeline_conn: Backend, contract_hook, capfd) -> None:  # type: ignore[no-untyped-def]
    when = pendulum.now("UTC").replace(microsecond=0)
    dag_run = load_test_dag("contract-fan-in").test(logical_date=when, run_after=when)

    assert states(dag_run) == {"left": "success", "right": "success", "skipped": "skipped", "join": "success"}
    assert dag_run.state == "success"
    run_id = manual_run_id(when)
    for task_id in ("left", "right", "join"):
        (session,) = contract_hook.find_sessions(session_name("contract-fan-in", run_id, task_id))
        assert session["status"] == "TERMINATED", (task_id, session)
    assert contract_hook.find_sessions(session_name("contract-fan-in", run_id, "skipped")) == []
    if pipeline_conn.name == "lite":  # the dummy agent runs no command: no output to relay
        assert "joined" in "".join(capfd.readouterr())


def test_timeout_failure_and_fail_fast(pipeline_conn: Backend, contract_hook) -> None:  # type: ignore[no-untyped-def]
    when = pendulum.now("UTC").replace(microsecond=0)
    run_id = manual_run_id(when)
    sibling = session_name("contract-failures", run_id, "sibling")
    # the sibling's session, started under its task's name as another worker would have started it
    contract_hook.create_session(
        SessionRequest(image=pipeline_conn.image, command="sleep 300; exit 0").body(sibling)
    )
    wait_for(
        lambda: [s for s in contract_hook.find_sessions(sibling) if s["status"] == "RUNNING"], timeout=90
    )

    dag_run = load_test_dag("contract-failures").test(logical_date=when, run_after=when)

    assert states(dag_run) == {
        "too-long": "failed",  # execution_timeout (20 s) while its session sleeps for 300
        "too-long.continue_on_failure": "success",
        "breaks": "failed",  # exit 4
        "sibling": "upstream_failed",
        "after-breaks": "upstream_failed",
    }
    assert dag_run.state == "failed"
    for task_id in ("too-long", "sibling"):  # destroyed: by the timeout, by fail-fast
        (session,) = wait_for(
            lambda task_id=task_id: [
                s
                for s in contract_hook.find_sessions(session_name("contract-failures", run_id, task_id))
                if s["status"] in {"TERMINATED", "CANCELLED"}
            ],
            timeout=60,
        )
        state = contract_hook.get_session_state(session["id"])
        # destroyed long before its 300 s were up; the manager's GraphQL gave no status_info for such a session
        assert state.result == "UNDEFINED", (task_id, state)
        if pipeline_conn.name == "lite":
            assert state.status_info == "force-terminated", (task_id, state)  # the operator destroys forced
    (broken,) = contract_hook.find_sessions(session_name("contract-failures", run_id, "breaks"))
    state = contract_hook.get_session_state(broken["id"])
    assert (state.result, state.status_info) == ("FAILURE", "task-failed")
