"""What a task puts into its session or service from connections, variables and secrets stays masked in what
the triggerer writes: the session log it relays while the task is deferred, and a failed replica's log lines
in the service trigger's event. Serving tasks get ``${{ secrets.NAME }}`` values in their replicas' environment.
"""

from __future__ import annotations

import hashlib
import json
import secrets

import pytest

from tests.conftest import load_test_dag
from tests.helpers import SECRETS
from tests.model_service import write_echo_model

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")


def secret_value(prefix: str) -> str:
    value = f"{prefix}-{secrets.token_hex(12)}"
    SECRETS.add(value)  # the suite's last test also checks every log for it
    return value


def states(dag_run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_the_deferred_log_relay_masks_what_the_task_read(monkeypatch: pytest.MonkeyPatch, capfd) -> None:  # type: ignore[no-untyped-def]
    token, key = secret_value("hf"), secret_value("relay")
    monkeypatch.setenv("AIRFLOW_CONN_HF", json.dumps({"conn_type": "generic", "password": token}))
    monkeypatch.setenv("AIRFLOW_VAR_FASTTRACK_RELAY_SECRET", key)
    monkeypatch.setenv(
        "AIRFLOW__FASTTRACK__LOG_INTERVAL", "0.5"
    )  # the trigger writes the lines, not the worker

    dag_run = load_test_dag("conn-env-relay").test()

    assert states(dag_run) == {"from-conn": "success", "from-secret": "success"}
    out = "".join(capfd.readouterr())
    # dag.test() prints task logs without Airflow's redaction: what shows is what the trigger itself wrote
    assert "token ***" in out and "key ***" in out
    assert token not in out and key not in out


def test_a_serving_task_delivers_secrets_and_its_failure_event_masks_them(  # type: ignore[no-untyped-def]
    lite, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    write_echo_model(lite, "echo-model")
    token, key = secret_value("hf"), secret_value("serve")
    monkeypatch.setenv("AIRFLOW_CONN_HF", json.dumps({"conn_type": "generic", "password": token}))
    monkeypatch.setenv("AIRFLOW_VAR_FASTTRACK_SERVE_SECRET", key)

    dag_run = load_test_dag("serve-secret-env").test()

    assert states(dag_run) == {"serve": "failed"}
    out = "".join(capfd.readouterr())
    # the replicas got the secret's value (its digest) and their last lines came back in the event, masked
    assert f"key digest {hashlib.sha256(key.encode()).hexdigest()}" in out
    assert "key ***" in out and "token ***" in out
    assert token not in out and key not in out
