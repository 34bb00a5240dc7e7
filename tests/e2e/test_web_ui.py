"""The web UI in a real browser (Debian's Chromium, driven by Playwright): the trade-QA DAG from login to its log.

Screenshots go to a temporary folder, or to ``$FASTTRACK_SCREENSHOTS`` (``docs/screenshots`` refreshes the
committed ones).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_fasttrack.cli import main as fasttrack
from airflow_provider_fasttrack.naming import session_name
from tests.conftest import ROOT
from tests.e2e.airflow_api import AirflowApi, base_url, sign_in
from tests.helpers import connection_env

DAG_ID = "trade-qa-finetune"
#: the offline values with the shortened training settings of tests/pipeline/test_trade_qa_pipeline.py
SHORT_OFFLINE_RUN = {
    **json.loads((ROOT / "dags" / "pipelines" / f"{DAG_ID}.offline.json").read_text()),
    "max_steps": 2,
    "eval_limit": 4,
    "max_new_tokens": 16,
    "promotion_threshold": -1,  # promotes whatever the shortened training gives
}

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is a test requirement (setup.cfg)")


@pytest.fixture(scope="module")
def trade_qa_ready(airflow_deployment: Any, lite: Any) -> None:
    """The pipeline's code and data staged in backendai-lite, and its GPU pools synced into Airflow."""
    env = {"AIRFLOW_CONN_BACKENDAI_DEFAULT": connection_env(lite)}
    old = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        staged = fasttrack(
            ["stage", "trade-qa", "--code", str(ROOT / "training"), "--data", str(ROOT / "training/samples/en"),
             "--create-model", "trade-qa-models"]
        )  # fmt: skip
        assert staged == 0
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    synced = subprocess.run(
        [str(Path(sys.executable).parent / "fasttrack"), "pools", "sync"],
        env=airflow_deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert synced.returncode == 0, synced.stderr


def dump(page: Any, screenshots: Path, name: str) -> None:
    """A screenshot and the page's HTML, for looking at a failure."""
    page.screenshot(path=screenshots / f"{name}.png")
    (screenshots / f"{name}.html").write_text(page.content())


def test_trade_qa_from_login_to_the_session_log(  # type: ignore[no-untyped-def]
    airflow_deployment, lite, trade_qa_ready, page, screenshots: Path
) -> None:
    url = base_url(airflow_deployment)
    expect = playwright.expect
    api = AirflowApi(airflow_deployment)
    api.wait_parsed(DAG_ID)
    api.unpause(DAG_ID)

    # log in through the form
    sign_in(page, airflow_deployment)
    # find the DAG in the list, through its search (the deployment holds more pipelines than a page shows)
    page.get_by_role("link", name="Dags", exact=True).click()
    page.get_by_placeholder("Search Dags").first.fill(DAG_ID)
    page.get_by_role("link", name=DAG_ID).first.click()
    expect(page).to_have_url(f"{url}/dags/{DAG_ID}")
    # its graph: every task, and an edge for every dependency
    tasks = api.get(f"/dags/{DAG_ID}/tasks")["tasks"]
    page.get_by_label("Show Graph (Press g)").click()
    graph = page.locator(".react-flow")
    for task in tasks:
        expect(graph.get_by_text(task["task_id"], exact=True).first).to_be_visible()
    # extract-qa, prepare-dataset, pretrain-domain, finetune, evaluate, promotion-gate, merge-model, serve-model,
    # smoke-query and the service's teardown
    assert len(tasks) == 10
    expect(graph.locator(".react-flow__edge")).to_have_count(
        sum(len(t["downstream_task_ids"]) for t in tasks)
    )
    page.wait_for_timeout(1000)  # let the layout settle for the picture
    page.screenshot(path=screenshots / "trade-qa-graph.png")

    # trigger a run from the trigger form, with the offline values (the run configuration as JSON)
    page.get_by_label("Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dump(page, screenshots, "trigger-form")
    dialog.get_by_text("Advanced Options").click()
    editor = dialog.locator("[data-mode-id=json]")
    editor.scroll_into_view_if_needed()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(json.dumps(SHORT_OFFLINE_RUN))
    dump(page, screenshots, "trigger-form-filled")
    trigger = dialog.get_by_role("button", name="Trigger").last
    expect(trigger).to_be_enabled()
    trigger.click()

    run_id = playwright_wait_for_run(api)
    run = api.wait_run(DAG_ID, run_id, timeout=900)
    assert run["conf"] == SHORT_OFFLINE_RUN
    assert run["state"] == "success", failure_report(api, run_id)
    page.goto(f"{url}/dags/{DAG_ID}/runs/{run_id}")
    expect(page.get_by_text("success").first).to_be_visible()
    page.get_by_label("Show Graph (Press g)").click()
    page.wait_for_timeout(1500)
    page.screenshot(path=screenshots / "trade-qa-run.png")

    # the finetune task's log carries the session's own lines
    name = session_name(DAG_ID, run_id, "finetune")
    page.goto(f"{url}/dags/{DAG_ID}/runs/{run_id}/tasks/finetune")
    expect(page.get_by_text(f"[{name}]").first).to_be_visible()
    page.screenshot(path=screenshots / "trade-qa-log.png")
    # the Backend.AI extra link points at the session's page in the web UI
    session_id = api.get(
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/finetune/xcomEntries/session_id", deserialize=True
    )["value"]
    expected = f"{lite.url}/webui/session?sessionId={session_id}"
    links = api.links(DAG_ID, run_id, "finetune")  # what the UI reads
    tab = f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/plugin/fasttrack"
    assert links["Backend.AI session"] == expected and links["FastTrack run"].endswith(tab), links
    page.goto(f"{url}/dags/{DAG_ID}/runs/{run_id}/tasks/finetune/details")  # the task's Extra Links
    link = page.get_by_role("link", name="Backend.AI session")
    expect(link).to_have_attribute("href", expected, timeout=30_000)
    page.screenshot(path=screenshots / "trade-qa-details.png")

    # the run's FastTrack tab: the evaluation's report and plots from the pipeline vfolder
    page.goto(f"{url}{tab}")
    frame = page.frame_locator("iframe[title=FastTrack]")
    expect(frame.locator(".report").first).to_be_visible()
    expect(frame.locator("figure img").first).to_be_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=screenshots / "trade-qa-fasttrack.png", full_page=True)


def failure_report(api: AirflowApi, run_id: str) -> str:
    """Each task's state, and the last log lines of those that did not succeed or skip."""
    tis = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
    lines = [f"{ti['task_id']}: {ti['state']} (try {ti['try_number']})" for ti in tis]
    for ti in tis:
        if ti["state"] not in ("success", "skipped"):
            log = api.task_log(DAG_ID, run_id, ti["task_id"], max(ti["try_number"], 1))
            lines += [f"  {entry.get('level', '')} {entry.get('event', '')}" for entry in log[-40:]]
    return "\n".join(lines)


def playwright_wait_for_run(api: AirflowApi) -> str:
    """The id of the run that the form started (the only run of the DAG)."""
    from tests.helpers import wait_for

    runs = wait_for(lambda: api.runs(DAG_ID), timeout=60, interval=1)
    assert len(runs) == 1, runs
    return str(runs[0]["dag_run_id"])
