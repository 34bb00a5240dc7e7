"""The FastTrack tab of a DAG run in a real browser (Debian's Chromium): the usage table (the usage each session
task pushed) and critical path, the timeline, the rendered report with its plot, and a report's ``<script>`` that
does not run.

The ``run-view`` pipeline's session writes ``report.md`` (with a ``<script>``, an ``<img onerror>`` and a
``javascript:`` link), a PNG plot, an SVG named ``.png`` and other hostile files into its output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_provider_fasttrack.usage import USAGE_XCOM_KEY, SessionUsage, session_usage_from_xcom
from airflow_provider_fasttrack.usage_text import format_occupied_slots, format_seconds
from tests.e2e.airflow_api import AirflowApi, base_url, sign_in

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is a test requirement (setup.cfg)")

DAG_ID = "run-view"
TASK = "evaluate"
#: the session task after it
AFTER = "summarize"


def own_usage(api: AirflowApi, run_id: str, task_id: str) -> SessionUsage:
    """The usage a session task pushed when its session ended, read through the REST API."""
    entry = api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{USAGE_XCOM_KEY}")
    return session_usage_from_xcom(entry["value"], task_id=task_id)


def test_the_fasttrack_tab_of_a_run(airflow_deployment: Any, lite: Any, page: Any, screenshots: Path) -> None:
    url = base_url(airflow_deployment)
    expect = playwright.expect
    api = AirflowApi(airflow_deployment)
    api.wait_parsed(DAG_ID)
    api.unpause(DAG_ID)
    run_id = api.trigger(DAG_ID)
    assert api.wait_run(DAG_ID, run_id, timeout=300)["state"] == "success"
    usages = {task_id: own_usage(api, run_id, task_id) for task_id in (TASK, AFTER)}

    # no login: the view's pages and files are refused
    view = f"{url}/fasttrack/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"
    for path in ("", f"/tasks/{TASK}/images/scores.png", f"/tasks/{TASK}/files/metrics.csv"):
        assert httpx.get(view + path, timeout=30).status_code in (401, 403), path

    dialogs: list[str] = []
    console: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("console", lambda message: console.append(message.text))
    sign_in(page, airflow_deployment)

    # the session task's extra link opens the run's FastTrack tab
    tab = f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/plugin/fasttrack"
    assert api.links(DAG_ID, run_id, TASK)["FastTrack run"].endswith(tab)
    page.goto(url + tab)
    frame = page.frame_locator("iframe[title=FastTrack]")
    table = frame.locator("table.usage")
    expect(table.get_by_role("cell", name=TASK, exact=True)).to_be_visible()
    # each session task's row is the usage it pushed: status, phases, slots and resource-hours
    for task_id, usage in usages.items():
        row = table.locator(f"tbody tr:has(td:text-is('{task_id}'))")
        expect(row.locator("td")).to_have_text(
            [
                task_id,
                usage.status + (f" ({usage.result})" if usage.result else ""),
                format_seconds(usage.queued_seconds),
                format_seconds(usage.preparing_seconds),
                format_seconds(usage.running_seconds),
                format_occupied_slots(usage.occupied_slots),
                f"{usage.gpu_hours:.3f}",
                f"{usage.cpu_core_hours:.3f}",
            ]
        )
    assert usages[TASK].occupied_slots == {"cpu": 1, "mem": 256 << 20}
    expect(table.locator("tfoot")).to_contain_text("Total, 2 sessions")
    expect(frame.locator("p.critical-path")).to_contain_text(f"Critical path: {TASK} → {AFTER} (")
    for phase in ("queued", "preparing", "running"):
        expect(frame.locator(f"svg.timeline rect.{phase}")).to_have_count(2)
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
