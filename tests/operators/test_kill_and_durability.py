"""Kill, timeout and crash recovery: no orphaned session, no duplicate session."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.session_request import SessionRequest
from airflow_provider_fasttrack.triggers.session import BackendAISessionTrigger
from tests.conftest import ROOT, load_test_dag
from tests.helpers import lite_sessions_named, session_processes, wait_for

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")

LOGICAL_DATE = "2026-03-01T00:00:00+00:00"


def start_dag_test(
    dag_id: str, output: Path | None = None, logical_date: str = LOGICAL_DATE
) -> subprocess.Popen[bytes]:
    """``dag.test()`` in its own process (a worker we can kill), for a fixed logical date."""
    code = textwrap.dedent(
        f"""
        import pendulum
        from tests.conftest import load_test_dag
        when = pendulum.parse({logical_date!r})
        load_test_dag({dag_id!r}).test(logical_date=when, run_after=when)
        """
    )
    sink = output.open("wb") if output else None
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ), stdout=sink, stderr=subprocess.STDOUT
    )


def running_session(lite, task_prefix: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    def find():  # type: ignore[no-untyped-def]
        items = [s for s in lite_sessions_named(lite, task_prefix) if s["status"] == "RUNNING"]
        return items[-1] if items else None

    return wait_for(find, timeout=60)  # type: ignore[no-any-return]


def assert_session_gone(hook: BackendAIHook, session_id: str) -> None:
    state = wait_for(lambda: (s := hook.get_session_state(session_id)).is_terminal and s, timeout=30)
    assert not state.is_successful
    wait_for(lambda: not session_processes(session_id), timeout=15)


def test_crashed_worker_retry_reattaches_to_the_one_session(lite, hook, tmp_path) -> None:  # type: ignore[no-untyped-def]
    hook.ensure_vfolder("gates")
    worker = start_dag_test("op_crash")
    try:
        first = running_session(lite, "ft-crash-victim-")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    # the session outlives the worker; the retry (same DAG run, same task) must reattach to it
    log = tmp_path / "retry.log"
    retry = start_dag_test("op_crash", output=log)
    try:
        wait_for(lambda: "already exists; reattached" in log.read_text(errors="replace"), timeout=90)
        hook.upload_file("gates", "crash-gate", b"open")
        assert retry.wait(timeout=90) == 0
    finally:
        if retry.poll() is None:
            retry.kill()
    assert "state=success" in log.read_text(errors="replace")
    sessions = lite_sessions_named(lite, "ft-crash-victim-")
    assert [s["id"] for s in sessions] == [first["id"]]
    assert sessions[0]["result"] == "SUCCESS"


def test_trigger_on_kill_destroys_the_session(lite, hook) -> None:  # type: ignore[no-untyped-def]
    request = SessionRequest(image="python:3.11", command="sleep 120").body("trigger-kill")
    session_id = hook.create_session(request)["sessionId"]
    wait_for(lambda: session_processes(session_id))
    trigger = BackendAISessionTrigger(session_id, "trigger-kill", "backendai_default")
    asyncio.run(trigger.on_kill())
    assert_session_gone(hook, session_id)


def test_operator_on_kill_after_user_marks_failed(lite, hook, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "worker.log"
    worker = start_dag_test("op_kill_sync", output=log)
    try:
        session = running_session(lite, "ft-victim-")
        mark_task_failed("op_kill_sync", "victim")  # what "Mark failed" in the UI does
        worker.send_signal(signal.SIGTERM)  # ... after which Airflow terminates the task process
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert "Task killed: destroyed Backend.AI session" in log.read_text(errors="replace"), log.read_text()[
        -3000:
    ]
    assert_session_gone(hook, session["id"])


def test_worker_sigterm_keeps_a_durable_session(lite, hook, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # (a deferred task holds no worker: a worker shutdown matters for tasks that wait in the worker)
    log = tmp_path / "worker.log"
    worker = start_dag_test("op_kill_sync", output=log, logical_date="2026-03-02T00:00:00+00:00")
    try:
        session = running_session(lite, "ft-victim-")
        worker.send_signal(signal.SIGTERM)  # a worker shutting down: the task is still "running"
        wait_for(lambda: "keeping Backend.AI session" in log.read_text(errors="replace"), timeout=30)
    finally:
        worker.kill()  # the supervisor's escalation after SIGTERM
        worker.wait()
    assert hook.get_session_state(session["id"]).status == "RUNNING"
    hook.destroy_session(session["id"])


def test_execution_timeout_while_deferred_destroys_the_session(lite, hook, capfd) -> None:  # type: ignore[no-untyped-def]
    dag_run = load_test_dag("op_timeout").test()
    ti = dag_run.get_task_instance("too_slow")
    assert ti.state == "failed"
    text = "".join(capfd.readouterr())
    assert "execution_timeout" in text
    session = lite_sessions_named(lite, "ft-too-slow-")[-1]
    assert_session_gone(hook, session["id"])
    # what the session used until it was destroyed is reported too
    usage = ti.xcom_pull(task_ids="too_slow", key="backendai_usage")
    assert usage["session_id"] == session["id"] and usage["running_seconds"] > 0
    assert f"Backend.AI usage of session {session['name']} ({session['id']})" in text


def mark_task_failed(dag_id: str, task_id: str) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id)
            .order_by(TaskInstance.start_date.desc())
            .first()
        )
        assert ti is not None
        ti.state = "failed"
