"""Helpers shared by the tests: a backendai connection for a running backendai-lite."""

from __future__ import annotations

import json
from typing import Any

#: A scaling group of the test session's backendai-lite with GPU room for many sessions at once, for tests
#: in which only Airflow (a pool) may hold sessions back.
WIDE_GPU_GROUP = "wide-gpu"
WIDE_GPU_SLOTS: dict[str, Any] = {"cpu": 16, "mem": "32g", "cuda.shares": 100}


def connection_env(lite: Any, **overrides: Any) -> str:
    """The JSON form of ``AIRFLOW_CONN_<ID>`` for a running ``LiteServer``."""
    extra = {"project": "default", "webui_url": f"{lite.url}/webui", **overrides.pop("extra", {})}
    conn = {
        "conn_type": "backendai",
        "host": lite.url,
        "login": overrides.pop("access_key", lite.access_key),
        "password": overrides.pop("secret_key", lite.secret_key),
        "extra": extra,
    }
    conn.update(overrides)
    return json.dumps(conn)


def session_processes(session_id: str) -> list[int]:
    """PIDs on this host whose environment says they belong to the Backend.AI session ``session_id``."""
    import os

    marker = f"BACKENDAI_SESSION_ID={session_id}".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if marker in environ.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {predicate}")


def lite_sessions(lite: Any, **match: Any) -> list[dict[str, Any]]:
    """backendai-lite's own record of every session (``GET /lite/sessions``), filtered by equal fields."""
    with lite.client() as http:
        items = http.get("/lite/sessions").json()["sessions"]
    return [item for item in items if all(item.get(k) == v for k, v in match.items())]


def lite_sessions_named(lite: Any, prefix: str) -> list[dict[str, Any]]:
    return [item for item in lite_sessions(lite) if str(item["name"]).startswith(prefix)]


#: Everything the tests printed or logged (captured sections of every test report), for the secret scan.
LOGGED: list[str] = []
#: Secret keys of the keypairs the tests used.
SECRETS: set[str] = set()
#: Log files written by servers the tests started.
LOG_FILES: list[Any] = []
