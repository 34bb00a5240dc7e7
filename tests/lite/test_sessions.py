"""Session lifecycle against a real server: results, exit codes, logs, 404 after termination, destroy, timeout."""

from __future__ import annotations

import time

import httpx

from airflow_provider_fasttrack.lite.runner import processes_of_session
from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.lite.conftest import (
    IMAGE,
    Gate,
    compute_session,
    create_session,
    lite_session,
    session_logs,
    terminated,
    wait_for,
)


def test_exit_3_is_failure_with_exit_code_and_logs(http: httpx.Client) -> None:
    created = create_session(http, "echo hello-from-session; echo oops >&2; exit 3")
    assert created["created"] is True and created["status"] == "PENDING"
    sid = created["sessionId"]
    wait_for(http, sid, terminated)
    missing = http.get(f"/session/{sid}")
    assert missing.status_code == 404
    assert missing.json()["type"] == "https://api.backend.ai/probs/object-not-found"
    info = compute_session(http, sid)
    assert info["status"] == "TERMINATED"
    assert info["result"] == "FAILURE"
    assert info["status_info"] == "task-failed"
    assert info["status_data"]["kernel"]["exit_code"] == 3
    logs = session_logs(http, sid)
    assert "hello-from-session" in logs and "oops" in logs


def test_exit_0_is_success_and_session_environment(http: httpx.Client) -> None:
    command = 'echo "cwd=$(pwd) id=$BACKENDAI_SESSION_ID role=$BACKENDAI_CLUSTER_ROLE hosts=$BACKENDAI_CLUSTER_HOSTS custom=$CUSTOM"'
    config = {"resources": {"cpu": 1}, "environ": {"CUSTOM": "value-42"}}
    created = create_session(http, command, config=config, name="env-check")
    sid = created["sessionId"]
    live = http.get(f"/session/{sid}")
    assert live.status_code == 200 and live.json()["image"] == IMAGE
    wait_for(http, sid, terminated)
    info = compute_session(http, sid)
    assert (info["result"], info["status_info"]) == ("SUCCESS", "task-finished")
    assert info["status_data"]["kernel"]["exit_code"] == 0
    logs = session_logs(http, sid)
    assert f"id={sid}" in logs
    assert "role=main hosts=main1 custom=value-42" in logs


def test_python_of_the_server_environment_is_the_runtime(http: httpx.Client) -> None:
    sid = create_session(http, "python -c \"import httpx, sys; print('runtime', sys.version_info[0])\"")[
        "sessionId"
    ]
    wait_for(http, sid, terminated)
    assert compute_session(http, sid)["result"] == "SUCCESS"
    assert "runtime 3" in session_logs(http, sid)


def _sleeps(session_id: str) -> list[int]:
    """The session's ``sleep`` processes."""
    found = []
    for pid in processes_of_session(session_id):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if cmdline.read().startswith(b"sleep\0"):
                    found.append(pid)
        except OSError:  # it ended meanwhile
            continue
    return found


def test_destroy_leaves_no_process(http: httpx.Client) -> None:
    sid = create_session(http, "sleep 300 & (sleep 301 &) ; sleep 302")["sessionId"]
    wait_for(http, sid, lambda r: r["status"] == "RUNNING")
    deadline = time.monotonic() + 10
    while len(_sleeps(sid)) < 3 and time.monotonic() < deadline:  # not the short-lived setup steps
        time.sleep(0.1)
    assert len(_sleeps(sid)) >= 3
    answer = http.delete(f"/session/{sid}", params={"forced": "true"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stats": {"status": "terminated"}}
    assert processes_of_session(sid) == []
    record = lite_session(http, sid)
    assert record["status"] == "TERMINATED"
    assert http.get(f"/session/{sid}").status_code == 404
    again = http.delete(f"/session/{sid}")  # ended: the manager answers 200 with empty stats by UUID
    assert (again.status_code, again.json()) == (200, {"stats": {}})


def test_batch_timeout_is_task_timeout(http: httpx.Client) -> None:
    sid = create_session(http, "echo started; sleep 60", batchTimeout="1s")["sessionId"]
    wait_for(http, sid, terminated)
    info = compute_session(http, sid)
    assert (info["result"], info["status_info"]) == ("FAILURE", "task-timeout")
    assert info["status_data"]["kernel"]["exit_code"] == -2
    assert processes_of_session(sid) == []


def test_dependency_holds_pending_until_success(http: httpx.Client, lite_server: LiteServer) -> None:
    gate = Gate(lite_server, http)
    first = create_session(http, gate.wait, config=gate.config())["sessionId"]
    second = create_session(http, "echo second", dependencies=[first])["sessionId"]
    wait_for(http, first, lambda r: r["status"] == "RUNNING")
    time.sleep(0.6)  # a scheduling round or more
    assert lite_session(http, second)["status"] == "PENDING"
    gate.open()
    done_first = wait_for(http, first, terminated)
    done_second = wait_for(http, second, terminated)
    assert done_first["result"] == "SUCCESS" and done_second["result"] == "SUCCESS"
    assert done_second["started_at"] >= done_first["terminated_at"]


def test_dependency_on_failure_stays_pending_and_recursive_destroy(http: httpx.Client) -> None:
    failing = create_session(http, "exit 1")["sessionId"]
    waiting = create_session(http, "echo never", dependencies=[failing])["sessionId"]
    wait_for(http, failing, terminated)
    time.sleep(1.0)  # a few scheduler rounds
    assert lite_session(http, waiting)["status"] == "PENDING"
    blocker = create_session(http, "sleep 300")["sessionId"]
    dependent = create_session(http, "echo x", dependencies=[blocker])["sessionId"]
    wait_for(http, blocker, lambda r: r["status"] == "RUNNING")
    answer = http.delete(f"/session/{blocker}", params={"recursive": "true"})
    assert answer.status_code == 200
    assert lite_session(http, dependent)["status"] == "CANCELLED"
    assert http.delete(f"/session/{waiting}").json() == {"stats": {"status": "cancelled"}}


def test_same_name_returns_same_live_session(http: httpx.Client) -> None:
    first = create_session(http, "sleep 300", name="reuse-me")
    again = create_session(http, "sleep 300", name="reuse-me")
    assert again["sessionId"] == first["sessionId"] and again["created"] is False
    refused = http.post(
        "/session",
        json={
            "name": "reuse-me",
            "image": IMAGE,
            "type": "batch",
            "startupCommand": "true",
            "enqueueOnly": True,
            "reuseIfExists": False,
        },
    )
    assert refused.status_code == 400
    assert refused.json()["type"].endswith("/session-already-exists")
    assert refused.json()["data"]["existingSessionId"] == first["sessionId"]
    by_name = http.get("/session/reuse-me")
    by_id = http.get(f"/session/{first['sessionId']}")
    assert by_name.status_code == 200 and by_name.json()["creationTime"] == by_id.json()["creationTime"]
    http.delete("/session/reuse-me", params={"forced": "true"})
    third = create_session(http, "true", name="reuse-me")
    assert third["created"] is True and third["sessionId"] != first["sessionId"]


def test_fgpu_shares_two_run_third_waits(http: httpx.Client, lite_server: LiteServer) -> None:
    gate = Gate(lite_server, http)
    gpu = gate.config(resources={"cuda.shares": "5"})
    ids = [create_session(http, gate.wait, config=gpu)["sessionId"] for _ in range(3)]
    wait_for(http, ids[0], lambda r: r["status"] == "RUNNING")
    wait_for(http, ids[1], lambda r: r["status"] == "RUNNING")
    time.sleep(0.6)  # a scheduling round or more
    assert lite_session(http, ids[2])["status"] == "PENDING"
    presets = http.post("/resource/check-presets", json={}).json()
    assert presets["scaling_groups"]["default"]["available"]["cuda.shares"] == "0"
    assert presets["scaling_groups"]["default"]["occupied"]["cuda.shares"] == "10"
    gate.open()
    records = [wait_for(http, sid, terminated) for sid in ids]
    assert all(r["result"] == "SUCCESS" for r in records)
    assert records[2]["started_at"] >= min(r["terminated_at"] for r in records[:2])
    spans = [(r["started_at"], r["terminated_at"]) for r in records]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1]  # the first two overlapped


def test_never_fits_and_bad_requests_are_refused(http: httpx.Client) -> None:
    def post(**fields: object) -> httpx.Response:
        body = {
            "name": "refused",
            "image": IMAGE,
            "type": "batch",
            "startupCommand": "true",
            "enqueueOnly": True,
        }
        body.update(fields)
        return http.post("/session", json=body)

    too_big = post(config={"resources": {"cuda.shares": "10.5"}})
    assert too_big.status_code == 400 and too_big.json()["type"].endswith("/quota-exceeded")
    unknown_slot = post(config={"resources": {"tpu.device": 1}})
    assert unknown_slot.status_code == 400 and unknown_slot.json()["type"].endswith(
        "/unknown-resource-slot-type"
    )
    no_image = post(image="docker.io/library/ubuntu:22.04")
    assert no_image.status_code == 404 and "cr.backend.ai/*" in no_image.json()["msg"]
    bad_name = post(name="ab")
    assert bad_name.status_code == 400 and bad_name.json()["type"].endswith("/invalid-api-params")
    no_command = post(startupCommand=None)
    assert no_command.status_code == 400
    assert http.patch("/session/whatever").status_code == 501


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as file:
        raw = file.read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_multi_node_cluster_variables(http: httpx.Client, lite_server: LiteServer) -> None:
    gate = Gate(lite_server, http)
    command = 'echo "role=$BACKENDAI_CLUSTER_ROLE idx=$BACKENDAI_CLUSTER_IDX rank=$BACKENDAI_CLUSTER_LOCAL_RANK host=$BACKENDAI_CLUSTER_HOST hosts=$BACKENDAI_CLUSTER_HOSTS replicas=$BACKENDAI_CLUSTER_REPLICAS size=$BACKENDAI_CLUSTER_SIZE"; '
    sid = create_session(
        http, command + gate.wait, config=gate.config(), clusterMode="multi-node", clusterSize=3
    )["sessionId"]
    wait_for(http, sid, lambda r: r["status"] == "RUNNING")
    deadline = time.monotonic() + 30
    roles: set[tuple[str, str]] = set()
    while len(roles) < 3 and time.monotonic() < deadline:
        for pid in processes_of_session(sid):
            try:
                env = _environ(pid)
            except OSError:
                continue
            roles.add((env["BACKENDAI_CLUSTER_HOST"], env["BACKENDAI_CLUSTER_LOCAL_RANK"]))
        time.sleep(0.1)
    assert roles == {("main1", "0"), ("sub1", "1"), ("sub2", "2")}  # one process per kernel
    gate.open()
    wait_for(http, sid, terminated)
    info = compute_session(http, sid)
    assert info["result"] == "SUCCESS"
    assert [c["cluster_role"] for c in info["containers"]] == ["main", "sub", "sub"]
    main_logs = session_logs(http, sid)
    assert "role=main idx=1 rank=0 host=main1 hosts=main1,sub1,sub2 replicas=main:1,sub:2 size=3" in main_logs
    sub = info["containers"][2]["id"]
    assert "role=" not in session_logs(http, sid, kernel_id=sub)
    assert lite_session(http, sid)["requested_slots"]["cpu"] == "3"
    assert processes_of_session(sid) == []


def test_gql_unknown_field_is_an_error(http: httpx.Client) -> None:
    answer = http.post(
        "/admin/gql",
        json={"query": '{ compute_session(id: "00000000-0000-0000-0000-000000000000") { nope } }'},
    )
    assert answer.status_code == 200
    assert answer.json()["data"] is None and "nope" in answer.json()["errors"][0]["message"]
    missing = http.post(
        "/admin/gql",
        json={"query": '{ compute_session(id: "00000000-0000-0000-0000-000000000000") { status } }'},
    )
    assert missing.json() == {"data": {"compute_session": None}}


def test_blocking_create_waits_until_running(http: httpx.Client) -> None:
    body = {
        "name": "blocking",
        "image": IMAGE,
        "type": "batch",
        "startupCommand": "sleep 300",
        "enqueueOnly": False,
    }
    answer = http.post("/session", json=body)
    assert answer.status_code == 201 and answer.json()["status"] == "RUNNING"
    sid = answer.json()["sessionId"]
    info = http.get(f"/session/{sid}").json()
    assert info["status"] == "RUNNING" and info["requestedSlots"]["cpu"] == "1"
    assert info["occupiedSlots"] == info["requestedSlots"]
    http.delete(f"/session/{sid}")
    assert lite_session(http, sid)["status"] == "TERMINATED"


def test_check_presets_shape(http: httpx.Client) -> None:
    answer = http.post("/resource/check-presets", json={"scaling_group": "default"})
    assert answer.status_code == 200
    body = answer.json()
    for key in (
        "keypair_limits",
        "keypair_using",
        "keypair_remaining",
        "scaling_group_remaining",
        "scaling_groups",
        "presets",
    ):
        assert key in body
    assert body["keypair_limits"]["cpu"] == "Infinity"
    assert set(body["scaling_groups"]["default"]) == {"occupied", "available", "using", "remaining"}
    assert all({"name", "resource_slots", "allocatable"} <= set(p) for p in body["presets"])
    assert (
        body["scaling_group_remaining"]["mem"] == str(16 * 2**30)
        or int(body["scaling_group_remaining"]["mem"]) < 16 * 2**30
    )


def test_accelerator_slots_are_accounted_and_logged_as_mock(http: httpx.Client) -> None:
    config = {"resources": {"cpu": 1, "mem": "256m", "cuda.shares": "2.5"}}
    gpu = create_session(http, "echo trained", config=config)
    cpu = create_session(http, "echo prepared")
    for created in (gpu, cpu):
        assert wait_for(http, created["sessionId"], terminated)["result"] == "SUCCESS"
    gpu_log = session_logs(http, gpu["sessionId"])
    assert gpu_log.startswith("[backendai-lite] mock accelerator: cuda.shares=2.5 accounted by the scheduler")
    assert gpu_log.rstrip().endswith("trained")
    assert "mock accelerator" not in session_logs(http, cpu["sessionId"])
