"""Fault injection and restart recovery, each on its own server."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from airflow_provider_fasttrack.lite.runner import processes_of_session
from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.lite.conftest import (
    IMAGE,
    compute_session,
    create_session,
    lite_session,
    session_logs,
    terminated,
    wait_for,
)


def test_fault_injection_fraction_and_phases() -> None:
    faults = {
        "error_rate": 0.5,
        "error_statuses": [500, 503, 429],
        "error_phase": "both",
        "retry_after_seconds": 2,
        "latency_rate": 0.2,
        "latency_seconds": 0.01,
    }
    with LiteServer(faults=faults, sandbox="none") as server, server.client() as http:
        statuses: Counter[int] = Counter()
        for _ in range(300):
            answer = http.get("/folders")
            statuses[answer.status_code] += 1
            if answer.status_code == 429:
                assert answer.headers["Retry-After"] == "2"
                assert answer.json()["type"].endswith("/rate-limit-exceeded")
            elif answer.status_code != 200:
                assert answer.headers["content-type"] == "application/problem+json"
        assert set(statuses) <= {200, 500, 503, 429}
        errors = 300 - statuses[200]
        assert 0.38 <= errors / 300 <= 0.62, statuses
        assert statuses[429] and statuses[500] and statuses[503]
        took_effect, refused = 0, 0
        for index in range(40):
            answer = http.post("/folders", json={"name": f"vf-{index}"})
            if answer.status_code >= 400:
                exists = server.vfolder_path(f"vf-{index}").is_dir()
                took_effect += exists
                refused += not exists
        assert took_effect and refused  # "after" faults applied the change, "before" ones did not
        for _ in range(20):  # a client retrying a create with the same name never duplicates it
            answer = http.post(
                "/session",
                json={
                    "name": "idem",
                    "image": IMAGE,
                    "type": "batch",
                    "startupCommand": "sleep 30",
                    "enqueueOnly": True,
                },
            )
            if answer.status_code in (200, 201):
                break
        else:
            pytest.fail("no create succeeded in 20 tries")
        lite_view = http.get("/lite/sessions")  # exempt from faults
        assert lite_view.status_code == 200
        assert [s["name"] for s in lite_view.json()["sessions"]] == ["idem"]
        counts = http.get("/lite/faults").json()
        injected = counts["error_before"] + counts["error_after"]
        assert counts["requests"] >= 340 and injected >= errors
        assert 0.1 <= counts["delayed"] / counts["requests"] <= 0.3


def test_dropped_event_streams() -> None:
    faults = {"drop_event_stream_rate": 1.0, "drop_event_stream_after": 1}
    with LiteServer(faults=faults, sandbox="none") as server, server.client() as http:
        with http.stream("GET", "/events/session") as stream:
            create_session(http, "true", name="dropped")
            lines = [line for line in stream.iter_lines() if line.startswith("event:")]
        assert lines == ["event: session_enqueued"]  # the server closed the stream after one event


@pytest.fixture(scope="module")
def fallback_server() -> Iterator[LiteServer]:
    with LiteServer(
        slots={"cpu": 4, "mem": "4g", "cuda.shares": 10},
        sandbox="none",
        extra_config={"multi_node_command": "all"},
    ) as server:
        yield server


def test_fallback_without_namespaces(fallback_server: LiteServer) -> None:
    with fallback_server.client() as http:
        http.post("/folders", json={"name": "outs"})
        config = {"mounts": ["outs/run1", "outs"], "mount_map": {"outs/run1": "/pipeline/outputs"}}
        command = 'echo "pwd=$(pwd)"; echo "$BACKENDAI_LITE_MOUNTS"; echo hi > outs/direct.txt'
        sid = create_session(http, command, config=config)["sessionId"]
        wait_for(http, sid, terminated)
        logs = session_logs(http, sid)
        assert compute_session(http, sid)["result"] == "SUCCESS", logs
    assert "mount namespaces are not available" in logs
    assert "/pipeline/outputs is not mounted" in logs
    assert str(fallback_server.vfolder_path("outs") / "run1") in logs
    assert (fallback_server.vfolder_path("outs") / "direct.txt").read_text() == "hi\n"


def test_multi_node_command_on_every_kernel(fallback_server: LiteServer) -> None:
    with fallback_server.client() as http:
        command = 'echo "host=$BACKENDAI_CLUSTER_HOST idx=$BACKENDAI_CLUSTER_IDX"'
        sid = create_session(http, command, clusterMode="multi-node", clusterSize=2)["sessionId"]
        wait_for(http, sid, terminated)
        info = compute_session(http, sid)
        sub = info["containers"][1]["id"]
        assert "host=main1 idx=1" in session_logs(http, sid)
        sub_logs = session_logs(http, sid, kernel_id=sub)
        assert "host=sub1 idx=1" in sub_logs


def test_restart_recovery(fallback_server: LiteServer) -> None:
    gpu = {"resources": {"cpu": 1, "cuda.shares": "10"}}
    with fallback_server.client() as http:
        done = create_session(http, "echo finished-before; exit 4")["sessionId"]
        wait_for(http, done, terminated)
        running = create_session(http, "echo started; sleep 300", config=gpu)["sessionId"]
        wait_for(http, running, lambda r: r["status"] == "RUNNING")
        queued = create_session(http, "echo after-restart", config=gpu)["sessionId"]
        time.sleep(0.6)
        assert lite_session(http, queued)["status"] == "PENDING"
    fallback_server.restart()
    assert processes_of_session(running) == []
    with fallback_server.client() as http:
        interrupted = compute_session(http, running)
        assert (interrupted["status"], interrupted["result"]) == ("TERMINATED", "FAILURE")
        assert interrupted["status_info"] == "server-stopped"
        assert "stopped" in interrupted["status_data"]["error"]["repr"]
        assert "started" in session_logs(http, running)
        before = compute_session(http, done)
        assert before["result"] == "FAILURE" and before["status_data"]["kernel"]["exit_code"] == 4
        assert "finished-before" in session_logs(http, done)
        after = wait_for(http, queued, terminated)
        assert after["result"] == "SUCCESS"
        created = http.post(
            "/session",
            json={
                "name": "post-restart",
                "image": IMAGE,
                "type": "batch",
                "startupCommand": "true",
                "enqueueOnly": True,
            },
        )
        assert created.status_code == 201
    assert fallback_server.secret_key not in fallback_server.log_tail(10**9)


def test_keypair_resource_policy() -> None:
    keypair = {
        "access_key": "AKIAPOLICYTEST000001",
        "secret_key": "policy-test-secret-key-0123456789abcdef",
        "total_resource_slots": {"cpu": 2},
        "max_concurrent_sessions": 1,
    }
    with LiteServer(keypairs=[keypair], sandbox="none") as server, server.client() as http:
        over = http.post(
            "/session",
            json={
                "name": "too-many-cpus",
                "image": IMAGE,
                "type": "batch",
                "startupCommand": "true",
                "enqueueOnly": True,
                "config": {"resources": {"cpu": 3}},
            },
        )
        assert over.status_code == 400 and over.json()["type"].endswith("/quota-exceeded")
        first = create_session(http, "sleep 300")["sessionId"]
        second = create_session(http, "true")["sessionId"]
        wait_for(http, first, lambda r: r["status"] == "RUNNING")
        time.sleep(0.6)  # a scheduling round or more
        assert lite_session(http, second)["status"] == "PENDING"
        assert http.post("/resource/check-presets", json={}).json()["keypair_limits"]["cpu"] == "2"
        http.delete(f"/session/{first}", params={"forced": "true"})
        assert wait_for(http, second, terminated)["result"] == "SUCCESS"
