"""``/events/session``: server-sent events in lifecycle order with the manager's names and data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from airflow_provider_fasttrack.lite.auth import LATEST_API_VERSION
from airflow_provider_fasttrack.lite.testing import LiteServer
from airflow_provider_fasttrack.signing import BackendAIAuth
from tests.lite.conftest import create_session

SUCCESS_ORDER = [
    "session_enqueued",
    "session_scheduled",
    "session_preparing",
    "session_started",
    "session_success",
    "session_terminating",
    "session_terminated",
]


def read_events(
    http: httpx.Client, name: str, command: str, **params: str
) -> list[tuple[str, dict[str, Any]]]:
    """Enqueue the session behind a dependency that holds it PENDING, open the stream for ``name`` (a name is
    looked up when the stream opens, as by the manager), collect events until it is terminated."""
    events: list[tuple[str, dict[str, Any]]] = []
    blocker = create_session(http, "sleep 1")["sessionId"]
    create_session(http, command, name=name, dependencies=[blocker])
    with http.stream("GET", "/events/session", params={"sessionName": name, **params}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        current = ""
        for line in stream.iter_lines():
            if line.startswith("event:"):
                current = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((current, json.loads(line.split(":", 1)[1])))
                if current == "session_terminated":
                    break
    return events


def test_success_events_in_order(http: httpx.Client) -> None:
    create_session(http, "true", name="someone-else")  # other sessions' events are filtered out
    events = read_events(http, "evt-success", "echo hi", scope="session")
    assert [name for name, _ in events] == SUCCESS_ORDER[1:]  # enqueued before the stream could name it
    ids = {data["sessionId"] for _, data in events}
    assert len(ids) == 1
    for _, data in events:
        assert data["sessionName"] == "evt-success"
        assert data["ownerAccessKey"] == http.auth.access_key  # type: ignore[union-attr]
        assert data["exitCode"] is None
    assert events[3][1]["reason"] == "task-finished"


def test_a_name_with_no_live_session_is_not_found(http: httpx.Client) -> None:
    answer = http.get("/events/session", params={"sessionName": "evt-nobody"})
    assert answer.status_code == 404, answer.text


def test_failure_and_kernel_scope(http: httpx.Client) -> None:
    events = read_events(http, "evt-failure", "exit 5", scope="*")
    names = [name for name, _ in events]
    assert "session_failure" in names and "session_success" not in names
    assert "kernel_started" in names and "kernel_terminated" in names
    assert names.index("session_started") < names.index("session_failure") < names.index("session_terminated")
    failure = dict(events)["session_failure"]
    assert failure["reason"] == "task-failed" and failure["exitCode"] is None


def _until_terminated(stream: httpx.Response, session_id: str) -> list[str]:
    """The session ids of the events read until ``session_id``'s ``session_terminated``."""
    seen: list[str] = []
    current = ""
    for line in stream.iter_lines():
        if line.startswith("event:"):
            current = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data = json.loads(line.split(":", 1)[1])
            seen.append(data["sessionId"])
            if current == "session_terminated" and data["sessionId"] == session_id:
                return seen
    raise AssertionError(f"the stream closed before {session_id} ended")


def test_keypairs_without_a_user_uuid_are_users_of_their_own(tmp_path: Path) -> None:
    """A stream carries every session of the caller's user; keypairs configured without ``user_uuid`` are each
    a user of their own, so they never see each other's sessions."""
    first = {"access_key": "AKIAEVENTSUSER000001", "secret_key": "events-first-secret-0123456789abcd"}
    second = {"access_key": "AKIAEVENTSUSER000002", "secret_key": "events-second-secret-0123456789abc"}
    with LiteServer(keypairs=[first, second], sandbox="none", data_dir=tmp_path / "lite") as lite:
        auth = BackendAIAuth(second["access_key"], second["secret_key"], LATEST_API_VERSION)
        with (
            lite.client() as mine,
            httpx.Client(base_url=lite.url, auth=auth, timeout=30) as theirs,
            mine.stream("GET", "/events/session", params={"scope": "session"}) as my_stream,
            theirs.stream("GET", "/events/session", params={"scope": "session"}) as their_stream,
        ):
            my_session = create_session(mine, "true")["sessionId"]
            assert set(_until_terminated(my_stream, my_session)) == {my_session}
            their_session = create_session(theirs, "true")["sessionId"]
            assert set(_until_terminated(their_stream, their_session)) == {their_session}


def test_a_stream_is_handed_only_the_events_it_sends() -> None:
    """Each event is matched once, when published: a stream for one session is not woken by every other
    session's events (with hundreds of streams, that was hundreds of wake-ups per event)."""
    from airflow_provider_fasttrack.lite.events import EventHub

    hub = EventHub()
    rows = [
        {"id": f"id-{name}", "name": name, "access_key": "AKTEST", "group_name": "default"} for name in "ab"
    ]
    one = hub.subscribe(lambda event: event.data["sessionId"] == "id-a")
    every = hub.subscribe()
    for row in rows:
        hub.session_event("session_started", row, "")
    assert one.qsize() == 1
    assert one.get_nowait().data["sessionId"] == "id-a"
    assert every.qsize() == 2
    hub.close()
    assert one.get_nowait() is None  # the end of the stream reaches every subscriber
