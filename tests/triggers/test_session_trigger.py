"""BackendAISessionTrigger run to completion against a real backendai-lite."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from airflow.sdk._shared.module_loading import import_string

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.hooks.models import SessionState
from airflow_provider_fasttrack.session_request import SessionRequest
from airflow_provider_fasttrack.triggers.session import BackendAISessionTrigger

pytestmark = pytest.mark.usefixtures("backendai_conn")


def start(hook: BackendAIHook, name: str, command: str) -> str:
    body = SessionRequest(image="python:3.11", command=command).body(name, defaults=hook.settings)
    return str(hook.create_session(body)["sessionId"])


def run_to_completion(trigger: BackendAISessionTrigger) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


@pytest.mark.parametrize(
    ("command", "result", "exit_code"), [("echo done", "SUCCESS", 0), ("echo broken; exit 5", "FAILURE", 5)]
)
def test_one_terminal_event_with_the_real_state(hook, command: str, result: str, exit_code: int) -> None:  # type: ignore[no-untyped-def]
    name = f"trigger-{result.lower()}"
    session_id = start(hook, name, command)
    events = run_to_completion(
        BackendAISessionTrigger(session_id, name, "backendai_default", poll_interval=0.5)
    )
    (event,) = events
    assert (event["status"], event["session_id"], event["session_name"]) == ("terminal", session_id, name)
    state = SessionState.from_json(event["state"])
    assert (state.status, state.result, state.exit_code) == ("TERMINATED", result, exit_code)
    assert state == hook.get_session_state(session_id)


def test_a_passed_deadline_gives_the_timeout_event(hook) -> None:  # type: ignore[no-untyped-def]
    session_id = start(hook, "trigger-deadline", "sleep 120")
    try:
        trigger = BackendAISessionTrigger(
            session_id, "trigger-deadline", "backendai_default", poll_interval=0.5, deadline=time.time() - 1
        )
        assert run_to_completion(trigger) == [
            {
                "session_id": session_id,
                "session_name": "trigger-deadline",
                "status": "timeout",
                "log_offset": 0,
            }
        ]
        assert not hook.get_session_state(
            session_id
        ).is_terminal  # the trigger reports; the operator destroys
    finally:
        hook.destroy_session(session_id)


def test_an_unknown_session_gives_the_error_event() -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    (event,) = run_to_completion(BackendAISessionTrigger(missing, "trigger-missing", "backendai_default"))
    assert event["status"] == "error"
    assert f"session {missing} not found" in event["message"]


def test_serialize_round_trip() -> None:
    trigger = BackendAISessionTrigger(
        "sid",
        "ft-name",
        "backendai_lab",
        poll_interval=2.0,
        deadline=1.5e9,
        log_interval=30.0,
        log_offset=7,
        masks=["a-secret-value"],
        deferred_at=1.6e9,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_fasttrack.triggers.session.BackendAISessionTrigger"
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "session_id": "sid",
        "session_name": "ft-name",
        "backendai_conn_id": "backendai_lab",
        "poll_interval": 2.0,
        "deadline": 1.5e9,
        "log_interval": 30.0,
        "log_offset": 7,
        "masks": ["a-secret-value"],
        "deferred_at": 1.6e9,
    }


def test_log_lines_are_written_while_waiting_each_once(hook, capfd: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """Several whole-log fetches while the session runs: every line once; the event's cursor counts them."""
    name = "trigger-live-log"
    session_id = start(
        hook, name, "echo first; echo second; sleep 1.5; printf 'third\\n'; sleep 1.5; printf 'unfinished'"
    )
    trigger = BackendAISessionTrigger(
        session_id, name, "backendai_default", poll_interval=0.2, log_interval=0.2
    )
    (event,) = run_to_completion(trigger)
    written = re.findall(rf"\[{name}\] (\w+)", "".join(capfd.readouterr()))
    assert written == ["first", "second", "third"]
    assert event["log_offset"] == 3  # the unfinished last line is left to the operator's final fetch


def test_the_event_waits_for_the_configured_resume_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    """``[fasttrack] resume_grace``: no event sooner than that many seconds after the trigger started, even for
    a session the manager answers about at once (here: one that does not exist)."""
    monkeypatch.setenv("AIRFLOW__FASTTRACK__RESUME_GRACE", "2")
    missing = "00000000-0000-4000-8000-000000000000"
    started = time.monotonic()
    (event,) = run_to_completion(BackendAISessionTrigger(missing, "trigger-grace", "backendai_default"))
    assert event["status"] == "error"
    assert time.monotonic() - started >= 2


def test_the_grace_holds_only_events_soon_after_the_deferral(monkeypatch: pytest.MonkeyPatch) -> None:
    """The task deferred 30 s ago (``deferred_at``): a 20 s grace has passed, the event comes at once."""
    monkeypatch.setenv("AIRFLOW__FASTTRACK__RESUME_GRACE", "20")
    missing = "00000000-0000-4000-8000-000000000000"
    trigger = BackendAISessionTrigger(
        missing, "trigger-late", "backendai_default", deferred_at=time.time() - 30
    )
    started = time.monotonic()
    (event,) = run_to_completion(trigger)
    assert event["status"] == "error"
    assert time.monotonic() - started < 10


def test_the_grace_counts_from_the_deferral(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deferred 1 s ago with a 3 s grace: the event waits the 2 s left."""
    monkeypatch.setenv("AIRFLOW__FASTTRACK__RESUME_GRACE", "3")
    missing = "00000000-0000-4000-8000-000000000000"
    deferred_at = time.time() - 1
    trigger = BackendAISessionTrigger(missing, "trigger-soon", "backendai_default", deferred_at=deferred_at)
    (event,) = run_to_completion(trigger)
    assert event["status"] == "error"
    assert time.time() - deferred_at >= 3


def test_a_resume_grace_that_is_not_seconds_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__FASTTRACK__RESUME_GRACE", "-1")
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(ValueError, match=r"\[fasttrack\] resume_grace = '-1' is not a number of seconds"):
        run_to_completion(BackendAISessionTrigger(missing, "trigger-grace", "backendai_default"))
