"""Many waiting session triggers in one event loop (as in Airflow's triggerer) against one backendai-lite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.hooks.models import SessionState
from airflow_provider_fasttrack.lite.testing import LiteServer
from airflow_provider_fasttrack.session_request import SessionRequest
from airflow_provider_fasttrack.triggers.session import BackendAISessionTrigger
from tests.helpers import LOG_FILES, SECRETS, connection_env, wait_for

ROOMY = {"cpu": 64, "mem": "64g"}
TASKS = 20


def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Iterator[LiteServer]:
    config = {"request_stats": True}
    with LiteServer(data_dir=tmp_path / "lite", slots=ROOMY, extra_config=config, **options) as server:
        SECRETS.add(server.secret_key)
        LOG_FILES.append(server.log_path)
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(server))
        yield server


@pytest.fixture
def quiet_lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiteServer]:
    yield from serve(tmp_path, monkeypatch)


@pytest.fixture
def dropping_lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiteServer]:
    """Every event stream is closed by the server after its first event."""
    yield from serve(
        tmp_path, monkeypatch, faults={"drop_event_stream_rate": 1.0, "drop_event_stream_after": 1}
    )


def start_sessions(commands: list[str]) -> dict[str, str]:
    """Session name -> id, one batch session per command."""
    hook = BackendAIHook("backendai_default", retry_delay=0.05)
    try:
        started = {}
        for index, command in enumerate(commands):
            name = f"many-{index}"
            body = SessionRequest(image="python:3.11", command=command).body(name, defaults=hook.settings)
            started[name] = str(hook.create_session(body)["sessionId"])
        live = [hook.get_session_state(session_id) for session_id in started.values()]
        assert not any(state.is_terminal for state in live), "a session ended before its trigger started"
        return started
    finally:
        hook.close()


def wait_all(triggers: list[BackendAISessionTrigger], timeout: float) -> list[dict[str, Any]]:
    """Run every trigger to its event in one event loop; each trigger's one event, in order."""

    async def first_event(trigger: BackendAISessionTrigger) -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError(f"{trigger.session_name}: no event")

    async def scenario() -> list[dict[str, Any]]:
        return list(
            await asyncio.wait_for(asyncio.gather(*(first_event(t) for t in triggers)), timeout=timeout)
        )

    return asyncio.run(scenario())


STREAM = "GET /events/session"


def traffic(server: LiteServer) -> dict[str, Any]:
    """lite's request counts (``request_stats: true``)."""
    with server.client() as http:
        answer: dict[str, Any] = http.get("/lite/requests").json()
        return answer


def test_one_event_stream_serves_every_waiting_session_of_a_triggerer(quiet_lite: LiteServer) -> None:
    """20 waiting tasks share one stream; each reads its state a few times, not once per poll_interval."""
    sessions = start_sessions([f"sleep {10 + index % 3}" for index in range(TASKS)])
    before = traffic(quiet_lite)["requests"]
    triggers = [
        BackendAISessionTrigger(session_id, name, "backendai_default", poll_interval=0.5)
        for name, session_id in sessions.items()
    ]
    events = wait_all(triggers, timeout=90)
    assert [(e["status"], e["session_id"]) for e in events] == [("terminal", s) for s in sessions.values()]
    assert all(SessionState.from_json(e["state"]).is_successful for e in events)
    seen = traffic(quiet_lite)
    streams = seen["requests"].get(STREAM, 0) - before.get(STREAM, 0)
    state_reads = seen["requests"].get("POST /admin/gql", 0) - before.get("POST /admin/gql", 0)
    assert (streams, seen["most_in_flight"][STREAM]) == (1, 1)
    # at start, once the stream is open, and on the session's own end events (a 0.5 s poll would be ~160)
    assert state_reads <= TASKS * 6, state_reads
    # the last waiting task closed the stream
    wait_for(lambda: STREAM not in traffic(quiet_lite)["in_flight"], timeout=10)


def test_a_dropped_stream_loses_no_sessions_end(
    dropping_lite: LiteServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server closes the stream after each event while sessions end: every trigger still sees its end,
    from the state read each reopen brings (no fallback read comes within the test's time)."""
    monkeypatch.setenv("AIRFLOW__FASTTRACK__RECHECK_INTERVAL", "600")
    sessions = start_sessions([f"sleep {8 + index % 4}" for index in range(10)])
    triggers = [
        BackendAISessionTrigger(session_id, name, "backendai_default", poll_interval=600)
        for name, session_id in sessions.items()
    ]
    events = wait_all(triggers, timeout=120)
    assert [(e["status"], e["session_id"]) for e in events] == [("terminal", s) for s in sessions.values()]
    with dropping_lite.client() as http:
        assert http.get("/lite/faults").json()["dropped_stream"] >= 2


def test_per_task_mode_opens_a_stream_per_task(
    quiet_lite: LiteServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``[fasttrack] session_events = per_task``: each trigger its own stream and a read each poll_interval."""
    monkeypatch.setenv("AIRFLOW__FASTTRACK__SESSION_EVENTS", "per_task")
    sessions = start_sessions(["sleep 5", "sleep 5", "sleep 5"])
    triggers = [
        BackendAISessionTrigger(session_id, name, "backendai_default", poll_interval=0.5)
        for name, session_id in sessions.items()
    ]
    events = wait_all(triggers, timeout=60)
    assert {e["status"] for e in events} == {"terminal"}
    seen = traffic(quiet_lite)
    assert seen["most_in_flight"][STREAM] == 3
    assert seen["requests"]["POST /admin/gql"] >= 3 * 3  # polled each 0.5 s


def test_an_unknown_session_events_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__FASTTRACK__SESSION_EVENTS", "everyone")
    trigger = BackendAISessionTrigger("00000000-0000-4000-8000-000000000000", "x", "backendai_default")
    with pytest.raises(
        ValueError, match=r"\[fasttrack\] session_events = 'everyone' is not one of shared, per_task"
    ):
        wait_all([trigger], timeout=10)
