"""What a session used, as backendai-lite accounts it and the hook reads it (one ``compute_session`` request)."""

from __future__ import annotations

import time

import pytest

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.session_request import SessionRequest

pytestmark = pytest.mark.usefixtures("backendai_conn")

#: two to three seconds of a busy shell loop (``SECONDS`` counts whole seconds), then three of sleep: five to six
#: seconds of running time
BUSY_THEN_SLEEP = "end=$((SECONDS+3)); while [ $SECONDS -lt $end ]; do :; done; sleep 3"


def _ended(hook: BackendAIHook, session_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not hook.get_session_state(session_id).is_terminal:
        assert time.monotonic() < deadline, f"session {session_id} did not end"
        time.sleep(0.2)


def test_five_shares_held_for_about_five_and_a_half_seconds_are_five_times_that_in_share_seconds(
    hook: BackendAIHook,
) -> None:
    request = SessionRequest(
        image="python:3.11", command=BUSY_THEN_SLEEP, resources={"cpu": 1, "mem": "256m", "cuda.shares": "5"}
    )
    name = f"usage-{time.monotonic_ns()}"
    session_id = str(hook.create_session(request.body(name, defaults=hook.settings))["sessionId"])
    _ended(hook, session_id)

    usage = hook.get_session_usage(session_id, task_id="train", map_index=3)

    # ids, status and the order of the times are checked on both servers in tests/contract/test_usage.py
    assert usage.running_seconds == pytest.approx(5.5, abs=1.5)
    assert usage.occupied_slots == {"cpu": 1.0, "mem": 256.0 * 2**20, "cuda.shares": 5.0}
    assert usage.gpu_hours * 3600 == pytest.approx(5 * 5.5, abs=5 * 1.5)  # share-seconds
    assert usage.gpu_hours * 3600 == pytest.approx(5 * usage.running_seconds)
    assert usage.cpu_core_hours * 3600 == pytest.approx(usage.running_seconds)
    mem, cpu = usage.stats["mem"], usage.stats["cpu_util"]
    assert mem.unit == "bytes" and mem.peak is not None and mem.peak > 0
    assert mem.mean is not None and 0 < mem.mean <= mem.peak
    # the busy loop used CPU time, however little of a core a loaded machine gave it
    assert cpu.unit == "millicores" and cpu.peak is not None and cpu.peak > 0
    assert cpu.mean is not None and 0 < cpu.mean <= cpu.peak
    used = usage.stats["cpu_used"]
    assert used.unit == "msec" and used.peak is not None and used.peak > 0


def test_a_session_that_never_ran_has_only_queued_time(hook: BackendAIHook) -> None:
    request = SessionRequest(image="python:3.11", command="true", resources={"cpu": 1, "cuda.shares": "10"})
    blocker = SessionRequest(
        image="python:3.11", command="sleep 30", resources={"cpu": 1, "cuda.shares": "10"}
    )
    first = str(
        hook.create_session(blocker.body(f"usage-b-{time.monotonic_ns()}", defaults=hook.settings))[
            "sessionId"
        ]
    )
    try:
        waiting = str(
            hook.create_session(request.body(f"usage-w-{time.monotonic_ns()}", defaults=hook.settings))[
                "sessionId"
            ]
        )
        time.sleep(1)
        hook.destroy_session(waiting)
        usage = hook.get_session_usage(waiting, task_id="t")
    finally:
        hook.destroy_session(first)
    assert usage.status == "CANCELLED"
    assert usage.queued_seconds == pytest.approx(1.0, abs=1.0)
    assert usage.started_at is None and usage.running_seconds is None
    assert usage.gpu_hours == 0.0 and usage.stats == {}


def test_a_data_dir_of_an_earlier_version_gets_the_usage_columns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import sqlite3
    from contextlib import closing

    from airflow_provider_fasttrack.lite.store import Store

    path = tmp_path / "lite.sqlite3"
    Store(path).close()
    with closing(sqlite3.connect(path)) as db:  # as an earlier version made them
        db.execute("ALTER TABLE sessions DROP COLUMN status_history")
        db.execute("ALTER TABLE kernels DROP COLUMN occupied_slots")
        db.execute("ALTER TABLE kernels DROP COLUMN last_stat")
    store = Store(path)
    try:
        columns = {row[1] for row in store._execute("PRAGMA table_info(kernels)")}
        assert {"occupied_slots", "last_stat"} <= columns
        columns = {row[1] for row in store._execute("PRAGMA table_info(sessions)")}
        assert "status_history" in columns
    finally:
        store.close()
