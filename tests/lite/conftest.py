"""Fixtures for backendai-lite tests: real servers in subprocesses, signed httpx clients."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.lite.sandbox import namespaces_available
from airflow_provider_fasttrack.lite.testing import LiteServer

IMAGE = "cr.backend.ai/stable/python:3.11-ubuntu22.04"
SHARED_SLOTS = {"cpu": 8, "mem": "16g", "cuda.shares": 10}


@pytest.fixture(scope="session")
def lite_server() -> Iterator[LiteServer]:
    """One server for the tests that do not restart it or need special knobs."""
    config = {"images": [{"pattern": "cr.backend.ai/*"}, {"pattern": "lite/*"}], "kill_grace_seconds": 1}
    with LiteServer(slots=SHARED_SLOTS, extra_config=config) as server:
        yield server
        assert server.secret_key not in server.log_tail(10**9)


@pytest.fixture
def http(lite_server: LiteServer) -> Iterator[httpx.Client]:
    """A signed client for the shared server."""
    with lite_server.client() as client:
        yield client


@pytest.fixture(scope="session")
def has_namespaces() -> bool:
    """Whether this machine allows private mount namespaces."""
    return namespaces_available()[0]


def create_session(http: httpx.Client, command: str, **fields: Any) -> dict[str, Any]:
    """Enqueue a batch session and return the creation answer."""
    body: dict[str, Any] = {
        "name": fields.pop("name", f"t-{time.monotonic_ns()}"),
        "image": fields.pop("image", IMAGE),
        "type": "batch",
        "enqueueOnly": True,
        "startupCommand": command,
        "config": fields.pop("config", {"resources": {"cpu": 1, "mem": "256m"}}),
    }
    body.update(fields)
    response = http.post("/session", json=body)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def lite_session(http: httpx.Client, session_id: str) -> dict[str, Any]:
    """The /lite/sessions record of one session."""
    for item in http.get("/lite/sessions").json()["sessions"]:
        if item["id"] == session_id:
            return dict(item)
    raise AssertionError(f"session {session_id} not listed")


def wait_for(
    http: httpx.Client, session_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    """Poll until ``done(record)``; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    record = lite_session(http, session_id)
    while not done(record):
        if time.monotonic() > deadline:
            raise AssertionError(f"session {session_id} stuck: {record}")
        time.sleep(0.1)
        record = lite_session(http, session_id)
    return record


def terminated(record: dict[str, Any]) -> bool:
    """Whether a session has ended (terminated or cancelled)."""
    return record["status"] in ("TERMINATED", "CANCELLED")


def compute_session(http: httpx.Client, session_id: str) -> dict[str, Any]:
    """``compute_session`` through /admin/gql, JSON-string fields decoded."""
    import json

    query = (
        "query($id: UUID!) { compute_session(id: $id) { status result status_info status_data "
        "containers { id cluster_role status status_data } } }"
    )
    response = http.post("/admin/gql", json={"query": query, "variables": {"id": session_id}})
    assert response.status_code == 200, response.text
    item: dict[str, Any] = response.json()["data"]["compute_session"]
    item["status_data"] = json.loads(item["status_data"])
    return item


def session_logs(http: httpx.Client, session_id: str, kernel_id: str | None = None) -> str:
    """A session's container logs (the main kernel's, or ``kernel_id``'s)."""
    params = {"kernel_id": kernel_id} if kernel_id else None
    response = http.get(f"/session/{session_id}/logs", params=params)
    assert response.status_code == 200, response.text
    logs: str = response.json()["result"]["logs"]
    return logs


class Gate:
    """A file the test creates to let waiting sessions finish: ordering without timing assumptions."""

    def __init__(self, server: LiteServer, http: httpx.Client, access_key: str | None = None) -> None:
        """A gate in the ``gates`` vfolder of ``access_key`` (the server's first keypair by default), ``http``'s."""
        http.post("/folders", json={"name": "gates"})  # 400 when it exists already
        self.path = server.vfolder_path("gates", access_key) / f"gate-{time.monotonic_ns()}"

    @property
    def wait(self) -> str:
        """Shell that blocks until the gate opens (the vfolder is mounted at /home/work/gates)."""
        return f"until [ -e gates/{self.path.name} ]; do sleep 0.05; done"

    def config(self, **extra: Any) -> dict[str, Any]:
        """A session config that mounts the gates vfolder."""
        config: dict[str, Any] = {"resources": {"cpu": 1, "mem": "256m"}, "mounts": ["gates"]}
        for key, value in extra.items():
            if key == "resources":
                config["resources"].update(value)
            else:
                config[key] = value
        return config

    def open(self) -> None:
        """Let the waiting sessions go on."""
        self.path.touch()
