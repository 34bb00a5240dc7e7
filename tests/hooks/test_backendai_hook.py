"""BackendAIHook against a running backendai-lite, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import pytest

from airflow_provider_fasttrack.exceptions import (
    BackendAIAuthError,
    BackendAIBadRequestError,
    BackendAIError,
    BackendAINotFoundError,
)
from airflow_provider_fasttrack.hooks.backendai import REQUEST_DOWNLOAD, BackendAIHook, ConnectionSettings
from airflow_provider_fasttrack.mounts import Mount
from airflow_provider_fasttrack.session_request import SessionRequest
from tests.helpers import session_processes, wait_for

pytestmark = pytest.mark.usefixtures("backendai_conn")


def run_batch(
    hook: BackendAIHook, name: str, command: str, extra_mounts: Sequence[Mount] = (), **kwargs: object
) -> str:
    request = SessionRequest(image="python:3.11", command=command, **kwargs)  # type: ignore[arg-type]
    body = request.body(name, defaults=hook.settings, extra_mounts=extra_mounts)
    return str(hook.create_session(body)["sessionId"])


def wait_terminal(hook: BackendAIHook, session_id: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = hook.get_session_state(session_id)
        if state.is_terminal:
            return state
        time.sleep(0.2)
    raise AssertionError(f"session {session_id} did not end within {timeout}s")


def test_failure_exit_code_and_logs(hook: BackendAIHook) -> None:
    session_id = run_batch(hook, "hook-exit-three", "echo to-stdout; echo to-stderr >&2; exit 3")
    state = wait_terminal(hook, session_id)
    assert (state.status, state.result, state.exit_code) == ("TERMINATED", "FAILURE", 3)
    logs = hook.get_logs(session_id)
    assert "to-stdout" in logs and "to-stderr" in logs


def test_success_and_404_after_termination(hook: BackendAIHook) -> None:
    session_id = run_batch(hook, "hook-exit-zero", "echo fine")
    state = wait_terminal(hook, session_id)
    assert state.is_successful and state.exit_code == 0
    with pytest.raises(BackendAINotFoundError):
        hook.get_session(session_id)
    assert hook.get_session_state(session_id).result == "SUCCESS"
    assert "fine" in hook.get_logs(session_id)


def test_batch_timeout_gives_task_timeout(hook: BackendAIHook) -> None:
    session_id = run_batch(hook, "hook-timeout", "sleep 30", batch_timeout=1)
    state = wait_terminal(hook, session_id)
    assert state.result == "FAILURE"
    assert state.reason == "task-timeout"
    assert state.exit_code == -2


def test_same_name_returns_the_live_session(hook: BackendAIHook) -> None:
    request = SessionRequest(image="python:3.11", command="sleep 20").body(
        "hook-same-name", defaults=hook.settings
    )
    first = hook.create_session(request)
    second = hook.create_session(request)
    try:
        assert second["sessionId"] == first["sessionId"]
        assert second.get("created") is False
    finally:
        assert hook.destroy_session(first["sessionId"])
    assert hook.destroy_session(first["sessionId"]) is False  # already gone: idempotent


def test_destroy_leaves_no_process_on_the_host(hook: BackendAIHook) -> None:
    session_id = run_batch(hook, "hook-destroy-me", "sleep 60 & sleep 60; wait")
    wait_for(lambda: len(session_processes(session_id)) >= 2)
    assert hook.destroy_session("hook-destroy-me")  # by name, while it is live
    state = wait_terminal(hook, session_id)
    assert state.status in {"TERMINATED", "CANCELLED"}
    assert not state.is_successful
    wait_for(lambda: not session_processes(session_id), timeout=10)


def test_dependency_holds_session_pending(hook: BackendAIHook) -> None:
    first = run_batch(hook, "hook-dep-first", "sleep 1.5")
    second = run_batch(hook, "hook-dep-second", "echo after", dependencies=[first])
    time.sleep(0.5)
    assert hook.get_session_state(second).status == "PENDING"
    assert wait_terminal(hook, first).is_successful
    assert wait_terminal(hook, second).is_successful


def test_events_stream_reports_this_session_only(hook: BackendAIHook) -> None:
    async def collect(name: str, session_id: str) -> list[str]:
        names = []
        async for event in hook.astream_session_events(name, session_id, read_timeout=20):
            names.append(event.name)
            if event.is_terminal:
                break
        return names

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        session_id = await loop.run_in_executor(None, run_batch, hook, "hook-events", "sleep 1")
        return await collect("hook-events", session_id)

    names = asyncio.run(scenario())
    assert names[-1] == "session_terminated"
    assert "session_success" in names


def test_vfolder_upload_download_and_mounts(hook: BackendAIHook) -> None:
    hook.ensure_vfolder("hook-data")
    hook.ensure_vfolder("hook-data")  # idempotent
    hook.upload_file("hook-data", "in/question.txt", b"What is FOB?")
    session_id = run_batch(
        hook,
        "hook-mounts",
        "cat /home/work/data/in/question.txt > /pipeline/outputs/answer.txt",
        extra_mounts=[
            Mount("hook-data", destination="data", read_only=True),
            Mount("hook-data", subpath="out", destination="/pipeline/outputs"),
        ],
    )
    assert wait_terminal(hook, session_id).is_successful, hook.get_logs(session_id)
    assert hook.download_file("hook-data", "out/answer.txt") == b"What is FOB?"
    names = {item["name"] for item in hook.list_files("hook-data", "out")}
    assert "answer.txt" in names
    with pytest.raises(BackendAINotFoundError):
        hook.download_file("hook-data", "out/missing.txt")


def test_unknown_slot_is_a_bad_request_not_retried(hook: BackendAIHook) -> None:
    with pytest.raises(BackendAIBadRequestError) as info:
        run_batch(hook, "hook-bad-slot", "true", resources={"cpu": 1, "warp.drive": 1})
    assert info.value.kind == "unknown-resource-slot-type"


def test_wrong_secret_is_an_auth_error(lite, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import connection_env

    monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_WRONG", connection_env(lite, secret_key="not-the-secret"))
    hook = BackendAIHook("backendai_wrong", retry_limit=1)
    with pytest.raises(BackendAIAuthError) as info:
        hook.check_presets()
    assert "not-the-secret" not in str(info.value)
    ok, message = hook.test_connection()
    assert not ok and "auth" in message.lower()


def test_test_connection_and_version(hook: BackendAIHook) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert hook.api_version == "v9.20250722"


def test_settings_repr_hides_secret(hook: BackendAIHook) -> None:
    settings = hook.settings
    assert settings.secret_key not in repr(settings)
    assert settings.secret_key not in repr(hook.client.auth)


def test_endpoint_without_scheme() -> None:
    class Conn:
        conn_id = "x"
        host = "127.0.0.1"
        port = 8091
        login = "AK"
        password = "SK"
        extra_dejson: dict[str, str] = {}

    assert ConnectionSettings.from_connection(Conn()).endpoint == "http://127.0.0.1:8091"
    Conn.host = "api.example.com"
    Conn.port = None  # type: ignore[assignment]
    assert ConnectionSettings.from_connection(Conn()).endpoint == "https://api.example.com"


def test_find_sessions_by_name_includes_terminated(hook: BackendAIHook) -> None:
    session_id = run_batch(hook, "hook-find-me", "true")
    wait_terminal(hook, session_id)
    found = hook.find_sessions("hook-find-me")
    assert [item["id"] for item in found] == [session_id]
    assert found[0]["status"] == "TERMINATED"
    assert hook.find_sessions("hook-no-such-session") == []


def test_transfer_tokens_are_masked_in_logs(hook: BackendAIHook) -> None:
    """httpx logs each request URL; the storage token in it is registered with Airflow's secrets masker."""
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    hook.ensure_vfolder("masked")
    hook.upload_file("masked", "a.txt", b"x")
    ticket = hook._call(
        REQUEST_DOWNLOAD, path_args={"name": "masked"}, json={"path": "a.txt", "archive": False}
    )
    url = hook._storage_url(ticket)
    assert ticket["token"] in url
    assert ticket["token"] not in str(redact(f"HTTP Request: GET {url}"))


def test_hooks_load_the_ca_bundle_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """A triggerer runs one hook per waiting task: building a TLS context (reading the CA bundle, ~30 ms of CPU)
    for each hook's clients blocked its event loop for seconds with hundreds of tasks."""
    import ssl

    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    BackendAIHook().client  # noqa: B018 - the process's first client may load it once
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)

    async def scenario() -> None:
        hooks = [BackendAIHook() for _ in range(5)]
        for hook in hooks:
            with contextlib.suppress(BackendAIError):  # an unknown session: an error answer, after a request
                await hook.aget_session_state("00000000-0000-0000-0000-000000000000")
        for hook in hooks:
            await hook.aclose()

    asyncio.run(scenario())
    for _ in range(3):
        assert BackendAIHook().client is not None
    assert loads == []


def test_callers_at_once_share_one_async_client() -> None:
    """A trigger's listener and its main loop ask for the hook's client at the same moment: one client is made and
    kept (a second one was never closed)."""

    async def scenario() -> int:
        hook = BackendAIHook()
        try:
            clients = await asyncio.gather(*(hook._async_client() for _ in range(3)))
            return len({id(client) for client in clients})
        finally:
            await hook.aclose()

    assert asyncio.run(scenario()) == 1
