"""A session's usage as each server reports it, read by the hook in one ``compute_session`` request.

The manager's dummy agent gives the status history and the slots; it runs no process and reports no statistics
(``last_stat`` is null), so ``stats`` is empty there. Once a session has ended the manager has released its
allocations (``occupying_slots`` and each kernel's ``occupied_slots`` are ``{}``): the requested slots stand in.
"""

from __future__ import annotations

import pytest

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from tests.contract.conftest import Backend
from tests.contract.support import compute_session, ended, submit, unique_name, wait_state


def test_usage_of_an_ended_session(backend: Backend, contract_hook: BackendAIHook) -> None:
    name = unique_name("usage")
    session_id = str(submit(contract_hook, backend, name, "sleep 3")["sessionId"])
    wait_state(contract_hook, session_id, ended)

    usage = contract_hook.get_session_usage(session_id, task_id="train", map_index=1)

    assert (usage.session_id, usage.session_name, usage.task_id, usage.map_index) == (
        session_id,
        name,
        "train",
        1,
    )
    assert (usage.status, usage.result) == ("TERMINATED", "SUCCESS")
    assert usage.scheduled_at is not None and usage.started_at is not None and usage.ended_at is not None
    assert usage.created_at <= usage.scheduled_at <= usage.started_at <= usage.ended_at
    assert usage.queued_seconds is not None and usage.preparing_seconds is not None
    assert usage.running_seconds == pytest.approx(3.0, abs=1.5)  # both servers honour the command's sleep
    assert usage.occupied_slots == {"cpu": 1.0, "mem": 512.0 * 2**20}
    assert usage.gpu_hours == 0.0
    assert usage.cpu_core_hours == pytest.approx(usage.running_seconds / 3600)
    node = compute_session(contract_hook, session_id, "status_history")
    assert {"PENDING", "SCHEDULED", "RUNNING", "TERMINATING", "TERMINATED"} <= set(node["status_history"])
    if backend.name == "manager":
        assert usage.stats == {}  # the dummy agent runs nothing and reports no statistics
    else:
        assert usage.stats["mem"].unit == "bytes" and (usage.stats["mem"].peak or 0) > 0
