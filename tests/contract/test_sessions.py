"""The hook's session calls against each server: signing, creation, state, destroy, logs, presets."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.exceptions import (
    BackendAIAuthError,
    BackendAINotFoundError,
    BackendAIServerError,
)
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.signing import BackendAIAuth
from tests.contract.conftest import Backend
from tests.contract.support import (
    API_VERSION,
    compute_session,
    ended,
    hook_of,
    hook_with_a_wrong_secret,
    running,
    signed_client,
    submit,
    unique_name,
    wait_state,
)

PROBLEM = "https://api.backend.ai/probs/"
#: the keys of the manager's ``GET /session/{id}`` answer
LEGACY_SESSION_INFO = {
    "age", "domainName", "groupId", "userId", "lang", "image", "architecture", "registry", "tag", "containerId",
    "occupiedSlots", "occupyingSlots", "requestedSlots", "occupiedShares", "environ", "resourceOpts", "status",
    "statusInfo", "statusData", "creationTime", "terminationTime", "numQueriesExecuted", "lastStat", "idleChecks",
}  # fmt: skip

# -- signing and version negotiation -----------------------------------------------------------------


def test_root_answers_the_version_and_the_hook_negotiates_it(
    backend: Backend, contract_hook: BackendAIHook
) -> None:
    root = httpx.get(backend.endpoint + "/", timeout=30).json()
    assert root == {
        "version": API_VERSION,
        "manager": "26.9.6",
    }  # lite follows the manager it is tested against
    assert contract_hook.api_version == API_VERSION
    ok, message = contract_hook.test_connection()
    assert ok, message


def test_a_wrong_secret_or_version_is_refused(backend: Backend) -> None:
    keypair = backend.keypairs["user"]
    bad_secret = BackendAIAuth(keypair.access_key, "not-the-secret-key-0000000000000", API_VERSION)
    with httpx.Client(base_url=backend.endpoint, auth=bad_secret, timeout=30) as client:
        assert client.post("/resource/check-presets", json={}).status_code == 401
    unknown_version = BackendAIAuth(keypair.access_key, keypair.secret_key, "v99.20991231")
    with httpx.Client(base_url=backend.endpoint, auth=unknown_version, timeout=30) as client:
        assert client.post("/resource/check-presets", json={}).status_code == 400


def test_the_hook_reports_a_refused_keypair(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = hook_with_a_wrong_secret(backend, monkeypatch)
    try:
        with pytest.raises(BackendAIAuthError):
            hook.check_presets()
    finally:
        hook.close()


# -- creation ------------------------------------------------------------------------------------------


def test_enqueue_only_returns_at_once_and_reuses_a_live_name(
    backend: Backend, contract_hook: BackendAIHook
) -> None:
    name = unique_name("reuse")
    first = submit(contract_hook, backend, name, "sleep 4; exit 0")
    assert first["created"] is True and first["sessionName"] == name
    assert first["status"] == "PENDING"  # enqueued, not waited for
    again = submit(contract_hook, backend, name, "sleep 4; exit 0")
    assert again["sessionId"] == first["sessionId"] and again.get("created") is False
    assert wait_state(contract_hook, first["sessionId"], ended).is_successful
    after = submit(contract_hook, backend, name, "exit 0")  # the name is free again once it ended
    assert after["sessionId"] != first["sessionId"] and after.get("created", True) is True
    assert wait_state(contract_hook, after["sessionId"], ended).is_successful
    found = {item["id"] for item in contract_hook.find_sessions(name)}
    assert found == {first["sessionId"], after["sessionId"]}


def test_dependencies_hold_a_session_pending_until_success(
    backend: Backend, contract_hook: BackendAIHook
) -> None:
    first = submit(contract_hook, backend, unique_name("dep-first"), "sleep 3; exit 0")["sessionId"]
    second = submit(contract_hook, backend, unique_name("dep-second"), "exit 0", dependencies=[first])
    second_id = second["sessionId"]
    assert contract_hook.get_session_state(second_id).status == "PENDING"
    assert wait_state(contract_hook, first, ended).is_successful
    assert wait_state(contract_hook, second_id, ended).is_successful


def test_a_dependency_that_failed_keeps_the_dependent_pending(
    backend: Backend, contract_hook: BackendAIHook
) -> None:
    failing = submit(contract_hook, backend, unique_name("dep-fail"), "exit 1")["sessionId"]
    waiting = submit(contract_hook, backend, unique_name("dep-wait"), "exit 0", dependencies=[failing])
    assert wait_state(contract_hook, failing, ended).result == "FAILURE"
    assert contract_hook.get_session_state(waiting["sessionId"]).status == "PENDING"
    assert contract_hook.destroy_session(waiting["sessionId"]) is True
    cancelled = wait_state(contract_hook, waiting["sessionId"], ended)
    assert cancelled.status == "CANCELLED" and not cancelled.is_successful
    assert cancelled.status_info == "force-terminated"  # the hook destroys forced


def test_batch_timeout_ends_with_task_timeout(backend: Backend, contract_hook: BackendAIHook) -> None:
    session_id = submit(contract_hook, backend, unique_name("timeout"), "sleep 30", batch_timeout=2)[
        "sessionId"
    ]
    state = wait_state(contract_hook, session_id, ended)
    assert (state.status, state.result, state.reason) == ("TERMINATED", "FAILURE", "task-timeout")
    if backend.name == "lite":
        assert state.exit_code == -2


@pytest.mark.parametrize("mode", ["single-node", "multi-node"])
def test_cluster_mode_and_size(backend: Backend, contract_hook: BackendAIHook, mode: str) -> None:
    if mode == "multi-node":
        backend.skip_unless(
            "lite",
            why="a multi-node session needs an inter-container network plugin (Docker Swarm's overlay) and the "
            "harness runs no Docker: the manager leaves it CREATING",
        )
    session_id = submit(
        contract_hook, backend, unique_name("cluster"), "sleep 3; exit 0", cluster_mode=mode, cluster_size=2
    )["sessionId"]
    wait_state(contract_hook, session_id, running)
    node = compute_session(contract_hook, session_id, "cluster_mode cluster_size containers { cluster_role }")
    assert (node["cluster_mode"].lower().replace("_", "-"), node["cluster_size"]) == (mode, 2)
    assert sorted(c["cluster_role"] for c in node["containers"]) == ["main", "sub"]
    assert wait_state(contract_hook, session_id, ended).is_successful


def test_resources_options_and_scaling_group_are_what_was_asked(
    backend: Backend, contract_hook: BackendAIHook
) -> None:
    name = unique_name("slots")
    session_id = submit(
        contract_hook,
        backend,
        name,
        "sleep 4; exit 0",
        resources={"cpu": 1, "mem": "512m"},
        resource_opts={"shmem": "64m"},
        scaling_group=backend.scaling_group,
    )["sessionId"]
    wait_state(contract_hook, session_id, running)
    info = contract_hook.get_session(session_id)
    # the manager's REST answer: its legacy fields, no scaling group (GraphQL has it)
    assert info.keys() == LEGACY_SESSION_INFO and info["status"] == "RUNNING"
    assert info["resourceOpts"] and "shmem" in str(info["resourceOpts"])
    node = compute_session(contract_hook, session_id, "scaling_group requested_slots")
    assert node["scaling_group"] == backend.scaling_group
    requested = node["requested_slots"]
    assert Decimal(str(requested["cpu"])) == 1
    assert int(Decimal(str(requested["mem"]))) == 512 * 2**20
    assert wait_state(contract_hook, session_id, ended).is_successful


def test_mounts_by_name_and_alias(backend: Backend, contract_hook: BackendAIHook) -> None:
    plain, aliased = unique_name("mnt"), unique_name("mnt")
    for folder in (plain, aliased):
        contract_hook.create_vfolder(folder, host=backend.vfolder_host)
    command = f"echo by-name > {plain}/a.txt; echo by-alias > alias/b.txt; exit 0"
    session_id = submit(
        contract_hook, backend, unique_name("mounts"), command, mounts=[plain, f"{aliased}:alias"]
    )["sessionId"]
    assert wait_state(contract_hook, session_id, ended).is_successful
    backend.skip_unless("lite", why="the dummy agent runs no command, so nothing is written into the mounts")
    assert contract_hook.download_file(plain, "a.txt") == b"by-name\n"
    assert contract_hook.download_file(aliased, "b.txt") == b"by-alias\n"


def test_listing_a_path_that_is_not_there(backend: Backend, contract_hook: BackendAIHook) -> None:
    """The storage proxy refuses to list a missing path: 400 ``vfolder-operation-failed``, which the hook reports
    as not found (what the operator reads as "no upstream output in this run")."""
    folder = unique_name("ls")
    contract_hook.create_vfolder(folder, host=backend.vfolder_host)
    with signed_client(backend) as http:
        answer = http.get(f"/folders/{folder}/files", params={"path": "no/such/dir"})
        assert (answer.status_code, answer.json()["type"]) == (400, PROBLEM + "vfolder-operation-failed")
    with pytest.raises(BackendAINotFoundError):
        contract_hook.list_files(folder, "no/such/dir")
    assert contract_hook.list_files(folder) == []


def test_a_model_folder_mounts_into_a_batch_session(backend: Backend, contract_hook: BackendAIHook) -> None:
    """A model-type vfolder (``usage_mode: model``) is not only for model services: a batch session mounts it
    (as the trade-QA steps mount their models folder as a cache)."""
    folder = unique_name("models")
    contract_hook.create_vfolder(folder, host=backend.vfolder_host, usage_mode="model")
    (listed,) = [f for f in contract_hook.list_vfolders() if f["name"] == folder]
    assert listed["usage_mode"] == "model"
    session_id = submit(
        contract_hook, backend, unique_name("model-mount"), f"ls {folder} && exit 0", mounts=[folder]
    )["sessionId"]
    state = wait_state(contract_hook, session_id, ended)
    assert (state.status, state.result, state.reason) == ("TERMINATED", "SUCCESS", "task-finished")


# -- state while running and after the end ------------------------------------------------------------


def test_state_while_running_and_after_the_end(backend: Backend, contract_hook: BackendAIHook) -> None:
    name = unique_name("state")
    session_id = submit(contract_hook, backend, name, "sleep 4; exit 0")["sessionId"]
    wait_state(contract_hook, session_id, running)
    for ref in (session_id, name):
        live = contract_hook.get_session(ref)
        assert live["status"] == "RUNNING"
        assert {"statusInfo", "occupiedSlots", "requestedSlots", "creationTime"} <= live.keys()
    state = wait_state(contract_hook, session_id, ended)
    assert (state.status, state.result, state.reason) == ("TERMINATED", "SUCCESS", "task-finished")
    with signed_client(backend) as http:  # REST knows live sessions only
        for ref in (session_id, name):
            gone = http.get(f"/session/{ref}")
            assert gone.status_code == 404, gone.text
    node = compute_session(contract_hook, session_id, "name status result status_info")
    assert node == {"name": name, "status": "TERMINATED", "result": "SUCCESS", "status_info": "task-finished"}


def test_a_failed_session_reports_task_failed(backend: Backend, contract_hook: BackendAIHook) -> None:
    session_id = submit(contract_hook, backend, unique_name("fail"), "exit 3")["sessionId"]
    state = wait_state(contract_hook, session_id, ended)
    assert (state.status, state.result, state.reason) == ("TERMINATED", "FAILURE", "task-failed")
    assert not state.is_successful
    backend.skip_unless("lite", why="the dummy agent reports no real exit code")
    assert state.exit_code == 3


# -- destroy ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["id", "name"])
def test_destroy_a_live_session(backend: Backend, contract_hook: BackendAIHook, by: str) -> None:
    name = unique_name("kill")
    session_id = submit(contract_hook, backend, name, "sleep 60")["sessionId"]
    wait_state(contract_hook, session_id, running)
    assert contract_hook.destroy_session(session_id if by == "id" else name) is True
    state = wait_state(contract_hook, session_id, ended)
    assert state.status in {"TERMINATED", "CANCELLED"} and not state.is_successful
    assert state.status_info == "force-terminated"


def test_destroy_an_ended_session_destroys_nothing(backend: Backend, contract_hook: BackendAIHook) -> None:
    name = unique_name("ended")
    session_id = submit(contract_hook, backend, name, "exit 0")["sessionId"]
    assert wait_state(contract_hook, session_id, ended).is_successful
    with signed_client(backend) as http:
        by_id = http.delete(f"/session/{session_id}", params={"forced": "true"})
        assert (by_id.status_code, by_id.json()) == (200, {"stats": {}})  # as the manager answers
        assert http.delete(f"/session/{name}", params={"forced": "true"}).status_code == 404
    assert contract_hook.destroy_session(session_id) is False
    assert contract_hook.destroy_session(name) is False
    assert contract_hook.get_session_state(session_id).result == "SUCCESS"  # unchanged


def test_destroy_an_unknown_session(backend: Backend, contract_hook: BackendAIHook) -> None:
    """By UUID the manager checks the caller's permission on the session first: one the caller has none on (none
    exists) is 403 ``not-enough-permission``; an unknown name is 404."""
    unknown = str(uuid.uuid4())
    with signed_client(backend) as http:
        by_id = http.delete(f"/session/{unknown}")
        assert (by_id.status_code, by_id.json()["type"]) == (403, PROBLEM + "not-enough-permission")
        assert http.delete(f"/session/{unique_name('never')}").status_code == 404
    assert contract_hook.destroy_session(unknown) is False
    assert contract_hook.destroy_session(unique_name("never")) is False


def test_destroy_another_users_session_is_refused(
    backend: Backend, contract_hook: BackendAIHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = hook_of(backend, "other", monkeypatch)
    try:
        name = unique_name("theirs")
        theirs = submit(other, backend, name, "sleep 4; exit 0")["sessionId"]
        with signed_client(backend) as http:
            by_id = http.delete(f"/session/{theirs}", params={"forced": "true"})
            assert (by_id.status_code, by_id.json()["type"]) == (403, PROBLEM + "not-enough-permission")
            assert http.delete(f"/session/{name}", params={"forced": "true"}).status_code == 404
        assert wait_state(other, theirs, ended).is_successful  # untouched
    finally:
        other.close()


# -- logs ------------------------------------------------------------------------------------------------


def test_logs_while_running_and_after_the_end(backend: Backend, contract_hook: BackendAIHook) -> None:
    session_id = submit(contract_hook, backend, unique_name("logs"), "echo contract-log-line; sleep 10")[
        "sessionId"
    ]
    wait_state(contract_hook, session_id, running)
    assert isinstance(contract_hook.get_logs(session_id), str)
    wait_state(contract_hook, session_id, ended)
    if backend.name == "manager":  # the kernel is gone: the dummy agent has no log to give
        with pytest.raises(BackendAIServerError):
            contract_hook.get_logs(session_id, retry=False)
        return
    assert "contract-log-line" in contract_hook.get_logs(session_id, retry=False)


# -- resources -------------------------------------------------------------------------------------------


def test_check_presets_gives_keypair_and_scaling_group_limits(
    backend: Backend, contract_hook: BackendAIHook
) -> None:
    """What the operator's capacity check and ``fasttrack pools sync`` read: ``keypair_limits`` (the keypair's
    resource policy) and ``scaling_groups.<g>.occupied/available``."""
    from airflow_provider_fasttrack.pools import cluster_gpu_capacity
    from airflow_provider_fasttrack.slots import scaling_group_capacities

    presets = contract_hook.check_presets(scaling_group=backend.scaling_group)
    assert {
        "keypair_limits",
        "keypair_using",
        "keypair_remaining",
        "scaling_groups",
        "presets",
    } <= presets.keys()
    assert "cpu" in presets["keypair_limits"] and "mem" in presets["keypair_limits"]
    capacities = scaling_group_capacities(presets)
    assert backend.scaling_group in capacities
    assert capacities[backend.scaling_group]["cpu"] > 0
    assert backend.scaling_group in cluster_gpu_capacity(presets)


def test_keypair_resource_policy_query(backend: Backend, contract_hook: BackendAIHook) -> None:
    from tests.contract.support import gql

    data = gql(contract_hook, "{ keypair { access_key is_admin resource_policy concurrency_used } }")
    keypair: dict[str, Any] = data["keypair"]
    assert keypair["access_key"] == backend.keypairs["user"].access_key
    assert keypair["is_admin"] is False
    assert keypair["resource_policy"]
