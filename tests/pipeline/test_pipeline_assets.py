"""Airflow assets of pipelines: outlets whose events say where a run's artefact is, and pipelines scheduled on them."""

from __future__ import annotations

import json

import pytest

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.mounts import Mount
from airflow_provider_fasttrack.pipeline.assets import METRICS_LIMIT, artefact_location, capped_metrics
from airflow_provider_fasttrack.pipeline.factory import build_pipeline, check_serialisable
from airflow_provider_fasttrack.pipeline.validate import load_pipeline_text
from tests.conftest import ROOT, load_test_dag

PRODUCER = ROOT / "tests" / "dags" / "pipelines" / "asset-producer.yaml"
SHIPPED = ROOT / "dags" / "pipelines"


def pipeline(airflow: str) -> str:
    return f"""\
name: p
tasks:
- name: train
  command: echo train
  environment: {{image: python:3.11}}
- name: serve
  type: serving
  environment: {{image: python:3.11}}
  service: {{name: serve-it, model: models}}
- name: other
  command: echo other
  environment: {{image: python:3.11}}
airflow:
{airflow}"""


def errors(text: str) -> list[str]:
    with pytest.raises(PipelineSpecError) as caught:
        load_pipeline_text(text, "p.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_outlets_are_one_asset_per_kind_with_a_stable_name_and_uri() -> None:
    loaded = load_pipeline_text(PRODUCER.read_text(), "asset-producer.yaml")
    dag = build_pipeline(loaded)
    check_serialisable(dag, loaded)
    [model] = dag.get_task("merge-model").outlets
    [dataset] = dag.get_task("prepare-dataset").outlets
    assert (model.name, model.uri, model.group) == (
        "asset-producer.model",
        "backendai://asset-producer/asset-producer/model",
        "model",
    )
    assert (dataset.name, dataset.group) == ("asset-producer.dataset", "dataset")


def test_a_pipeline_scheduled_on_assets_references_them_by_name_or_uri() -> None:
    text = pipeline("  assets:\n    schedule: [other.model, 'backendai://vf/other/adapter']\n")
    dag = build_pipeline(load_pipeline_text(text, "p.yaml"))
    refs = dag.timetable.asset_condition.objects  # all of them: Airflow's AssetAll
    assert {type(r).__name__: (getattr(r, "name", None) or r.uri) for r in refs} == {
        "AssetNameRef": "other.model",
        "AssetUriRef": "backendai://vf/other/adapter",
    }


def test_asset_mistakes_are_one_line_errors_with_their_place() -> None:
    found = errors(
        pipeline(
            "  schedule: '@daily'\n"
            "  assets:\n"
            "    outlets: {nope: model, serve: model, other: model, train: model}\n"
            "    schedule: [p.model, 'airflow://x', other.model]\n"
        )
    )
    assert found == [
        "p.yaml:16:15 airflow.assets.outlets.nope: unknown task 'nope' (tasks: train, serve, other)",
        "p.yaml:16:28 airflow.assets.outlets.serve: 'serve' is a serving task; only session tasks produce "
        "artefacts",
        "p.yaml:16:63 airflow.assets.outlets.train: the model asset is already produced by 'other'; one task "
        "per kind",
        "p.yaml:17:15 airflow.assets.schedule: give airflow.schedule or airflow.assets.schedule, not both",
        "p.yaml:17:16 airflow.assets.schedule[0]: 'p.model' is this pipeline's own asset: each run would start "
        "the next",
        "p.yaml:17:25 airflow.assets.schedule[1]: 'airflow://x': the URI scheme 'airflow' is reserved by Airflow",
    ]


def test_an_unknown_kind_is_an_error() -> None:
    [found] = errors(pipeline("  assets:\n    outlets: {train: weights}\n"))
    assert found == (
        "p.yaml:15:22 airflow.assets.outlets.train: 'weights' is not allowed (use 'dataset', 'adapter' or 'model')"
    )


def test_the_artefact_is_the_folder_the_result_names_inside_a_mount() -> None:
    mounts = [Mount("models"), Mount("vf", subpath="job/t", destination="/pipeline/outputs")]
    outputs = ("vf", "job/t")
    assert artefact_location("model", {"score": 1}, mounts, outputs) == outputs
    assert artefact_location("model", {"model_dir": "/home/work/models/served/j1"}, mounts, outputs) == (
        "models",
        "served/j1",
    )
    assert artefact_location("model", {"model_dir": "/pipeline/outputs/merged"}, mounts, outputs) == (
        "vf",
        "job/t/merged",
    )
    for hostile in ("/etc/passwd", "/home/work/models/../../etc", "served/j1", "/home/work/models/$(id)", 3):
        with pytest.raises(ValueError, match="model_dir"):
            artefact_location("model", {"model_dir": hostile}, mounts, outputs)


def test_a_large_result_keeps_its_short_values_within_the_limit() -> None:
    result = {"semscore": 0.81, "n": 40, "model": "gemma", "answers": ["x" * 100] * 200, "note": "y" * 500}
    metrics = capped_metrics(result)
    assert metrics == {"semscore": 0.81, "n": 40, "model": "gemma"}
    many = {f"metric_{i}": float(i) for i in range(2000)}
    assert len(json.dumps(capped_metrics(many)).encode()) <= METRICS_LIMIT
    assert capped_metrics({"a": 1}) == {"a": 1}
    assert capped_metrics(["not", "a", "mapping"]) == {}


def asset_events(asset_name: str) -> list:  # type: ignore[type-arg]
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        query = query.where(AssetModel.name == asset_name)
        events = session.scalars(query.order_by(AssetEvent.id)).all()
        return [(e.source_task_id, e.source_run_id, dict(e.extra)) for e in events]


@pytest.mark.usefixtures("airflow_db", "backendai_conn")
def test_a_succeeded_task_records_where_its_artefact_is_and_a_held_back_one_nothing(  # type: ignore[no-untyped-def]
    hook, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_fasttrack.naming import pipeline_job_id

    # before any model: a consumer run fails, saying so
    early = load_test_dag("asset-consumer").test()
    assert early.get_task_instance("read-model").state == "failed"
    out = capsys.readouterr()
    assert "the asset 'asset-producer.model' has no event: no task has produced it yet" in out.out + out.err

    run = load_test_dag("asset-producer").test()
    assert run.state == "success"
    job = pipeline_job_id("asset-producer", run.run_id)
    [(task, run_id, extra)] = asset_events("asset-producer.model")
    assert (task, run_id) == ("merge-model", run.run_id)
    session_id = run.get_task_instance("merge-model").xcom_pull(task_ids="merge-model", key="session_id")
    assert extra == {
        "kind": "model",
        "vfolder": "asset-producer",
        "path": f"served/{job}",
        "job_id": job,
        "session_id": session_id,
        "metrics": {"model_dir": f"/pipeline/vfroot/served/{job}", "parameters": 135},
    }
    # the path is where the model is: a consumer mounting the vfolder reads it there
    weights = hook.download_file("asset-producer", f"{extra['path']}/weights.txt")
    assert weights.decode().strip() == f"weights of {job}"
    [(_, _, dataset)] = asset_events("asset-producer.dataset")
    assert (dataset["vfolder"], dataset["path"]) == ("asset-producer", f"{job}/prepare-dataset")

    # a consumer run started by hand reads the asset's latest event: this run's model
    consumer = load_test_dag("asset-consumer").test()
    assert consumer.get_task_instance("read-model").state == "success"
    out = capsys.readouterr().out
    assert f"model event: asset-producer/served/{job}" in out and f"weights of {job}" in out

    # held back by the quality gate: merge-model is skipped and records no model event
    held = load_test_dag("asset-producer").test(run_conf={"promotion_threshold": 0.9})
    assert held.state == "success"
    assert held.get_task_instance("merge-model").state == "skipped"
    assert len(asset_events("asset-producer.model")) == 1
    assert len(asset_events("asset-producer.dataset")) == 2


def test_trade_qa_records_its_artefacts_and_its_smoke_test_runs_on_the_model() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    from airflow_provider_fasttrack.pipeline.validate import load_pipeline

    shipped = ROOT / "dags" / "pipelines"
    finetune = build_pipeline(load_pipeline(shipped / "trade-qa-finetune.yaml"))
    outlets = {t.task_id: [a.name for a in t.outlets] for t in finetune.tasks if t.outlets}
    assert outlets == {
        "prepare-dataset": ["trade-qa-finetune.dataset"],
        "finetune": ["trade-qa-finetune.adapter"],
        "merge-model": ["trade-qa-finetune.model"],
    }
    loaded = load_pipeline(shipped / "trade-qa-smoke.yaml")
    assert loaded.warnings == []
    smoke = build_pipeline(loaded)
    check_serialisable(smoke, loaded)
    [ref] = smoke.timetable.asset_condition.objects
    assert ref.name == "trade-qa-finetune.model"
    # the service serves the folder the event names, in the model vfolder merge-model writes to
    serve = smoke.get_task("serve-model")
    assert serve.request.model == "trade-qa-models"
    assert serve.request.vfolder_subpath == "{{ asset_event('trade-qa-finetune.model').extra.path }}"
    restored = DagSerialization.from_dict(DagSerialization.to_dict(smoke))
    assert restored.timetable.summary == "Asset"


def test_asset_event_is_readable_where_templates_are_restricted() -> None:
    from airflow_provider_fasttrack.pipeline.references import ReferencePolicy

    restricted = ReferencePolicy(connections=frozenset(), variables=frozenset())
    consumer = ROOT / "tests" / "dags" / "pipelines" / "asset-consumer.yaml"
    load_pipeline_text(consumer.read_text(), "asset-consumer.yaml", references=restricted)
    raw = consumer.read_text().replace(
        "\"{{ asset_event('asset-producer.model').extra.path }}\"",
        '"{{ triggering_asset_events }}"',
    )
    with pytest.raises(
        PipelineSpecError, match="reads 'triggering_asset_events', which pipeline templates cannot"
    ):
        load_pipeline_text(raw, "asset-consumer.yaml", references=restricted)


def test_the_smoke_pipelines_offline_params_fit_its_params() -> None:
    dag = build_pipeline(
        load_pipeline_text((SHIPPED / "trade-qa-smoke.yaml").read_text(), "trade-qa-smoke.yaml")
    )
    offline = json.loads((SHIPPED / "trade-qa-smoke.offline.json").read_text())
    for name, value in offline.items():
        dag.params[name] = value  # checked against the param's schema, as a run's conf is
    assert {name: dag.params[name] for name in offline} == {"setup": "", "max_new_tokens": 96}
