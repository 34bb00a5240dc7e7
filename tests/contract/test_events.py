"""``GET /events/session`` on each server: one session through the hook, and who sees which sessions.

A stream carries the sessions the caller's user may see (not one access key's): a user sees the sessions of all
of their keypairs, an admin everyone's. ``sessionId`` picks one session; a ``sessionName`` picks that name among
one keypair's sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

import pytest

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.hooks.models import SessionEvent
from tests.contract.conftest import Backend
from tests.contract.support import (
    SESSION_SECONDS,
    async_client,
    ended,
    hook_of,
    submit,
    unique_name,
    wait_state,
)

Events = list[tuple[str, dict[str, Any]]]


async def _collect(
    backend: Backend, who: str, params: Mapping[str, str], into: Events, opened: asyncio.Event
) -> None:
    """Read one stream into ``into`` until cancelled."""
    async with (
        async_client(backend, who) as client,
        client.stream("GET", "/events/session", params=dict(params)) as response,
    ):
        assert response.status_code == 200, await response.aread()
        opened.set()
        name = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:") and name:
                into.append((name, json.loads(line[5:])))


async def _watch(
    backend: Backend,
    streams: Mapping[str, tuple[str, Mapping[str, str]]],
    start: Any,
    until: Any,
) -> dict[str, Events]:
    """Open ``streams`` (label -> keypair, parameters), call ``start()``, read until ``until(events)``."""
    seen: dict[str, Events] = {label: [] for label in streams}
    opened = {label: asyncio.Event() for label in streams}
    readers = [
        asyncio.create_task(_collect(backend, who, params, seen[label], opened[label]))
        for label, (who, params) in streams.items()
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in opened.values())), 30)
        await asyncio.to_thread(start)
        deadline = time.monotonic() + SESSION_SECONDS
        while not until(seen):
            for reader in readers:
                if reader.done():
                    reader.result()  # a stream that failed fails the test
            assert time.monotonic() < deadline, {label: [n for n, _ in ev] for label, ev in seen.items()}
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # late events of other sessions would arrive by now
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return seen


def _ids(events: Events) -> set[str]:
    return {data["sessionId"] for _, data in events}


def _terminated(events: Events, session_id: str) -> bool:
    return any(name == "session_terminated" and data["sessionId"] == session_id for name, data in events)


def test_the_hook_follows_its_own_session(
    backend: Backend, contract_hook: BackendAIHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook's stream yields its session's events only, while another session of the user runs (started with
    the user's other keypair)."""
    name = unique_name("events")
    twin_hook = hook_of(backend, "user-2nd", monkeypatch)
    # held PENDING behind a dependency, so that the stream is open before anything happens to it
    blocker = submit(contract_hook, backend, unique_name("ev-block"), "sleep 3; exit 0")["sessionId"]
    session_id = submit(contract_hook, backend, name, "sleep 1; exit 0", dependencies=[blocker])["sessionId"]
    submit(twin_hook, backend, unique_name("ev-twin"), "sleep 3; exit 0")  # noise on the user's stream

    async def follow() -> list[SessionEvent]:
        events: list[SessionEvent] = []
        try:
            stream = contract_hook.astream_session_events(name, session_id)
            async with contextlib.aclosing(stream):
                async for event in stream:
                    events.append(event)
                    if event.is_terminal:
                        break
        finally:
            await contract_hook.aclose()
        return events

    try:
        events = asyncio.run(asyncio.wait_for(follow(), SESSION_SECONDS))
    finally:
        twin_hook.close()
    names = [event.name for event in events]
    assert names[-1] == "session_terminated", names
    assert "session_started" in names and "session_success" in names
    assert names.index("session_started") < names.index("session_success")
    assert {event.session_id for event in events} == {session_id}
    assert {event.session_name for event in events} == {name}
    assert wait_state(contract_hook, session_id, ended).is_successful


def test_sessions_of_one_user_share_a_stream(
    backend: Backend, contract_hook: BackendAIHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sessionName=*``: the user's keypairs see each other's sessions; another user sees none; the admin all."""
    hooks = {who: hook_of(backend, who, monkeypatch) for who in ("user-2nd", "other")}
    started: dict[str, str] = {}

    def start() -> None:
        started["user"] = submit(contract_hook, backend, unique_name("ev-user"), "sleep 2; exit 0")[
            "sessionId"
        ]
        for who, hook in hooks.items():
            started[who] = submit(hook, backend, unique_name(f"ev-{who}"), "sleep 2; exit 0")["sessionId"]

    def all_ended(seen: Mapping[str, Events]) -> bool:
        return len(started) == 3 and all(_terminated(seen["admin"], sid) for sid in started.values())

    streams = {
        who: (who, {"sessionName": "*", "scope": "session"}) for who in ("user", "user-2nd", "other", "admin")
    }
    try:
        seen = asyncio.run(_watch(backend, streams, start, all_ended))
    finally:
        for hook in hooks.values():
            hook.close()
    mine = {started["user"], started["user-2nd"]}
    assert mine <= _ids(seen["user"]) and started["other"] not in _ids(seen["user"])
    assert mine <= _ids(seen["user-2nd"]) and started["other"] not in _ids(seen["user-2nd"])
    assert started["other"] in _ids(seen["other"]) and not mine & _ids(seen["other"])
    assert set(started.values()) <= _ids(seen["admin"])
    owners = {data["sessionId"]: data["ownerAccessKey"] for _, data in seen["admin"]}
    # the manager records a session under its user's main keypair, whichever of the user's keypairs created it;
    # backendai-lite under the keypair that created it (a difference listed in docs/backendai-lite.md)
    owner_of = {
        "user": "user",
        "other": "other",
        "user-2nd": "user" if backend.name == "manager" else "user-2nd",
    }
    for who, session_id in started.items():
        assert owners[session_id] == backend.keypairs[owner_of[who]].access_key, who
    for _, data in seen["user"]:
        assert {"reason", "sessionName", "sessionId", "ownerAccessKey", "exitCode"} <= data.keys()


def test_session_id_and_name_select_one_session(backend: Backend, contract_hook: BackendAIHook) -> None:
    """``sessionName`` picks that session among the user's (any keypair's); ``sessionId`` is ignored (26.9.6)."""
    name = unique_name("ev-pick")
    other_name = unique_name("ev-noise")
    started: dict[str, str] = {}

    def start() -> None:
        # the id is needed before the stream opens: enqueue behind a dependency that holds it PENDING
        started["noise"] = submit(contract_hook, backend, other_name, "sleep 2; exit 0")["sessionId"]

    blocker = submit(contract_hook, backend, unique_name("ev-block"), "sleep 3; exit 0")["sessionId"]
    picked = submit(contract_hook, backend, name, "exit 0", dependencies=[blocker])["sessionId"]
    streams = {
        "by-id-only": ("user", {"sessionId": picked, "scope": "session"}),
        "by-name": ("user", {"sessionName": name, "scope": "session"}),
        "by-name-2nd": ("user-2nd", {"sessionName": name, "scope": "session"}),
    }

    def picked_ended(seen: Mapping[str, Events]) -> bool:
        return (
            _terminated(seen["by-id-only"], picked)
            and _terminated(seen["by-name"], picked)
            and _terminated(seen["by-name-2nd"], picked)
            and "noise" in started
            and _terminated(seen["by-id-only"], started["noise"])
        )

    seen = asyncio.run(_watch(backend, streams, start, picked_ended))
    assert {picked, started["noise"]} <= _ids(seen["by-id-only"])  # sessionId alone narrows nothing
    assert _ids(seen["by-name"]) == {picked}
    assert _ids(seen["by-name-2nd"]) == {picked}  # the name is looked up among the user's sessions
    assert wait_state(contract_hook, started["noise"], ended).is_successful
