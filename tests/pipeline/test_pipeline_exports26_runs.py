"""FastTrack 26.x fields in DAG runs (dag.test) on backendai-lite: retry, params, secrets, continue_on_failure."""

from __future__ import annotations

import hashlib
import secrets

import pendulum
import pytest
from airflow.models.renderedtifields import RenderedTaskInstanceFields
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy import select

from airflow_provider_fasttrack.naming import pipeline_job_id, session_name
from airflow_provider_fasttrack.session_request import SessionRequest
from tests.conftest import load_test_dag
from tests.helpers import SECRETS, lite_sessions_named, wait_for
from tests.operators.test_fail_fast_retries import manual_run_id

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")


def states(dag_run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_retry_params_and_secret_in_a_run(lite, monkeypatch: pytest.MonkeyPatch, capfd) -> None:  # type: ignore[no-untyped-def]
    value = f"ft-secret-{secrets.token_hex(12)}"
    SECRETS.add(value)  # the suite's last test also checks every log for it
    monkeypatch.setenv("AIRFLOW_VAR_FASTTRACK_TEST_SECRET", value)
    digest = hashlib.sha256(value.encode()).hexdigest()
    dag = load_test_dag("retry-params-secret")
    assert dag.params.get_param("expected_digest").schema["type"] == "string"

    dag_run = dag.test(run_conf={"expected_digest": digest})

    assert states(dag_run) == {"flaky": "success", "uses-secret": "success"}, states(dag_run)
    flaky = dag_run.get_task_instance("flaky")
    assert (flaky.try_number, flaky.max_tries) == (2, 1)  # retry.max_attempts: 2 -> one retry
    text = "".join(capfd.readouterr())
    assert "first attempt fails" in text and "second attempt" in text
    # the session compared the digest of what it received with the run param: the secret reached it
    assert "digest matches" in text
    # the value is registered with the task SDK's secrets masker, which redacts the task log a deployment
    # writes (dag.test() prints task logs to the console without that redaction, so apply it here)
    from airflow.sdk._shared.secrets_masker import redact

    (line,) = [line for line in text.splitlines() if "the session sees the secret" in line]
    assert value in line and value not in redact(line)
    assert "the session sees the secret ***" in redact(line)
    # the rendered-template view and XCom hold the reference, never the value
    rendered = str(RenderedTaskInstanceFields.get_templated_fields(dag_run.get_task_instance("uses-secret")))
    assert "${{ secrets.FASTTRACK_TEST_SECRET }}" in rendered and value not in rendered
    with create_session() as session:
        query = select(XComModel).where(XComModel.dag_id == dag.dag_id, XComModel.run_id == dag_run.run_id)
        xcoms = [str(x.value) for x in session.scalars(query)]
    assert xcoms and not any(value in x for x in xcoms)


def test_continue_on_failure_in_a_run(lite, hook, capfd) -> None:  # type: ignore[no-untyped-def]
    dag_id = "continue-on-failure"
    when = pendulum.datetime(2026, 5, 1, tz="UTC")
    run_id = manual_run_id(when)
    job = pipeline_job_id(dag_id, run_id)
    vfolder = f"fasttrack-{dag_id}"
    hook.ensure_vfolder(vfolder)
    # `last`'s session, started as another worker would have: it runs until `after` (downstream of the failing
    # task) releases it, so it is alive when `may-fail` fails for good and fail-fast would destroy it
    release = f"/home/work/pipeline/{job}/release"
    last = session_name(dag_id, run_id, "last")
    waits = f"for i in $(seq 1500); do [ -e {release} ] && break; sleep 0.2; done; [ -e {release} ] && echo last ran"
    request = SessionRequest(image="python:3.11", command=waits, mounts=[f"{vfolder}:/home/work/pipeline"])
    sibling_id = hook.create_session(request.body(last))["sessionId"]
    wait_for(lambda: [s for s in lite_sessions_named(lite, last) if s["status"] == "RUNNING"])

    dag_run = load_test_dag(dag_id).test(logical_date=when, run_after=when)

    assert states(dag_run) == {
        "may-fail": "failed",
        "may-fail.continue_on_failure": "success",
        "after": "success",
        "last": "success",
        "missing-secret": "failed",
        "missing-secret.continue_on_failure": "success",
    }
    assert dag_run.state == "success"  # neither failure failed the run, though one of them is a leaf task
    # fail-fast destroyed nothing: the sibling session ran until `after` released it
    (sibling,) = [item for item in lite_sessions_named(lite, last) if item["id"] == sibling_id]
    assert (sibling["status"], sibling["status_info"]) == ("TERMINATED", "task-finished")
    text = "".join(capfd.readouterr())
    assert "continue_on_failure: fail-fast keeps the other tasks' sessions" in text
    assert (
        "Task missing-secret: environment variable TOKEN reads ${{ secrets.FASTTRACK_TEST_NOT_SET }}, but there is "
        "no Airflow Variable 'FASTTRACK_TEST_NOT_SET'" in text
    )
    assert not lite_sessions_named(lite, session_name(dag_id, run_id, "missing-secret"))  # no session started


def test_continue_on_failure_does_not_tolerate_an_upstream_failure(lite) -> None:  # type: ignore[no-untyped-def]
    dag_run = load_test_dag("continue-upstream-failed").test()
    assert states(dag_run) == {
        "breaks": "failed",
        "tolerant": "upstream_failed",
        "tolerant.continue_on_failure": "failed",
        "after": "upstream_failed",
    }
    assert dag_run.state == "failed"
