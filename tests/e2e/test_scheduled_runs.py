"""A scheduled pipeline under the deployment's own scheduler: ``max_runs: 2`` gives exactly two runs, then none."""

from __future__ import annotations

from tests.e2e.airflow_api import AirflowApi
from tests.helpers import wait_for

DAG_ID = "scheduled-twice"  # tests/dags/pipelines/scheduled-twice.yaml: @daily from a past date, catch-up


def test_max_runs_two_runs_twice_then_stops(airflow_deployment) -> None:  # type: ignore[no-untyped-def]
    api = AirflowApi(airflow_deployment)
    api.wait_parsed(DAG_ID)
    assert api.get(f"/dags/{DAG_ID}/details")["end_date"].startswith("2026-01-02")  # max_runs: the end date
    api.unpause(DAG_ID)  # nothing is triggered: the scheduler creates the runs

    def two_ended() -> list[dict] | None:  # type: ignore[type-arg]
        runs = api.runs(DAG_ID)
        return runs if len(runs) >= 2 and all(r["state"] in {"success", "failed"} for r in runs) else None

    runs = wait_for(two_ended, timeout=300, interval=3)
    logs = [
        [
            f"{e.get('level')} {e.get('event')}"[:300]
            for e in api.task_log(DAG_ID, r["dag_run_id"], "nightly-step")
        ]
        for r in runs
        if r["state"] != "success"
    ]
    assert [(r["run_type"], r["state"]) for r in runs] == [("scheduled", "success")] * 2, logs
    assert [r["logical_date"][:10] for r in runs] == ["2026-01-01", "2026-01-02"]
    # the scheduler has nothing more to create: no next run, and still two runs
    dag = api.get(f"/dags/{DAG_ID}")
    assert dag["next_dagrun_run_after"] is None, dag
    assert len(api.runs(DAG_ID)) == 2
