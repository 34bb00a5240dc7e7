"""SSH between the kernels of a multi-node session: a command sent from main runs in the named kernel."""

from __future__ import annotations

import re

import httpx
import pytest

from airflow_provider_fasttrack.lite.cluster_ssh import parse_client_args
from airflow_provider_fasttrack.lite.runner import processes_of_session
from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.helpers import wait_for as poll
from tests.lite.conftest import Gate, compute_session, create_session, session_logs, terminated, wait_for

CLUSTER = {"clusterMode": "multi-node", "clusterSize": 2}


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as file:
        raw = file.read().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def _processes(session_id: str, needle: bytes) -> dict[int, dict[str, str]]:
    """The session's processes whose command line (NUL-separated) contains ``needle``, with their environment."""
    found = {}
    for pid in processes_of_session(session_id):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if needle in cmdline.read():
                    found[pid] = _environ(pid)
        except OSError:
            continue
    return found


def test_ssh_runs_the_command_in_the_named_kernel(http: httpx.Client, has_namespaces: bool) -> None:
    command = "\n".join(
        [
            """ssh sub1 'echo "on $BACKENDAI_CLUSTER_HOST idx=$BACKENDAI_CLUSTER_IDX in $(pwd)"; echo to-stderr >&2; exit 3'""",
            'echo "exit=$?"',
            "echo piped-through | ssh sub1 'tr a-z A-Z'",
            "ssh -o StrictHostKeyChecking=no -p 2200 work@sub1 touch only-on-sub1",
            '[ -e only-on-sub1 ] && echo "main sees it" || echo "main does not see it"',
            'ssh sub1 "[ -e only-on-sub1 ] && echo sub1 sees it"',
            "ssh nosuchhost true",
            'echo "unknown=$?"',
        ]
    )
    sid = create_session(http, command, **CLUSTER)["sessionId"]
    wait_for(http, sid, terminated, timeout=60)
    logs = session_logs(http, sid)
    assert compute_session(http, sid)["result"] == "SUCCESS", logs
    started_in = re.search(r"on sub1 idx=1 in (\S+)", logs)  # sub1's environment, started in its home
    assert started_in is not None, logs
    if has_namespaces:
        assert started_in.group(1) == "/home/work"
    assert "to-stderr" in logs and "exit=3" in logs  # its stderr and exit status come back
    assert "PIPED-THROUGH" in logs  # standard input goes to the remote command
    assert "main does not see it" in logs and "sub1 sees it" in logs  # each kernel has its own /home/work
    assert "Could not resolve hostname nosuchhost" in logs and "unknown=255" in logs
    assert processes_of_session(sid) == []


def test_remote_commands_end_with_the_session(http: httpx.Client) -> None:
    sid = create_session(http, "ssh sub1 'exec sleep 1003' & wait", **CLUSTER)["sessionId"]
    wait_for(http, sid, lambda r: r["status"] == "RUNNING")
    remote = poll(lambda: _processes(sid, b"sleep\x001003"))
    assert [env["BACKENDAI_CLUSTER_HOST"] for env in remote.values()] == ["sub1"]  # it runs in sub1
    assert http.delete(f"/session/{sid}", params={"forced": "true"}).status_code == 200
    wait_for(http, sid, terminated)
    poll(lambda: processes_of_session(sid) == [])


def test_a_killed_client_ends_its_remote_command(http: httpx.Client, lite_server: LiteServer) -> None:
    kill, finish = Gate(lite_server, http), Gate(lite_server, http)
    command = f"ssh sub1 'exec sleep 1004' & client=$!\n{kill.wait}\nkill $client\n{finish.wait}"
    sid = create_session(http, command, config=kill.config(), **CLUSTER)["sessionId"]
    wait_for(http, sid, lambda r: r["status"] == "RUNNING")
    remote = poll(lambda: _processes(sid, b"sleep\x001004"))
    assert [env["BACKENDAI_CLUSTER_HOST"] for env in remote.values()] == ["sub1"]
    kill.open()
    poll(lambda: _processes(sid, b"sleep\x001004") == {})
    assert _processes(sid, b"backendai_lite_ssh.py\x00client") == {}
    assert wait_for(http, sid, lambda r: True)["status"] == "RUNNING"  # the session itself runs on
    finish.open()
    wait_for(http, sid, terminated)
    assert compute_session(http, sid)["result"] == "SUCCESS"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sub1", "echo", "hi"], ("sub1", "echo hi", True)),
        (["-n", "-o", "BatchMode=yes", "-p2200", "work@sub2", "true"], ("sub2", "true", False)),
        (["-T", "-i", "/home/config/ssh/id_cluster", "--", "main1", "a", "-n"], ("main1", "a -n", True)),
    ],
)
def test_ssh_command_lines(argv: list[str], expected: tuple[str, str, bool]) -> None:
    assert parse_client_args(argv) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-Z", "sub1", "x"], "unknown option -- Z"),
        (["sub1"], "commands only"),
        (["-p"], "requires an argument"),
    ],
)
def test_bad_ssh_command_lines(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_client_args(argv)
