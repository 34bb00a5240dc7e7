"""The hook's retries against a backendai-lite that fails 30% of requests (5xx and 429, before or after effect)."""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_fasttrack.exceptions import BackendAIConnectionError
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.lite.testing import LiteServer
from airflow_provider_fasttrack.session_request import SessionRequest
from tests.helpers import LOG_FILES, SECRETS, connection_env


@pytest.fixture
def faulty_hook(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    faults = {"error_rate": 0.3, "error_phase": "both", "retry_after_seconds": 0.05, "seed": 7}
    with LiteServer(data_dir=tmp_path / "lite", faults=faults) as lite:
        SECRETS.add(lite.secret_key)
        LOG_FILES.append(lite.log_path)
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_FAULTY", connection_env(lite))
        hook = BackendAIHook("backendai_faulty", retry_limit=12, retry_delay=0.02, max_retry_delay=0.2)
        yield lite, hook
        hook.close()


def test_operations_succeed_without_duplicates(faulty_hook) -> None:  # type: ignore[no-untyped-def]
    lite, hook = faulty_hook
    ids = []
    for index in range(5):
        request = SessionRequest(image="python:3.11", command=f"echo run {index}").body(f"faulty-{index}")
        ids.append(hook.create_session(request)["sessionId"])
    for index, session_id in enumerate(ids):
        deadline = time.monotonic() + 30
        while not (state := hook.get_session_state(session_id)).is_terminal:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert state.is_successful
        assert f"run {index}" in hook.get_logs(session_id)
    hook.ensure_vfolder("faulty-data")
    hook.upload_file("faulty-data", "x.txt", b"payload")
    assert hook.download_file("faulty-data", "x.txt") == b"payload"
    assert asyncio.run(hook.aget_session_state(ids[0])).is_successful
    # every request above went through, and retried creations never made a second session
    assert sorted(lite.session_ids()) == sorted(ids)
    assert hook.retries >= 5  # and faults were really injected along the way


def test_an_upload_has_one_retry_loop(hook, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An unreachable storage proxy: the upload gives up after retry_limit attempts, not retry_limit squared."""
    import socket

    with socket.socket() as probe:  # a loopback port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setattr(hook, "_storage_url", lambda ticket: f"http://127.0.0.1:{closed_port}/upload")
    hook.retry_limit, hook.max_retry_delay = 3, 0.01
    hook.ensure_vfolder("uploads")
    before = hook.retries
    with pytest.raises(BackendAIConnectionError):
        hook.upload_file("uploads", "a.txt", b"content")
    assert hook.retries - before == 2  # three attempts in all


def test_a_lost_create_answer_then_a_failed_lookup_makes_no_second_session(lite, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The create succeeds but its answer is lost; the first look for it fails too; the session has ended.

    The next attempt must look again before it creates (a re-create would start a second session, since
    ``reuseIfExists`` only reuses a live one).
    """
    from airflow_provider_fasttrack.exceptions import BackendAIServerError

    monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_LOST", connection_env(lite))
    hook = BackendAIHook("backendai_lost", retry_limit=4, retry_delay=0.01)
    name = f"lost-answer-{time.monotonic_ns()}"
    body = SessionRequest(image="python:3.11", command="true").body(name)
    real_request, real_find = hook._request_once, hook._find_sessions
    failures = {"create": 1, "find": 1}

    def request_once(client, method, path, **kwargs):  # type: ignore[no-untyped-def]
        answer = real_request(client, method, path, **kwargs)
        if (method, path) == ("POST", "/session") and failures["create"]:
            failures["create"] -= 1
            session_id = answer.json()["sessionId"]
            deadline = time.monotonic() + 30
            while not hook.get_session_state(session_id).is_terminal:  # ended before anyone looks
                assert time.monotonic() < deadline
                time.sleep(0.1)
            raise BackendAIServerError(502, title="answer lost", method=method, path=path)
        return answer

    def find_sessions(found_name: str, *, retry: bool):  # type: ignore[no-untyped-def]
        if not retry and failures["find"]:
            failures["find"] -= 1
            raise BackendAIServerError(503, title="lookup failed", method="POST", path="/admin/gql")
        return real_find(found_name, retry=retry)

    monkeypatch.setattr(hook, "_request_once", request_once)
    monkeypatch.setattr(hook, "_find_sessions", find_sessions)
    created = hook.create_session(body)
    assert [item["id"] for item in hook.find_sessions(name)] == [created["sessionId"]]
    hook.close()
