"""A session task reports what its session used: one task-log line and the ``backendai_usage`` XCom, per map
index, on success and on failure; checked against backendai-lite's own records of the sessions."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import threading
import time
from contextlib import closing
from typing import Any

import pytest

from airflow_provider_fasttrack.usage import USAGE_XCOM_KEY, SessionUsage
from tests.conftest import load_test_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")

LINE = re.compile(
    r"Backend\.AI usage of session (?P<name>\S+) \((?P<id>[0-9a-f-]{36})\): queued [^,]+, preparing [^,]+, "
    r"running (?P<running>[\d.]+) s; slots (?P<slots>[^;]+); (?P<gpu>[\d.]+) GPU-hours, (?P<cpu>[\d.]+) "
    r"CPU-core-hours; peak memory (?P<mem>[\d.]+) MiB"
)


def _lite_records(lite: Any, session_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The session row and kernel rows as backendai-lite stored them."""
    with closing(sqlite3.connect(lite.data_dir / "lite.sqlite3")) as db:
        db.row_factory = sqlite3.Row
        session = dict(db.execute("SELECT * FROM sessions WHERE id = ?", [session_id]).fetchone())
        kernels = [
            dict(row) for row in db.execute("SELECT * FROM kernels WHERE session_id = ?", [session_id])
        ]
    return session, kernels


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize("mode", ["deferrable", "sync"])
def test_each_session_task_reports_its_usage(mode: str, lite: Any, capfd: pytest.CaptureFixture[str]) -> None:
    dag = load_test_dag(f"op_usage_{mode}")
    dag_run = dag.test()
    tis = {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}
    assert {key: ti.state for key, ti in tis.items()} == {
        ("gpu", -1): "success",
        ("each", 0): "success",
        ("each", 1): "failed",
    }
    lines = {match["id"]: match for match in LINE.finditer("".join(capfd.readouterr()))}

    for (task_id, map_index), ti in tis.items():
        pushed = ti.xcom_pull(task_ids=task_id, map_indexes=map_index, key=USAGE_XCOM_KEY)
        usage = SessionUsage.model_validate(pushed)
        assert (usage.task_id, usage.map_index) == (task_id, map_index)
        assert usage.session_id == ti.xcom_pull(task_ids=task_id, map_indexes=map_index, key="session_id")
        session, kernels = _lite_records(lite, usage.session_id)
        history = json.loads(session["status_history"])
        assert usage.session_name == session["name"]
        assert (usage.status, usage.result) == ("TERMINATED", "FAILURE" if map_index == 1 else "SUCCESS")
        assert usage.created_at == _at(session["created_at"])
        assert usage.scheduled_at == _at(history["SCHEDULED"]) == _at(session["scheduled_at"])
        assert usage.started_at == _at(history["RUNNING"]) == _at(session["started_at"])
        assert usage.ended_at == _at(session["terminated_at"])
        running = (_at(history["TERMINATING"]) - _at(history["RUNNING"])).total_seconds()
        assert usage.running_seconds == pytest.approx(running)
        assert usage.running_seconds == pytest.approx(2.0 if task_id == "gpu" else 1.0, abs=1.0)
        held = json.loads(kernels[0]["occupied_slots"])
        assert {k: float(v) for k, v in held.items()} == usage.occupied_slots
        shares = float(held.get("cuda.shares", 0))
        assert shares == (2.0 if task_id == "gpu" else 0.0)
        assert usage.gpu_hours == pytest.approx(shares * running / 3600)
        assert usage.cpu_core_hours == pytest.approx(float(held["cpu"]) * running / 3600)
        stat = json.loads(kernels[0]["last_stat"])
        assert usage.stats["mem"].peak == float(stat["mem"]["stats.max"]) > 0

        line = lines[usage.session_id]  # the task log's line says the same
        assert line["name"] == usage.session_name
        assert float(line["running"]) == pytest.approx(running, abs=0.05)
        assert float(line["gpu"]) == pytest.approx(usage.gpu_hours, abs=1e-4)
        assert float(line["cpu"]) == pytest.approx(usage.cpu_core_hours, abs=1e-4)
        assert float(line["mem"]) == pytest.approx(usage.stats["mem"].peak / 2**20, abs=0.05)
        assert ("cuda.shares=2" in line["slots"]) == (task_id == "gpu")


def test_a_usage_that_cannot_be_read_is_a_warning(lite: Any, capfd: pytest.CaptureFixture[str]) -> None:
    """The manager's answer is malformed (here: a kernel's slots that are no numbers): the task ends as its
    session did, says so in one warning and pushes no usage."""
    garbled: list[str] = []

    def garble_while_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not garbled:
            with closing(sqlite3.connect(lite.data_dir / "lite.sqlite3", timeout=10)) as db:
                row = db.execute(
                    "SELECT k.id, k.session_id FROM kernels k JOIN sessions s ON s.id = k.session_id "
                    "WHERE s.name LIKE 'ft-garbled-%' AND k.status = 'RUNNING'"
                ).fetchone()
                if row is not None:
                    db.execute(
                        "UPDATE kernels SET occupied_slots = ? WHERE id = ?", ['{"cpu": "lots"}', row[0]]
                    )
                    db.commit()
                    garbled.append(row[1])
            time.sleep(0.1)

    thread = threading.Thread(target=garble_while_running)
    thread.start()
    try:
        dag_run = load_test_dag("op_usage_unreadable").test()
    finally:
        thread.join()
    (ti,) = dag_run.get_task_instances()
    assert garbled and ti.state == "success"
    text = "".join(capfd.readouterr())
    assert f"The usage of Backend.AI session {garbled[0]} could not be read (ValueError:" in text
    assert "containers.occupied_slots: cpu: 'lots' is not a number" in text
    assert "Backend.AI usage of session" not in text
    assert ti.xcom_pull(task_ids="garbled", key=USAGE_XCOM_KEY) is None
