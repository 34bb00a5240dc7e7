"""BackendAISessionOperator in real DAG runs (dag.test) against backendai-lite, deferrable and sync."""

from __future__ import annotations

import pytest

from tests.conftest import load_test_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")

MODES = ["deferrable", "sync"]


def run(dag_id: str):  # type: ignore[no-untyped-def]
    dag = load_test_dag(dag_id)
    dag_run = dag.test()
    return {ti.task_id: ti for ti in dag_run.get_task_instances()}, dag_run


@pytest.mark.parametrize("mode", MODES)
def test_success_logs_and_xcom(mode: str, lite, capfd) -> None:  # type: ignore[no-untyped-def]
    tis, dag_run = run(f"op_success_{mode}")
    ti = tis["hello"]
    assert ti.state == "success"
    out = capfd.readouterr()
    text = out.out + out.err
    assert "hello from the session" in text  # the session's output in the task log
    assert "[ft-hello-" in text
    session_id = ti.xcom_pull(task_ids="hello", key="session_id")
    assert session_id in lite.session_ids()
    assert ti.xcom_pull(task_ids="hello", key="exit_code") == 0
    assert ti.xcom_pull(task_ids="hello")["result"] == "SUCCESS"
    assert ti.xcom_pull(task_ids="hello", key="backendai_session_url").endswith(session_id)


def test_a_session_that_ends_before_the_deferral_finishes_in_the_worker(monkeypatch, capfd) -> None:  # type: ignore[no-untyped-def]
    """A session that ends within ``[fasttrack] resume_grace`` of its start: no deferral, no trigger, no grace."""
    monkeypatch.setenv("AIRFLOW__FASTTRACK__RESUME_GRACE", "20")
    tis, _ = run("op_success_deferrable")
    ti = tis["hello"]
    text = "".join(capfd.readouterr())
    assert ti.state == "success"
    assert "hello from the session" in text
    assert "Pausing task as DEFERRED" not in text and "running trigger" not in text
    assert ti.xcom_pull(task_ids="hello")["result"] == "SUCCESS"


def test_the_worker_waits_for_the_sessions_end_event_not_by_polling(monkeypatch, tmp_path, capfd) -> None:  # type: ignore[no-untyped-def]
    """Before deferring, the worker listens to the session's events: it reads the state when the stream is open
    and when the end event comes, not every ``poll_interval`` (0.5 s here, over a 4 s session)."""
    from airflow_provider_fasttrack.lite.testing import LiteServer
    from tests.helpers import LOG_FILES, SECRETS, connection_env

    monkeypatch.setenv("AIRFLOW__FASTTRACK__RESUME_GRACE", "30")
    with LiteServer(data_dir=tmp_path / "lite", extra_config={"request_stats": True}) as lite:
        SECRETS.add(lite.secret_key)
        LOG_FILES.append(lite.log_path)
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(lite))
        tis, _ = run("op_wait_in_worker")
        with lite.client() as http:
            counts = http.get("/lite/requests").json()
    assert tis["short"].state == "success"
    assert "Pausing task as DEFERRED" not in "".join(capfd.readouterr())
    assert counts["requests"]["GET /events/session"] == 1
    assert counts["graphql"]["compute_session"] <= 3, counts["graphql"]


@pytest.mark.parametrize("mode", MODES)
def test_failure_message_has_reason_exit_code_and_log_tail(mode: str, capfd) -> None:  # type: ignore[no-untyped-def]
    tis, dag_run = run(f"op_failure_{mode}")
    assert tis["fails"].state == "failed"
    assert dag_run.state == "failed"
    text = "".join(capfd.readouterr())
    assert "result FAILURE, reason task-failed, exit code 3" in text
    assert "Last log lines:" in text and "the last words" in text


@pytest.mark.parametrize("mode", MODES)
def test_skip_on_exit_code(mode: str) -> None:
    tis, _ = run(f"op_skip_{mode}")
    assert tis["skips"].state == "skipped"


def test_a_task_without_a_session_logs_no_error(capfd) -> None:  # type: ignore[no-untyped-def]
    """The extra link is stored when the task ends; with no session there is no link, and nothing to complain of."""
    tis, _ = run("op_static_skip")
    assert tis["not_needed"].state == "skipped"
    text = "".join(capfd.readouterr())
    assert "no session started" in text
    assert "XCom not found" not in text and "[error" not in text, text[-3000:]


def test_request_that_never_fits_fails_at_once(lite, capfd) -> None:  # type: ignore[no-untyped-def]
    before = set(lite.session_ids())
    tis, _ = run("op_never_fits")
    assert tis["greedy"].state == "failed"
    assert "cuda.shares=500" in "".join(capfd.readouterr())
    assert set(lite.session_ids()) == before  # no session was created


def test_capacity_check_counts_every_kernel(lite, capfd) -> None:  # type: ignore[no-untyped-def]
    before = set(lite.session_ids())
    tis, _ = run("op_never_fits_cluster")
    assert tis["two_kernels"].state == "failed"
    text = "".join(capfd.readouterr())
    assert (
        "requests cuda.shares=6 per kernel x 2 kernels = 12 but scaling group 'default' can never provide more "
        "than 10" in text
    )
    assert set(lite.session_ids()) == before


def test_keypair_policy_check_counts_every_kernel(tmp_path, monkeypatch, capfd) -> None:  # type: ignore[no-untyped-def]
    from airflow_provider_fasttrack.lite.config import generate_keypair
    from airflow_provider_fasttrack.lite.testing import LiteServer
    from tests.helpers import LOG_FILES, SECRETS, connection_env

    keypair = generate_keypair()
    limited = {
        "access_key": keypair.access_key,
        "secret_key": keypair.secret_key,
        "total_resource_slots": {"cpu": 4},
    }
    with LiteServer(data_dir=tmp_path / "lite", keypairs=[limited]) as server:
        SECRETS.add(server.secret_key)
        LOG_FILES.append(server.log_path)
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(server))
        tis, _ = run("op_never_fits_policy")
        assert tis["two_kernels"].state == "failed"
        text = "".join(capfd.readouterr())
        assert (
            "requests cpu=3 per kernel x 2 kernels = 6 but the keypair's resource policy can never provide more than 4"
            in text
        )
        assert server.session_ids() == []


@pytest.mark.parametrize("mode", MODES)
def test_an_unreadable_session_log_changes_no_outcome(mode: str, tmp_path, monkeypatch, capfd) -> None:  # type: ignore[no-untyped-def]
    """A manager may answer 500 for the log of an ended session (its kernel is gone): the task ends as its
    session did, says so in one line, and spends no retries on the log."""
    from airflow_provider_fasttrack.lite.testing import LiteServer
    from tests.helpers import LOG_FILES, SECRETS, connection_env

    faults = {
        "error_rate": 1.0,
        "error_statuses": [500],
        "error_phase": "before",
        "paths": ["/session/*/logs"],
    }
    with LiteServer(data_dir=tmp_path / "lite", faults=faults) as lite:
        SECRETS.add(lite.secret_key)
        LOG_FILES.append(lite.log_path)
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(lite))
        succeeded, _ = run(f"op_success_{mode}")
        failed, _ = run(f"op_failure_{mode}")
        with lite.client() as http:
            assert http.get("/lite/faults").json()["error_before"] >= 2  # the log was asked for, and refused
    assert succeeded["hello"].state == "success"
    assert failed["fails"].state == "failed"
    text = "".join(capfd.readouterr())
    assert "result FAILURE, reason task-failed, exit code 3" in text
    assert "Last log lines:" not in text
    assert "could not be read after the session ended" in text
    retried = [line for line in text.splitlines() if "retrying" in line and "/logs" in line]
    assert not retried, retried[:3]


def test_a_refused_capacity_check_does_not_stop_the_task(tmp_path, monkeypatch, capfd) -> None:  # type: ignore[no-untyped-def]
    """A keypair may create sessions but not read the resource presets (a manager's RBAC answers 403
    ``not-enough-permission`` to check-presets): the advisory capacity check is skipped with a warning."""
    from airflow_provider_fasttrack.lite.testing import LiteServer
    from tests.helpers import LOG_FILES, SECRETS, connection_env

    faults = {
        "error_rate": 1.0,
        "error_statuses": [403],
        "error_phase": "before",
        "paths": ["/resource/check-presets"],
    }
    with LiteServer(data_dir=tmp_path / "lite", faults=faults) as lite:
        SECRETS.add(lite.secret_key)
        LOG_FILES.append(lite.log_path)
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(lite))
        tis, _ = run("op_success_sync")
        with lite.client() as http:
            assert http.get("/lite/faults").json()["error_before"] == 1  # asked once, refused, not retried
        assert len(lite.session_ids()) == 1
    assert tis["hello"].state == "success"
    text = "".join(capfd.readouterr())
    assert "capacity check skipped" in text and "not-enough-permission" in text
