"""What the contract tests share: hooks and signed clients of a backend's keypairs, batch sessions, waiting.

Batch commands follow one convention that the manager's dummy agent honours too: the exit code is the command's
last ``exit N`` (0 when none) and the duration its last ``sleep N`` (else about a second).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.hooks.backendai import ADMIN_GQL, BackendAIHook
from airflow_provider_fasttrack.hooks.models import SessionState
from airflow_provider_fasttrack.session_request import SessionRequest
from airflow_provider_fasttrack.signing import BackendAIAuth
from tests.contract.conftest import Backend

#: seconds a short batch session may take from create to TERMINATED (the manager's dummy agent: about 15 s)
SESSION_SECONDS = 90.0
API_VERSION = "v9.20250722"


def unique_name(prefix: str) -> str:
    """A session name no earlier test of this server used."""
    return f"ct-{prefix}-{uuid.uuid4().hex[:8]}"


def hook_of(backend: Backend, who: str, monkeypatch: pytest.MonkeyPatch) -> BackendAIHook:
    """A ``BackendAIHook`` of one of ``backend``'s keypairs (close it when done)."""
    conn_id = f"backendai_contract_{who.replace('-', '_')}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", backend.conn_env(who))
    return BackendAIHook(conn_id, retry_delay=0.05)


def hook_with_a_wrong_secret(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> BackendAIHook:
    """A ``BackendAIHook`` of the ``user`` keypair's access key with a wrong secret key (close it when done)."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_BACKENDAI_CONTRACT_BAD",
        backend.conn_env("user").replace(backend.keypairs["user"].secret_key, "x" * 32),
    )
    return BackendAIHook("backendai_contract_bad", retry_delay=0.05)


@contextmanager
def signed_client(backend: Backend, who: str = "user") -> Iterator[httpx.Client]:
    """A plain httpx client signing as one keypair, for answers the hook does not expose."""
    keypair = backend.keypairs[who]
    auth = BackendAIAuth(keypair.access_key, keypair.secret_key, API_VERSION)
    with httpx.Client(base_url=backend.endpoint, auth=auth, timeout=30) as client:
        yield client


def async_client(backend: Backend, who: str) -> httpx.AsyncClient:
    keypair = backend.keypairs[who]
    auth = BackendAIAuth(keypair.access_key, keypair.secret_key, API_VERSION)
    return httpx.AsyncClient(base_url=backend.endpoint, auth=auth, timeout=httpx.Timeout(30, read=None))


def request_of(backend: Backend, command: str, **fields: Any) -> SessionRequest:
    fields.setdefault("resources", {"cpu": 1, "mem": "512m"})
    return SessionRequest(image=backend.image, command=command, **fields)


def submit(hook: BackendAIHook, backend: Backend, name: str, command: str, **fields: Any) -> dict[str, Any]:
    """Enqueue a batch session through the hook, as the operator does; the manager's answer."""
    body = request_of(backend, command, **fields).body(name, defaults=hook.settings)
    return hook.create_session(body)


def wait_state(
    hook: BackendAIHook,
    session_id: str,
    done: Callable[[SessionState], bool],
    timeout: float = SESSION_SECONDS,
) -> SessionState:
    """Poll the session's GraphQL state until ``done``; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        state = hook.get_session_state(session_id)
        if done(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"session {session_id} stuck: {state}")
        time.sleep(0.2)


def ended(state: SessionState) -> bool:
    return state.is_terminal


def running(state: SessionState) -> bool:
    if state.is_terminal:
        raise AssertionError(f"ended before it was seen running: {state}")
    return state.status == "RUNNING"


def gql(hook: BackendAIHook, query: str, **variables: Any) -> dict[str, Any]:
    """A GraphQL answer's ``data`` through the hook's signed transport (errors fail the test)."""
    answer = hook._call(ADMIN_GQL, json={"query": query, "variables": variables})
    assert not answer.get("errors"), answer
    data: dict[str, Any] = answer["data"]
    return data


def compute_session(hook: BackendAIHook, session_id: str, fields: str) -> dict[str, Any]:
    """``compute_session(id:)`` with the given fields; JSON-string fields decoded."""
    data = gql(hook, f"query($id: UUID!) {{ compute_session(id: $id) {{ {fields} }} }}", id=session_id)
    node: dict[str, Any] = data["compute_session"]
    for key in ("status_data", "status_history", "occupied_slots", "requested_slots"):
        if isinstance(node.get(key), str):
            node[key] = json.loads(node[key])
    return node
