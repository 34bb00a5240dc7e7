"""Pipeline assets in the deployment: a promoted model starts its consumer, a model held back starts nothing.

``tests/dags/pipelines/asset-producer.yaml`` records ``asset-producer.model`` when merge-model runs (behind a quality
gate on evaluate's score); ``asset-consumer.yaml`` is scheduled on it and prints the path its event names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_fasttrack.naming import pipeline_job_id
from tests.e2e.airflow_api import AirflowApi, base_url, events, sign_in
from tests.helpers import wait_for

PRODUCER = "asset-producer"
CONSUMER = "asset-consumer"
MODEL = f"{PRODUCER}.model"


def model_events(api: AirflowApi) -> list[dict[str, Any]]:
    answer = api.get(
        "/assets/events", source_dag_id=PRODUCER, source_task_id="merge-model", order_by="timestamp"
    )
    return list(answer["asset_events"])


def test_a_promoted_model_starts_its_consumer_and_a_held_back_one_nothing(airflow_deployment, lite) -> None:  # type: ignore[no-untyped-def]
    api = AirflowApi(airflow_deployment)
    for dag_id in (PRODUCER, CONSUMER):
        api.wait_parsed(dag_id)
        api.unpause(dag_id)

    # the quality gate holds merge-model back: no model event
    held = api.trigger(PRODUCER, {"promotion_threshold": 0.9})
    assert api.wait_run(PRODUCER, held, timeout=240)["state"] == "success"
    assert api.task_instance(PRODUCER, held, "merge-model")["state"] == "skipped"
    assert model_events(api) == []

    promoted = api.trigger(PRODUCER)
    assert api.wait_run(PRODUCER, promoted, timeout=240)["state"] == "success"
    job = pipeline_job_id(PRODUCER, promoted)
    [event] = model_events(api)
    assert (event["name"], event["uri"], event["group"]) == (
        MODEL,
        "backendai://asset-producer/asset-producer/model",
        "model",
    )
    session_id = api.get(
        f"/dags/{PRODUCER}/dagRuns/{promoted}/taskInstances/merge-model/xcomEntries/session_id",
        deserialize=True,
    )["value"]
    assert event["source_run_id"] == promoted
    assert event["extra"] == {
        "kind": "model",
        "vfolder": "asset-producer",
        "path": f"served/{job}",
        "job_id": job,
        "session_id": session_id,
        "metrics": {"model_dir": f"/pipeline/vfroot/served/{job}", "parameters": 135},
    }

    # the scheduler starts the consumer on that event, and only on it
    [consumer] = wait_for(lambda: api.runs(CONSUMER) or None, timeout=120, interval=2)
    assert consumer["run_type"] == "asset_triggered"
    state = api.wait_run(CONSUMER, consumer["dag_run_id"], timeout=240)["state"]
    log = "\n".join(events(api.task_log(CONSUMER, consumer["dag_run_id"], "read-model")))
    assert state == "success", log
    assert f"model event: asset-producer/served/{job}" in log
    assert f"weights of {job}" in log  # read from the mounted vfolder at that path
    assert len(api.runs(CONSUMER)) == 1


def test_the_assets_page_lists_the_pipeline_assets(airflow_deployment, page, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    playwright = pytest.importorskip("playwright.sync_api")
    expect = playwright.expect
    api = AirflowApi(airflow_deployment)
    api.wait_parsed(PRODUCER)
    url = base_url(airflow_deployment)
    sign_in(page, airflow_deployment)
    page.goto(f"{url}/assets")
    for name in (MODEL, f"{PRODUCER}.dataset"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    page.wait_for_timeout(1000)  # let the layout settle for the picture
    page.screenshot(path=screenshots / "assets.png")
