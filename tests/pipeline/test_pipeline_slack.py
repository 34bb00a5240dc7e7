"""Slack notifications post to a local server that speaks the incoming-webhook protocol, with XCom metrics."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_fasttrack.pipeline.notify import slack_notifiers
from airflow_provider_fasttrack.pipeline.spec import SlackNotification

WEBHOOK_PATH = "/services/T0001/B0001/secret-token"


class SlackWebhookStub(BaseHTTPRequestHandler):
    """Slack incoming webhooks: POST JSON with ``text``; answers 200 ``ok``, or 400/404 like Slack does."""

    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != WEBHOOK_PATH:
            self._answer(404, b"no_service")
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._answer(400, b"invalid_payload")
            return
        if not payload.get("text") and not payload.get("blocks"):
            self._answer(400, b"no_text")
            return
        type(self).received.append(payload)
        self._answer(200, b"ok")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def slack_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    """A running stub and an Airflow connection ``slack_stub`` (type slackwebhook) pointing at it."""
    SlackWebhookStub.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlackWebhookStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}{WEBHOOK_PATH}"
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_STUB", json.dumps({"conn_type": "slackwebhook", "password": url}))
    try:
        yield SlackWebhookStub.received
    finally:
        server.shutdown()
        server.server_close()


def test_notifiers_follow_the_configuration() -> None:
    assert slack_notifiers(None) == (None, None)
    on_success, on_failure = slack_notifiers(SlackNotification(conn_id="c", on_failure=True))
    assert on_success is None
    assert on_failure.slack_webhook_conn_id == "c"
    assert "{{ ti.task_id }}" in on_failure.text


DAG_FILE = """
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from airflow_provider_fasttrack.pipeline.notify import slack_notifiers
from airflow_provider_fasttrack.pipeline.spec import SlackNotification


def evaluate():
    return {"semscore": 0.8731, "truthfulness": 0.62}


def crash():
    raise RuntimeError("evaluation crashed")


on_success, on_failure = slack_notifiers(SlackNotification(
    conn_id="slack_stub",
    on_success="{{ dag.dag_id }} done: semscore={{ ti.xcom_pull(task_ids='evaluate')['semscore'] }}",
    on_failure=True,
))

with DAG("slack_success_check", schedule=None) as success_dag:
    PythonOperator(task_id="evaluate", python_callable=evaluate,
                   on_success_callback=on_success, on_failure_callback=on_failure)

with DAG("slack_failure_check", schedule=None) as failure_dag:
    PythonOperator(task_id="evaluate", python_callable=crash,
                   on_success_callback=on_success, on_failure_callback=on_failure)
"""


@pytest.fixture
def notify_dags(tmp_path, monkeypatch: pytest.MonkeyPatch, airflow_db: None):
    """A DAG bundle holding two small DAGs that use the notifiers the factory builds."""
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "notify_dags.py").write_text(DAG_FILE)
    bundles = [
        {
            "name": "notify-check",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(tmp_path), "refresh_interval": 0},
        }
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    return bag.dags


def test_success_message_carries_metrics_from_xcom(slack_stub: list[dict], notify_dags) -> None:
    run = notify_dags["slack_success_check"].test()
    assert run.state == "success"
    assert slack_stub == [{"text": "slack_success_check done: semscore=0.8731"}]


def test_failure_message_names_the_task(slack_stub: list[dict], notify_dags) -> None:
    run = notify_dags["slack_failure_check"].test()
    assert run.state == "failed"
    assert len(slack_stub) == 1
    assert slack_stub[0]["text"].startswith(":x: Pipeline slack_failure_check failed at task evaluate (run ")


NOTIFY_PIPELINE = """
name: notify-e2e
tasks:
- name: evaluate
  command: |
    python3 -c 'import json; open("/pipeline/outputs/result.json", "w").write(json.dumps({"semscore": 0.8731}))'
  environment: {image: cr.backend.ai/stable/python:3.11-ubuntu22.04}
  resources: {cpu: 1, mem: 256m}
airflow:
  pool_policy: none
  notifications:
    slack:
      conn_id: slack_stub
      on_success: "{{ dag.dag_id }}: semscore {{ ti.xcom_pull(task_ids='evaluate')['semscore'] }}"
"""


@pytest.mark.usefixtures("airflow_db", "backendai_conn")
def test_pipeline_on_backendai_lite_posts_its_result(
    slack_stub: list[dict], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A factory-built pipeline runs a session whose result.json becomes XCom and then the Slack text."""
    import shutil
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "notify.yaml").write_text(NOTIFY_PIPELINE)
    shutil.copy(root / "dags" / "fasttrack_pipelines.py", tmp_path)
    bundles = [
        {
            "name": "notify-e2e",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(tmp_path), "refresh_interval": 0},
        }
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    monkeypatch.setenv("FASTTRACK_PIPELINES_DIR", str(tmp_path / "pipelines"))
    bag = DagBag(dag_folder=str(tmp_path))
    assert bag.import_errors == {}
    run = bag.dags["notify-e2e"].test()
    assert run.state == "success"
    assert slack_stub == [{"text": "notify-e2e: semscore 0.8731"}]
