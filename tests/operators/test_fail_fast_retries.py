"""Fail-fast in real DAG runs (dag.test) against backendai-lite: only the final failure destroys siblings."""

from __future__ import annotations

import pendulum
import pytest

from airflow_provider_fasttrack.naming import session_name
from airflow_provider_fasttrack.session_request import SessionRequest
from tests.conftest import load_test_dag
from tests.dags.session_dags import FAIL_FAST_SIBLINGS, IMAGE
from tests.helpers import lite_sessions_named, wait_for

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")

WHEN = pendulum.datetime(2026, 4, 1, tz="UTC")
DAG_ID = "op_fail_fast_retry"


def manual_run_id(when: pendulum.DateTime) -> str:
    """The run id ``dag.test(logical_date=when, run_after=when)`` gives its DAG run (Airflow's own rule)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    return DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=when, run_after=when)


def test_retried_failure_keeps_siblings_and_final_failure_destroys_them(lite, hook, capfd) -> None:  # type: ignore[no-untyped-def]
    run_id = manual_run_id(WHEN)
    names = {key: session_name(DAG_ID, run_id, *key) for key in FAIL_FAST_SIBLINGS}
    for name in names.values():
        hook.create_session(SessionRequest(image=IMAGE, command="sleep 300").body(name))
    for name in names.values():
        wait_for(lambda name=name: [s for s in lite_sessions_named(lite, name) if s["status"] == "RUNNING"])

    dag_run = load_test_dag(DAG_ID).test(logical_date=WHEN, run_after=WHEN)

    tis = {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}
    assert tis[("breaks", -1)].state == "failed"
    assert tis[("breaks", -1)].try_number == 2  # it was retried once
    text = "".join(capfd.readouterr())
    for task_id, map_index in FAIL_FAST_SIBLINGS:  # the failure that Airflow retried destroyed nothing
        assert f"at retry: {task_id}[{map_index}] ['RUNNING']" in text
    assert len(lite_sessions_named(lite, session_name(DAG_ID, run_id, "breaks"))) == 2
    for key, name in names.items():  # the final failure destroyed all of them, every map index
        (session,) = lite_sessions_named(lite, name)
        assert session["status"] in {"TERMINATED", "CANCELLED"}, key
        assert session["status_info"] == "force-terminated", key  # destroyed forced
    assert {key: ti.state for key, ti in tis.items() if key[0] != "breaks"} == {
        key: "upstream_failed" for key in FAIL_FAST_SIBLINGS
    }
