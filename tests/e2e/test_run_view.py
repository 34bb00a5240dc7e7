"""The FastTrack tab of a DAG run in a real browser (Debian's Chromium): the usage table, the timeline, the
rendered report with its plot, and a report's ``<script>`` that does not run.

The ``run-view`` pipeline's session writes ``report.md`` (with a ``<script>``, an ``<img onerror>`` and a
``javascript:`` link), a PNG plot, an SVG named ``.png`` and other hostile files into its output folder.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_fasttrack.usage import USAGE_XCOM_KEY, SessionUsage
from tests.e2e.airflow_api import AirflowApi, base_url, credentials

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is a test requirement (setup.cfg)")

DAG_ID = "run-view"
TASK = "evaluate"


def usage_record(api: AirflowApi, run_id: str) -> None:
    """The session task's usage record, unless the session operator has pushed it already: the task instance's
    own times, its session and its slots (cpu 1, mem 256m)."""
    entries = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK}/xcomEntries"
    if api.http.get(f"{entries}/{USAGE_XCOM_KEY}").status_code == 200:
        return
    ti = api.task_instance(DAG_ID, run_id, TASK)
    started, ended = (dt.datetime.fromisoformat(ti[key]) for key in ("start_date", "end_date"))
    session_id = api.get(f"{entries}/session_id", deserialize=True)["value"]
    phases = [(ended - started).total_seconds() * share for share in (0.1, 0.1, 0.8)]
    usage = SessionUsage(
        task_id=TASK,
        session_id=session_id,
        session_name=api.get(f"{entries}/session_name", deserialize=True)["value"],
        status="TERMINATED",
        result="SUCCESS",
        created_at=started,
        scheduled_at=started + (ended - started) / 10,
        started_at=started + (ended - started) / 5,
        ended_at=ended,
        queued_seconds=phases[0],
        preparing_seconds=phases[1],
        running_seconds=phases[2],
        occupied_slots={"cpu": 1, "mem": 256 << 20},
        cpu_core_hours=phases[2] / 3600,
    )
    body = {"key": USAGE_XCOM_KEY, "value": usage.model_dump(mode="json"), "map_index": -1}
    api.http.post(entries, json=body).raise_for_status()


def test_the_fasttrack_tab_of_a_run(airflow_deployment: Any, lite: Any, page: Any, screenshots: Path) -> None:
    url = base_url(airflow_deployment)
    expect = playwright.expect
    api = AirflowApi(airflow_deployment)
    api.wait_parsed(DAG_ID)
    api.unpause(DAG_ID)
    run_id = api.trigger(DAG_ID)
    assert api.wait_run(DAG_ID, run_id, timeout=300)["state"] == "success"
    usage_record(api, run_id)

    # no login: the view's pages and files are refused
    view = f"{url}/fasttrack/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"
    for path in ("", f"/tasks/{TASK}/images/scores.png", f"/tasks/{TASK}/files/metrics.csv"):
        assert httpx.get(view + path, timeout=30).status_code in (401, 403), path

    dialogs: list[str] = []
    console: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: console.append(message.text))
    user, password = credentials(airflow_deployment)
    page.goto(url)
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Dags", exact=True)).to_be_visible()

    # the session task's extra link opens the run's FastTrack tab
    tab = f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/plugin/fasttrack"
    assert api.links(DAG_ID, run_id, TASK)["FastTrack run"].endswith(tab)
    page.goto(url + tab)
    frame = page.frame_locator("iframe[title=FastTrack]")
    table = frame.locator("table.usage")
    expect(table.get_by_role("cell", name=TASK, exact=True)).to_be_visible()
    expect(table.get_by_text("cpu 1, mem 256 MiB")).to_be_visible()
    for phase in ("queued", "preparing", "running"):
        expect(frame.locator(f"svg.timeline rect.{phase}")).to_have_count(1)
    report = frame.locator(".report")
    expect(report.get_by_role("heading", name="Evaluation report")).to_be_visible()
    expect(report.get_by_text("<script>alert('report')</script>")).to_be_visible()  # shown as text
    plot = frame.locator("figure img[alt='scores.png']")
    expect(plot).to_be_visible()
    assert plot.evaluate("image => image.naturalWidth") == 240  # the PNG arrived and decoded
    # the SVG named .png is refused by the image endpoint: the browser shows no picture for it
    disguised = frame.locator("figure img[alt='disguised.png']")
    assert disguised.evaluate("image => image.complete && image.naturalWidth") == 0
    expect(frame.get_by_role("link", name="metrics.csv")).to_be_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=screenshots / "fasttrack-run-view.png")
    plot.scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "fasttrack-run-artifacts.png")

    # nothing of the report ran: no script element, no dialog, no console output of its scripts
    assert frame.locator("script").count() == 0
    assert dialogs == []
    assert not [text for text in console if "alert" in text or "report" in text], console
