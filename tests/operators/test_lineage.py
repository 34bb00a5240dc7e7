"""OpenLineage: a pipeline run on backendai-lite reports its vfolders, resources, session and job ids through the
OpenLineage provider; without the OpenLineage packages the operators and the factory still work.

Each run is a subprocess: the OpenLineage provider decides whether it is enabled, and registers its listener, once
per process, from the transport configured when Airflow's plugins load.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import SECRETS
from tests.model_service import write_echo_model

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "tests" / "dags" / "pipelines" / "lineage.yaml"

#: runs the pipeline in argv[1] with dag.test(), its tasks given the outlets in argv[2:] (task=asset URI); prints
#: each task's state, session and service as JSON
RUN_PIPELINE = """
import json, sys
from airflow.sdk import Asset
from airflow_provider_fasttrack.pipeline.factory import dag_from_file
dag = dag_from_file(sys.argv[1])
for outlet in sys.argv[2:]:
    task_id, uri = outlet.split("=", 1)
    dag.get_task(task_id).outlets = [Asset(uri)]
run = dag.test()
tasks = {ti.task_id: ti for ti in run.get_task_instances()}
print("RESULT " + json.dumps({
    task_id: {
        "state": ti.state,
        "session_id": ti.xcom_pull(task_ids=task_id, key="session_id"),
        "service_id": ti.xcom_pull(task_ids=task_id, key="service_id"),
        "service_name": ti.xcom_pull(task_ids=task_id, key="service_name"),
    }
    for task_id, ti in tasks.items()
}))
"""

#: on PYTHONPATH as sitecustomize: the OpenLineage packages are not installed (not importable, no metadata)
NO_OPENLINEAGE = """
import importlib.metadata
import sys

import importlib_metadata

HIDDEN = ("openlineage", "airflow.providers.openlineage")


class NoOpenLineage:
    def find_spec(self, name, path=None, target=None):
        if any(name == hidden or name.startswith(hidden + ".") for hidden in HIDDEN):
            raise ImportError(f"No module named {name!r} (not installed)")
        return None


def shown(dist):
    name = (dist.name or "").lower().replace("_", "-")
    return not (name.startswith("openlineage-") or name == "apache-airflow-providers-openlineage")


def hide_distributions(module):
    discover = module.Distribution.discover
    module.Distribution.discover = staticmethod(lambda *a, **kw: filter(shown, discover(*a, **kw)))


sys.meta_path.insert(0, NoOpenLineage())
hide_distributions(importlib.metadata)
hide_distributions(importlib_metadata)
"""

#: what a Python without the OpenLineage packages answers
PROBE = """
import importlib.metadata
try:
    importlib.metadata.version("apache-airflow-providers-openlineage")
except importlib.metadata.PackageNotFoundError:
    import airflow.providers.openlineage
"""


def run_pipeline(pipeline: Path, env: dict[str, str], outlets: Sequence[str] = ()) -> dict[str, Any]:
    """dag.test() of ``pipeline`` in a fresh interpreter; each task's state, session and service."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_PIPELINE, str(pipeline), *outlets],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and results, done.stdout[-4000:] + done.stderr[-4000:]
    return dict(json.loads(results[-1].removeprefix("RESULT ")))


def task_events(path: Path, event_type: str) -> dict[str, dict[str, Any]]:
    """The events of ``event_type`` (COMPLETE, FAIL) of task runs in the file transport's output, by task id."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {
        event["job"]["name"].rsplit(".", 1)[-1]: event
        for event in events
        if event["eventType"] == event_type and "." in event["job"]["name"]
    }


def test_a_pipeline_run_reports_its_lineage(lite, hook, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hook.ensure_vfolder("lineage-data")
    write_echo_model(lite, "echo-lineage-model")
    token = f"ft-lineage-{secrets.token_hex(12)}"
    SECRETS.add(token)
    events_file = tmp_path / "events.jsonl"
    transport = {"type": "file", "log_file_path": str(events_file), "append": True}

    tasks = run_pipeline(
        PIPELINE,
        {
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "fasttrack-tests",
            "AIRFLOW_VAR_FASTTRACK_LINEAGE_TOKEN": token,
        },
        outlets=["train=file:///models/lineage/rows.txt"],
    )

    assert {task: t["state"] for task, t in tasks.items()} == {
        "prepare": "success",
        "train": "success",
        "evaluate": "failed",
        "serve": "success",
        "serve-teardown": "success",
    }
    text = events_file.read_text()
    # neither the session's environment nor the connection's secret key is reported
    assert token not in text and lite.secret_key not in text
    events = task_events(events_file, "COMPLETE")
    namespace = f"backendai://{lite.url.split('://', 1)[1]}"
    prepare, train = events["prepare"], events["train"]
    job_id = train["run"]["facets"]["fasttrack_pipeline_job"]["pipelineJobId"]
    assert prepare["run"]["facets"]["fasttrack_pipeline_job"]["pipelineJobId"] == job_id

    # inputs: the mounted vfolder and the upstream task's artifact folder
    assert {(d["namespace"], d["name"]) for d in train["inputs"]} == {
        (namespace, "lineage-data"),
        (namespace, f"fasttrack-lineage/{job_id}/prepare"),
    }
    # outputs: the task's own artifact folder, and its outlet as the OpenLineage provider converts assets
    assert [(d["namespace"], d["name"]) for d in train["outputs"]] == [
        (namespace, f"fasttrack-lineage/{job_id}/train"),
        ("file", "/models/lineage/rows.txt"),
    ]
    assert prepare["inputs"] == []
    assert [d["name"] for d in prepare["outputs"]] == [f"fasttrack-lineage/{job_id}/prepare"]

    compute = train["job"]["facets"]["backendai_compute"]
    assert compute["image"] == "python:3.11"
    assert compute["resources"] == {"cpu": 1, "mem": "256m", "cuda.shares": "0.5"}
    assert compute["resourceOpts"] == {"shmem": "64m"}
    assert (compute["clusterMode"], compute["clusterSize"]) == ("single-node", 1)
    assert compute["scalingGroup"] == "default"
    assert compute["_producer"] and compute["_schemaURL"].endswith("#/$defs/JobFacet")
    task_facet = train["job"]["facets"]["fasttrack_task"]
    assert (task_facet["pipeline"], task_facet["task"]) == ("lineage", "train")

    for task_id in ("prepare", "train"):
        session = events[task_id]["run"]["facets"]["backendai_session"]
        assert session["sessionId"] == tasks[task_id]["session_id"]
        assert session["_schemaURL"].endswith("#/$defs/RunFacet")

    # a failed session reports the same: what it read and which session it was
    failed = task_events(events_file, "FAIL")["evaluate"]
    assert [d["name"] for d in failed["inputs"]] == ["lineage-data"]
    assert failed["run"]["facets"]["backendai_session"]["sessionId"] == tasks["evaluate"]["session_id"]
    assert failed["run"]["facets"]["fasttrack_pipeline_job"]["pipelineJobId"] == job_id

    # the service: its model folder and extra mount are inputs; its id and per-run name are the run's
    serve = events["serve"]
    assert {(d["namespace"], d["name"]) for d in serve["inputs"]} == {
        (namespace, "echo-lineage-model"),
        (namespace, "lineage-data"),
    }
    assert serve["outputs"] == []
    service = serve["run"]["facets"]["backendai_service"]
    assert (service["serviceId"], service["serviceName"]) == (
        tasks["serve"]["service_id"],
        tasks["serve"]["service_name"],
    )
    assert serve["run"]["facets"]["fasttrack_pipeline_job"]["pipelineJobId"] == job_id
    served = serve["job"]["facets"]["backendai_compute"]
    assert (served["runtimeVariant"], served["replicas"], served["image"]) == ("custom", 1, "python:3.11")
    assert serve["job"]["facets"]["fasttrack_task"]["task"] == "serve"


def test_operators_work_without_openlineage(lite, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The OpenLineage packages cannot be imported: the factory builds the DAG and its tasks run."""
    blocker = tmp_path / "no_openlineage"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(NO_OPENLINEAGE)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(blocker)},
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "(not installed)" in probe.stderr, probe.stderr  # the blocker works
    static_skip = ROOT / "tests" / "dags" / "pipelines" / "static-skip.yaml"

    tasks = run_pipeline(static_skip, {"PYTHONPATH": str(blocker)})

    assert {task: t["state"] for task, t in tasks.items()} == {
        "expensive-step": "skipped",
        "next-step": "success",
    }
