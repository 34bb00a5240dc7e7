"""A 5-task DAG succeeds against a backendai-lite that fails 30% of API requests, with exactly 5 sessions."""

from __future__ import annotations

import pytest

from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.conftest import load_test_dag
from tests.helpers import LOG_FILES, SECRETS, connection_env, lite_sessions


@pytest.mark.usefixtures("airflow_db")
def test_five_task_dag_under_thirty_percent_faults(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    faults = {"error_rate": 0.3, "error_phase": "both", "retry_after_seconds": 0.1, "seed": 11}
    with LiteServer(data_dir=tmp_path / "lite", faults=faults) as lite:
        SECRETS.add(lite.secret_key)
        LOG_FILES.append(lite.log_path)
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(lite))
        dag_run = load_test_dag("op_chain").test()
        assert dag_run.state == "success"
        sessions = lite_sessions(lite)
        with lite.client() as http:
            injected = http.get("/lite/faults").json()
    assert len(sessions) == 5  # retried creations never made a second session
    assert sorted(s["name"].rsplit("-", 1)[0] for s in sessions) == [f"ft-step-{i}" for i in range(5)]
    assert all(s["result"] == "SUCCESS" for s in sessions)
    assert injected["error_before"] + injected["error_after"] >= 0.2 * injected["requests"], injected
