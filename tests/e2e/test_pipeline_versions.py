"""Pipeline versions in a real deployment: DAGs come from a git DAG bundle, and a run keeps the version it began with.

A run of ``pinned-version`` is held at its first task while a commit changes what its second task echoes and
what its Slack message says; once the DAG processor has parsed the new commit the run goes on, and its second
task and its message (a DAG-level callback, run by the DAG processor) still carry the old text. The next run
uses the new commit. Meanwhile, after the first callback, the DAG processor still parses the DAG file at its
interval.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from git import Actor, Repo

from tests.e2e.airflow_api import AirflowApi, events
from tests.helpers import SECRETS, wait_for
from tests.slack_stub import WEBHOOK_PATH, slack_webhook_stub

DAG_ID = "pinned-version"
PIPELINE = Path("pipelines") / "pinned-version.yaml"
GATE = "pinned-version-gate"
SLACK_CONN = "slack_pinned_version"
OLD_TEXT, NEW_TEXT = "pipeline version one", "pipeline version two"
AUTHOR = Actor("FastTrack e2e", "e2e@fasttrack.invalid")
#: [dag_processor] min_file_process_interval (Airflow's default)
PARSE_INTERVAL = 30


def latest_bundle_version(api: AirflowApi) -> str | None:
    """The bundle version (git commit) of the DAG's newest parsed version."""
    versions = api.get(f"/dags/{DAG_ID}/dagVersions", order_by="-version_number", limit=1)["dag_versions"]
    return str(versions[0]["bundle_version"]) if versions else None


def report_lines(api: AirflowApi, run_id: str) -> list[str]:
    """The lines of the second task's log that carry what its session echoed."""
    return [line for line in events(api.task_log(DAG_ID, run_id, "report")) if "pipeline version" in line]


def holding(api: AirflowApi, run_id: str) -> bool:
    return api.task_instance(DAG_ID, run_id, "hold")["state"] in {"running", "deferred"}


def parses_since(deployment: Any, dag_file: str, since: datetime) -> int:
    """How often the DAG processor has parsed the bundle's current ``dag_file`` since ``since`` (callbacks, which
    parse the file of their run's version, not counted)."""
    count = 0
    logs = (deployment.home / "logs" / "dag_processor").glob(f"*/*/{dag_file}.log")
    for log in {path.resolve() for path in logs}:  # "latest" links to the newest day's folder
        for line in log.read_text(errors="replace").splitlines():
            event = json.loads(line) if line.startswith("{") else {}
            text = str(event.get("event", ""))
            if text.startswith("Filling up the DagBag from") and "/versions/" not in text:
                count += datetime.fromisoformat(event["timestamp"]) >= since
    return count


def test_a_run_keeps_the_pipeline_version_it_started_with(airflow_deployment, hook) -> None:  # type: ignore[no-untyped-def]
    SECRETS.add(WEBHOOK_PATH.rsplit("/", 1)[-1])
    api = AirflowApi(airflow_deployment)
    with slack_webhook_stub() as (url, received):
        connection = {"connection_id": SLACK_CONN, "conn_type": "slackwebhook", "password": url}
        api.http.post("/connections", json=connection).raise_for_status()
        try:
            check_versions(airflow_deployment, api, hook, received)
        finally:
            api.http.delete(f"/connections/{SLACK_CONN}").raise_for_status()


def check_versions(deployment: Any, api: AirflowApi, hook: Any, received: list[dict[str, Any]]) -> None:
    hook.ensure_vfolder("gates")
    repository = Repo(deployment.repository)
    first = repository.head.commit.hexsha
    api.wait_parsed(DAG_ID)
    api.unpause(DAG_ID)
    old_run = api.trigger(DAG_ID)
    wait_for(lambda: holding(api, old_run), timeout=120, interval=1)

    pipeline = Path(repository.working_dir) / PIPELINE
    pipeline.write_text(pipeline.read_text().replace(OLD_TEXT, NEW_TEXT))
    repository.index.add([str(PIPELINE)])
    second = repository.index.commit("pinned-version: the report echoes the second version", author=AUTHOR,
                                     committer=AUTHOR).hexsha  # fmt: skip
    # the fasttrack CLI looks a DAG id up in the repository's working tree ([core] dags_folder)
    exported = subprocess.run(
        [sys.executable, "-m", "airflow_provider_fasttrack.cli", "export", DAG_ID],
        env=deployment.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert exported.returncode == 0 and f"echo {NEW_TEXT}" in exported.stdout, exported.stderr[-2000:]
    # the bundle fetches the commit and the DAG processor parses it while the run still waits at its gate
    wait_for(lambda: latest_bundle_version(api) == second, timeout=90, interval=2)
    assert holding(api, old_run), "the run went on before the new version was parsed"

    hook.upload_file("gates", GATE, b"")
    finished: dict[str, Any] = api.wait_run(DAG_ID, old_run, timeout=120)
    assert finished["state"] == "success"
    assert finished["bundle_version"] == first
    old_lines = report_lines(api, old_run)
    assert any(line.endswith(OLD_TEXT) for line in old_lines), old_lines
    assert not any(NEW_TEXT in line for line in old_lines), old_lines
    wait_for(lambda: received, timeout=90)
    assert received == [{"text": f"{DAG_ID}: {OLD_TEXT}"}]
    callback_done = datetime.now(UTC)

    new_run = api.trigger(DAG_ID)  # the gate is open: it runs straight through
    latest = api.wait_run(DAG_ID, new_run, timeout=120)
    assert (latest["state"], latest["bundle_version"]) == ("success", second)
    new_lines = report_lines(api, new_run)
    assert any(line.endswith(NEW_TEXT) for line in new_lines), new_lines
    wait_for(lambda: len(received) == 2, timeout=90)
    assert received[1] == {"text": f"{DAG_ID}: {NEW_TEXT}"}

    # after a callback the DAG processor still parses the DAG file at its interval, not on each of its loops
    elapsed = (datetime.now(UTC) - callback_done).total_seconds()
    assert parses_since(deployment, "pipeline_dags.py", callback_done) <= elapsed // PARSE_INTERVAL + 1
