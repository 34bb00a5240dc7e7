"""A session's whole process tree dies with the server, also when the server is killed with SIGKILL."""

from __future__ import annotations

import os
import signal

import pytest

from airflow_provider_fasttrack.lite.runner import processes_of_session
from airflow_provider_fasttrack.lite.sandbox import pid_namespaces_available
from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.helpers import wait_for as poll
from tests.lite.conftest import compute_session, create_session, terminated, wait_for


def test_sigkill_of_the_server_takes_the_session_tree(has_namespaces: bool) -> None:
    if not (has_namespaces and pid_namespaces_available()):
        pytest.skip("needs private mount and PID namespaces")
    with LiteServer(sandbox="namespace") as server:
        with server.client() as http:
            # a grandchild in its own session (out of the kernel's process group) and a plain one
            sid = create_session(http, "setsid sleep 1001 & sleep 1002 & wait")["sessionId"]
            wait_for(http, sid, lambda r: r["status"] == "RUNNING")
        sleepers = poll(lambda: _sleepers(sid) if len(_sleepers(sid)) == 2 else None)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        poll(lambda: processes_of_session(sid) == [], timeout=60)
        assert all(not _alive(pid) for pid in sleepers)
        server.stop()  # reaps the killed server (the sweep finds nothing left)
        server.start()  # the restart clean-up still records the interrupted session
        with server.client() as http:
            info = compute_session(http, sid)
            assert (info["status"], info["status_info"]) == ("TERMINATED", "server-stopped")
            assert terminated({"status": info["status"]})


def _sleepers(session_id: str) -> list[int]:
    """The session's ``sleep`` processes."""
    found = []
    for pid in processes_of_session(session_id):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if cmdline.read().startswith(b"sleep\0"):
                    found.append(pid)
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
