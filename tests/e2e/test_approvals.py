"""``airflow.approvals`` in the deployment: a person answers through the REST API or the web UI, or nobody does.

The ``approval`` pipeline: evaluate (writes a result.json) -> approve-promotion -> promote -> announce, and
archive after evaluate. Approved, promote and announce run; rejected, they are skipped and the run succeeds;
archive runs either way. ``approval-timeout``'s approval waits 2 s, then takes its default answer, reject.
Listed in a run's skip_tasks, the approval is skipped and promote runs. The runs start together (module
fixture) and wait for their answers side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.airflow_api import AirflowApi, base_url, sign_in
from tests.helpers import wait_for

DAG_ID = "approval"
TIMEOUT_DAG = "approval-timeout"
APPROVAL = "approve-promotion"


def hitl_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{APPROVAL}/-1/hitlDetails"


def states(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str]:
    answer = api.get(f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")
    return {ti["task_id"]: ti["state"] for ti in answer["task_instances"]}


def waiting_request(api: AirflowApi, deployment: Any, run_id: str) -> dict[str, Any]:
    """The approval's request once the task waits for an answer and the scheduler has seen the process that
    asked end.

    Airflow 3.3.2 fails an approval answered before its scheduler has taken in the end of that process: the
    resumed task is running by then, and the scheduler reads the process's end as the end of a task whose state
    was changed externally (the running case of apache/airflow#72716, which deferred tasks share). A person
    answers after that; a test has to wait for it.
    """
    parked = f"task_id={APPROVAL}, run_id={run_id}, "

    def asked() -> dict[str, Any] | None:
        if api.task_instance(DAG_ID, run_id, APPROVAL)["state"] != "awaiting_input":
            return None
        log = deployment.log_path("scheduler").read_text(errors="replace")
        if not any(parked in line and "state=awaiting_input" in line for line in log.splitlines()):
            return None
        return dict(api.get(hitl_path(DAG_ID, run_id)))

    return dict(wait_for(asked, timeout=240, interval=2))


@pytest.fixture(scope="module")
def runs(airflow_deployment: Any, lite: Any) -> dict[str, str]:
    """Runs started at once: answered Approve and Reject through the REST API, one in the UI, one not answered,
    and one whose skip_tasks lists the approval."""
    api = AirflowApi(airflow_deployment)
    for dag_id in (DAG_ID, TIMEOUT_DAG):
        api.wait_parsed(dag_id)
        api.unpause(dag_id)
    started = {name: api.trigger(DAG_ID) for name in ("approve", "reject", "ui")}
    started["timeout"] = api.trigger(TIMEOUT_DAG)
    started["skipped"] = api.trigger(TIMEOUT_DAG, conf={"skip_tasks": [APPROVAL]})
    return started


def test_answers_through_the_rest_api(airflow_deployment: Any, runs: dict[str, str]) -> None:
    api = AirflowApi(airflow_deployment)
    request = waiting_request(api, airflow_deployment, runs["approve"])
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert request["subject"] == "Run promote of approval?"
    body = request["body"]
    # the evaluation summary: evaluate's result.json, the run's usage so far, the FastTrack view of the run
    assert "| semscore | 0.71 |" in body and "| samples | 120 |" in body
    assert "&lt;b&gt;bold&lt;/b&gt; \\[x\\]\\(javascript:alert\\(1\\)\\)" in body  # text, not markup
    assert "**Usage so far:** " in body and "\n| evaluate | " in body  # the totals and a row per session
    run_view = f"/dags/{DAG_ID}/runs/{quote(runs['approve'], safe='')}/plugin/fasttrack"
    assert f"[FastTrack view of this run]({run_view})" in body

    for name, option in (("approve", "Approve"), ("reject", "Reject")):
        if name == "reject":
            waiting_request(api, airflow_deployment, runs[name])
        answer = api.http.patch(hitl_path(DAG_ID, runs[name]), json={"chosen_options": [option]})
        assert answer.status_code == 200, answer.text
    # one answer per request
    again = api.http.patch(hitl_path(DAG_ID, runs["approve"]), json={"chosen_options": ["Reject"]})
    assert again.status_code == 409

    assert api.wait_run(DAG_ID, runs["approve"], timeout=240)["state"] == "success"
    assert states(api, DAG_ID, runs["approve"]) == {
        "evaluate": "success",
        "archive": "success",
        APPROVAL: "success",
        "promote": "success",
        "announce": "success",
    }
    assert api.wait_run(DAG_ID, runs["reject"], timeout=240)["state"] == "success"
    assert states(api, DAG_ID, runs["reject"]) == {
        "evaluate": "success",
        "archive": "success",
        APPROVAL: "success",
        "promote": "skipped",
        "announce": "skipped",  # not only the direct downstream: pipeline tasks run after a skipped upstream
    }


def test_nobody_answers_in_time_and_the_default_rejects(
    airflow_deployment: Any, runs: dict[str, str]
) -> None:
    api = AirflowApi(airflow_deployment)
    assert api.wait_run(TIMEOUT_DAG, runs["timeout"], timeout=240)["state"] == "success"
    assert states(api, TIMEOUT_DAG, runs["timeout"]) == {
        "evaluate": "success",
        APPROVAL: "success",
        "promote": "skipped",
    }
    detail = api.get(
        f"/dags/{TIMEOUT_DAG}/dagRuns/{quote(runs['timeout'], safe='')}/taskInstances/{APPROVAL}/-1/hitlDetails"
    )
    assert detail["chosen_options"] == ["Reject"] and detail["responded_by_user"] is None


def test_an_approval_listed_in_skip_tasks_lets_the_promotion_run_unasked(
    airflow_deployment: Any, runs: dict[str, str]
) -> None:
    api = AirflowApi(airflow_deployment)
    assert api.wait_run(TIMEOUT_DAG, runs["skipped"], timeout=240)["state"] == "success"
    assert states(api, TIMEOUT_DAG, runs["skipped"]) == {
        "evaluate": "success",
        APPROVAL: "skipped",
        "promote": "success",
    }


def test_an_approval_answered_in_the_web_ui(
    airflow_deployment: Any, runs: dict[str, str], page: Any, screenshots: Path
) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    expect = playwright.expect
    api = AirflowApi(airflow_deployment)
    run_id = runs["ui"]
    waiting_request(api, airflow_deployment, run_id)
    url = base_url(airflow_deployment)
    sign_in(page, airflow_deployment)

    page.goto(f"{url}/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{APPROVAL}/required_actions")
    expect(page.get_by_text("Run promote of approval?").first).to_be_visible()
    expect(page.get_by_role("cell", name="semscore", exact=True)).to_be_visible()  # the summary, as a table
    expect(page.get_by_role("link", name="FastTrack view of this run")).to_be_visible()
    page.wait_for_timeout(500)
    page.screenshot(path=screenshots / "approval.png")
    page.get_by_role("button", name="Approve", exact=True).click()

    assert api.wait_run(DAG_ID, run_id, timeout=240)["state"] == "success"
    assert states(api, DAG_ID, run_id)["announce"] == "success"
    detail = api.get(hitl_path(DAG_ID, run_id))
    assert (
        detail["chosen_options"] == ["Approve"]
        and detail["responded_by_user"]["name"] == airflow_deployment.username
    )
