"""The FastTrack view, mounted by Airflow's own api-server app from the plugin's entry point, over a pipeline run
on backendai-lite (dag.test()) whose session wrote a report, a plot and hostile files."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest

from airflow_provider_fasttrack.artifacts import ARTIFACTS_XCOM_KEY
from airflow_provider_fasttrack.usage import USAGE_XCOM_KEY, SessionUsage, session_usage_from_xcom
from tests.conftest import load_test_dag
from tests.helpers import connection_env
from tests.ui.auth_manager import DENIED

DAG_ID = "run-view"
TASK = "evaluate"
#: the session task after it
AFTER = "summarize"
AUTH_MANAGER = "tests.ui.auth_manager.DenyingAuthManager"


@pytest.fixture(scope="module")
def view(lite, airflow_db) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The api-server app (with the plugins it finds), a finished run of ``run-view`` and tokens of three users."""
    from airflow.api_fastapi.app import create_app, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(lite))
        patch.setenv("AIRFLOW__CORE__AUTH_MANAGER", AUTH_MANAGER)
        patch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"viewer:viewer,{DENIED}:admin")
        dag_run = load_test_dag(DAG_ID).test()
        assert dag_run.state == "success", {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
        purge_cached_app()
        app = create_app()
        from airflow.api_fastapi.app import get_auth_manager

        manager = get_auth_manager()
        tokens = {
            name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
            for name, role in (("viewer", "viewer"), (DENIED, "admin"))
        }
        with TestClient(app) as client:
            yield {"client": client, "run": dag_run, "tokens": tokens}
        purge_cached_app()


def page_url(run_id: str) -> str:
    return f"/fasttrack/dags/{DAG_ID}/runs/{quote(run_id, safe='')}"


def get(view: dict[str, Any], url: str, user: str | None = "viewer") -> Any:
    client = view["client"]
    client.cookies.clear()
    if user is not None:
        client.cookies.set("_token", view["tokens"][user])  # as the UI's iframe sends it
    return client.get(url)


class Elements(HTMLParser):
    """The start tags of a page, with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.tags


def record_usage(dag_run: Any) -> dict[str, SessionUsage]:
    """The session tasks' usage records with set times, as the session operator pushes them when a session ends:
    ``evaluate`` 2 s queued, 3 s preparing, 60 s running; 5 s later ``summarize`` (after it in the DAG) 1 s, 1 s,
    28 s."""
    from airflow.models.xcom import XComModel

    created = dag_run.get_task_instance(TASK).start_date
    records = {}
    for task_id, offset, queued, preparing, running, slots in (
        (TASK, 0, 2, 3, 60, {"cpu": 1, "mem": 268435456, "cuda.shares": 0.5}),
        (AFTER, 70, 1, 1, 28, {"cpu": 1, "mem": 268435456}),
    ):
        ti = dag_run.get_task_instance(task_id)
        start = created + dt.timedelta(seconds=offset)
        records[task_id] = usage = SessionUsage(
            task_id=task_id,
            session_id=ti.xcom_pull(task_ids=task_id, key="session_id"),
            session_name=ti.xcom_pull(task_ids=task_id, key="session_name"),
            status="TERMINATED",
            result="SUCCESS",
            created_at=start,
            scheduled_at=start + dt.timedelta(seconds=queued),
            started_at=start + dt.timedelta(seconds=queued + preparing),
            ended_at=start + dt.timedelta(seconds=queued + preparing + running),
            queued_seconds=queued,
            preparing_seconds=preparing,
            running_seconds=running,
            occupied_slots=slots,
            gpu_hours=slots.get("cuda.shares", 0) * running / 3600,
            cpu_core_hours=running / 3600,
        )
        XComModel.set(
            USAGE_XCOM_KEY,
            usage.model_dump(mode="json"),
            dag_id=DAG_ID,
            task_id=task_id,
            run_id=dag_run.run_id,
        )
    return records


def test_the_plugin_is_loaded_from_the_entry_point() -> None:
    from airflow import plugins_manager

    plugins = {plugin.name: plugin for plugin in plugins_manager._get_plugins()[0]}
    assert "fasttrack" in plugins, "the airflow.plugins entry point is not installed (pip install -e .)"
    views = plugins["fasttrack"].external_views
    assert views == [
        {
            "name": "FastTrack",
            "href": "/fasttrack/dags/{DAG_ID}/runs/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "fasttrack",
        }
    ]


def test_a_session_task_pushes_where_its_outputs_are(view: dict[str, Any]) -> None:
    from airflow_provider_fasttrack.naming import pipeline_job_id

    dag_run = view["run"]
    pushed = dag_run.get_task_instance(TASK).xcom_pull(task_ids=TASK, key=ARTIFACTS_XCOM_KEY)
    job = pipeline_job_id(DAG_ID, dag_run.run_id)
    assert pushed == {
        "conn_id": "backendai_default",
        "vfolder": f"fasttrack-{DAG_ID}",
        "folder": f"{job}/{TASK}",
    }


def test_each_session_task_pushes_its_usage(view: dict[str, Any]) -> None:
    dag_run = view["run"]
    for task_id in (TASK, AFTER):
        ti = dag_run.get_task_instance(task_id)
        usage = session_usage_from_xcom(ti.xcom_pull(task_ids=task_id, key=USAGE_XCOM_KEY), task_id=task_id)
        assert (usage.task_id, usage.session_id) == (
            task_id,
            ti.xcom_pull(task_ids=task_id, key="session_id"),
        )
        assert usage.occupied_slots["cpu"] == 1 and usage.ended_at is not None


def test_the_run_page_shows_usage_timeline_report_and_plot(view: dict[str, Any]) -> None:
    dag_run = view["run"]
    usage = record_usage(dag_run)[TASK]
    answer = get(view, page_url(dag_run.run_id))
    assert answer.status_code == 200, answer.text
    html = answer.text
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # no script source at all
    # the usage table: the task, its phases and its resource-hours, and the totals
    assert re.search(rf"<td>{TASK}</td>\s*<td>TERMINATED \(SUCCESS\)</td>", html), html
    assert "cpu=1 mem=256.0MiB cuda.shares=0.5" in html
    assert f"{usage.gpu_hours:.3f}" in html and "1m00s" in html
    assert "wall 1m40s" in html
    # the critical path follows the DAG: summarize runs after evaluate, 65 s + 30 s of sessions
    assert re.search(rf"Critical path: {TASK} → {AFTER} \(1m35s\)", html), html
    # the timeline: one bar per phase and session, the running bars 60 and 28 of the run's 100 s
    rects = [attrs for tag, attrs in elements(html) if tag == "rect"]
    assert {attrs["class"] for attrs in rects} == {"queued", "preparing", "running"} and len(rects) == 6
    running = [float(attrs["width"] or 0) for attrs in rects if attrs["class"] == "running"]
    assert running == pytest.approx([800 * 60 / 100, 800 * 28 / 100], abs=0.1)
    # the report: Markdown, a table, the plot through the image endpoint; raw HTML only as text
    assert "<h1>Evaluation report</h1>" in html and "<td>semscore</td>" in html
    tags = elements(html)
    assert not [t for t in tags if t[0] in ("script", "iframe", "object", "embed", "style")]
    assert not [t for t in tags if any(name.startswith("on") for name in t[1])]
    assert (
        "&lt;script&gt;alert('report')&lt;/script&gt;" in html
        and "&lt;img src=x onerror=alert(3)&gt;" in html
    )
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    plot = f"{page_url(dag_run.run_id)}/tasks/{TASK}/images/scores.png"
    assert plot in images
    # the SVG named .png is offered by name (its content is checked when it is asked for); nothing else is an image
    assert set(images) <= {plot, f"{page_url(dag_run.run_id)}/tasks/{TASK}/images/disguised.png"}
    links = [attrs.get("href") for tag, attrs in tags if tag == "a"]
    assert not [link for link in links if link and link.lower().startswith("javascript")]
    assert "https://docs.backend.ai/" in links
    assert f"{page_url(dag_run.run_id)}/tasks/{TASK}/files/metrics.csv" in links
    # the listing: plain files only, no symlink, no folder
    assert "passwd" not in html and "inner.txt" not in html and ">nested<" not in html


def test_images_are_sent_only_as_png_or_jpeg(view: dict[str, Any]) -> None:
    base = f"{page_url(view['run'].run_id)}/tasks/{TASK}/images"
    plot = get(view, f"{base}/scores.png")
    assert plot.status_code == 200
    assert plot.headers["content-type"] == "image/png" and plot.content.startswith(b"\x89PNG")
    assert plot.headers["x-content-type-options"] == "nosniff"
    assert get(view, f"{base}/disguised.png").status_code == 415  # an SVG, whatever its name says
    assert get(view, f"{base}/vector.svg").status_code == 415
    for name in ("passwd", "nested", "..%2F..%2Flatest%2Fevaluate.json", "%2Fetc%2Fpasswd", "missing.png"):
        assert get(view, f"{base}/{name}").status_code == 404, name


def test_other_files_are_downloads(view: dict[str, Any]) -> None:
    base = f"{page_url(view['run'].run_id)}/tasks/{TASK}/files"
    csv = get(view, f"{base}/metrics.csv")
    assert csv.status_code == 200 and csv.content == b"metric,value\nsemscore,0.71\n"
    assert csv.headers["content-type"] == "application/octet-stream"
    assert csv.headers["content-disposition"] == "attachment; filename*=UTF-8''metrics.csv"
    assert csv.headers["x-content-type-options"] == "nosniff"
    svg = get(view, f"{base}/vector.svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "application/octet-stream"
    for name in ("passwd", "nested", "..", "..%2F..%2Flatest%2Fevaluate.json", "nested%2Finner.txt"):
        assert get(view, f"{base}/{name}").status_code == 404, name


def test_every_endpoint_needs_read_access_to_the_runs(view: dict[str, Any]) -> None:
    page = page_url(view["run"].run_id)
    for url in (page, f"{page}/tasks/{TASK}/images/scores.png", f"{page}/tasks/{TASK}/files/metrics.csv"):
        anonymous = get(view, url, user=None)
        assert anonymous.status_code == 401, url
        denied = get(view, url, user=DENIED)
        assert denied.status_code == 403, url
        assert "Evaluation" not in denied.text and b"PNG" not in denied.content
        assert get(view, url).status_code == 200, url


def test_an_unknown_run_is_not_found(view: dict[str, Any]) -> None:
    assert get(view, page_url("no-such-run")).status_code == 404


def test_an_unreadable_record_is_named_and_left_out(view: dict[str, Any], capsys) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.xcom import XComModel

    from airflow_provider_fasttrack.cli import main as fasttrack

    dag_run = view["run"]
    record_usage(dag_run)
    XComModel.set(USAGE_XCOM_KEY, {"task_id": AFTER}, dag_id=DAG_ID, task_id=AFTER, run_id=dag_run.run_id)
    try:
        html = get(view, page_url(dag_run.run_id)).text
        assert f"Not shown (unreadable record): {AFTER}[-1]: {USAGE_XCOM_KEY}" in html
        assert re.search(rf"<td>{TASK}</td>\s*<td>TERMINATED", html) and f"<td>{AFTER}</td>" not in html
        assert "Total, 1 session<" in html and re.search(rf"Critical path: {TASK} \(1m05s\)", html), html
        # the command fails with one line naming the task
        assert fasttrack(["usage", "--dag-id", DAG_ID, "--run-id", dag_run.run_id]) == 1
        error = capsys.readouterr().err
        assert error.startswith(
            f"fasttrack: task {AFTER}: the {USAGE_XCOM_KEY} XCom is not a session's usage"
        )
        assert error.count("\n") == 1
    finally:
        record_usage(dag_run)
