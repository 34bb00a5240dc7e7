"""Pipeline YAML -> DAG through Airflow's DagBag: tasks, fan-in, resources, mounts, envs, skip, fail-fast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from airflow_provider_fasttrack.pipeline.factory import build_pipeline
from airflow_provider_fasttrack.pipeline.validate import load_pipeline, load_pipeline_text

ROOT = Path(__file__).resolve().parents[2]


def dagbag_of(folder: Path, monkeypatch: pytest.MonkeyPatch):
    """Airflow's own DagBag over the project's DAG file, reading pipelines from ``folder``."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FASTTRACK_PIPELINES_DIR", str(folder))
    return DagBag(dag_folder=str(ROOT / "dags" / "fasttrack_pipelines.py"))


@pytest.fixture
def example_bag(example_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shutil.copy(example_path, tmp_path)
    return dagbag_of(tmp_path, monkeypatch)


def test_example_export_becomes_a_dag(example_bag) -> None:
    from airflow_provider_fasttrack.operators.session import BackendAISessionOperator

    assert example_bag.import_errors == {}
    dag = example_bag.dags["speech-asr"]
    assert set(example_bag.dags) == {"speech-asr"}
    assert dag.dag_display_name == "speech-asr"
    assert dag.description == (
        "Adapts a speech recognition model to call-centre audio on one and on two nodes, then scores both."
    )
    assert {t.task_id for t in dag.tasks} == {
        "fetch-audio",
        "adapt-one-node",
        "adapt-two-nodes",
        "score",
    }
    assert all(isinstance(t, BackendAISessionOperator) for t in dag.tasks)
    upstream = {t.task_id: t.upstream_task_ids for t in dag.tasks}
    assert upstream == {
        "fetch-audio": set(),
        "adapt-one-node": {"fetch-audio"},
        "adapt-two-nodes": {"fetch-audio"},
        "score": {"adapt-one-node", "adapt-two-nodes"},
    }


def test_operator_arguments_follow_the_yaml(example_bag) -> None:
    dag = example_bag.dags["speech-asr"]
    multi, score = dag.get_task("adapt-two-nodes"), dag.get_task("score")
    assert score.request.resources == {"cpu": 1, "mem": "2g", "cuda.shares": "0.5"}
    assert score.request.resource_opts == {"shmem": "0g"}
    assert (multi.request.cluster_mode, multi.request.cluster_size) == ("multi-node", 2)
    assert multi.request.resources == {"cpu": 8, "mem": "32g", "cuda.shares": "4"}
    assert multi.request.resource_opts == {"shmem": "4g"}
    assert (
        multi.request.command.splitlines()[0]
        == 'ssh sub1 "cd /home/work/corpus && python adapt.py --nodes 2 --rank 1" &'
    )
    assert list(multi.request.mounts) == ["asr-corpus:corpus", "asr-checkpoints:/mnt/checkpoints"]
    assert multi.request.env == {
        "WANDB_API_KEY": "wandb-0000000000",
        "SAMPLE_RATE": "16000",
        "ADAPT_EPOCHS": "3",
    }
    assert score.request.command == "python /home/work/asr-checkpoints/score.py one two"
    assert score.request.image == "cr.backend.ai/cloud/ngc-pytorch:25.01-pytorch2.6-py312-cuda12.8"
    assert list(score.request.mounts) == ["asr-checkpoints"]
    assert score.request.env == {
        "WANDB_API_KEY": "wandb-0000000000",
        "SAMPLE_RATE": "16000",
        "SCORE_SPLIT": "test",
    }
    assert (score.request.project, score.request.scaling_group, score.request.domain) == (
        "speech",
        "gpu-a100",
        "lab",
    )
    assert score.backendai_conn_id == "backendai_default"
    assert score.artifacts.vfolder == "fasttrack-speech-asr"
    assert score.artifacts.upstream == ("adapt-one-node", "adapt-two-nodes")  # dependency order
    assert dag.get_task("fetch-audio").artifacts.upstream == ()


def test_skipping_and_fail_fast_wiring(example_bag) -> None:
    dag = example_bag.dags["speech-asr"]
    assert dag.fail_fast is False  # Airflow's own fail_fast forbids none_failed rules
    for task in dag.tasks:
        assert task.trigger_rule == "none_failed"
        assert task.fail_fast is True
        assert task.skip is False
    param = dag.params.get_param("skip_tasks")
    assert param.value == []
    assert param.schema["items"]["enum"] == [
        "fetch-audio",
        "adapt-one-node",
        "adapt-two-nodes",
        "score",
    ]
    assert dag.params.validate() == {"skip_tasks": []}


def test_gpu_tasks_get_the_scaling_group_pool(example_bag) -> None:
    dag = example_bag.dags["speech-asr"]
    assert dag.get_task("fetch-audio").pool == "default_pool"
    assert (dag.get_task("adapt-one-node").pool, dag.get_task("adapt-one-node").pool_slots) == (
        "backendai-gpu-gpu-a100",
        25,
    )
    assert dag.get_task("adapt-two-nodes").pool == "backendai-gpu-gpu-a100"
    assert dag.get_task("score").pool_slots == 5


def test_dag_level_settings_and_defaults(example_bag) -> None:
    dag = example_bag.dags["speech-asr"]
    assert dag.tags == {"fasttrack"}
    assert dag.schedule is None
    assert dag.catchup is False
    assert dag.default_args["owner"] == "airflow"
    assert dag.default_args["retries"] == 0


AIRFLOW_BLOCK = """
name: tuned
environment:
  envs: {SHARED: pipeline, TOKEN: '{{ conn.hf.password }}'}
tasks:
- name: prepare
  command: echo prepare
  skip: true
  environment: {image: python:3.11, envs: {SHARED: task}}
- name: train
  command: echo train
  dependencies: [prepare]
  environment: {image: python:3.11, project: research, scaling-group: gpu-a}
  resources: {cpu: 2, mem: 8g, cuda.shares: 0.5}
airflow:
  dag_id: tuned_pipeline
  owner: ml-team
  retries: 2
  retry_delay_seconds: 60
  tags: [nightly]
  conn_id: backendai_lab
  pool_policy: none
  vfolder: tuned-artifacts
  fail_fast: false
  notifications:
    slack: {conn_id: slack_ml, on_success: 'loss={{ ti.xcom_pull(task_ids="train")["loss"] }}', on_failure: true}
"""


def test_airflow_block_maps_to_the_dag() -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    dag = build_pipeline(load_pipeline_text(AIRFLOW_BLOCK, "tuned.yaml"))
    prepare, train = dag.get_task("prepare"), dag.get_task("train")
    assert dag.dag_id == "tuned_pipeline"
    assert dag.tags == {"fasttrack", "nightly"}
    assert (dag.default_args["owner"], dag.default_args["retries"]) == ("ml-team", 2)
    assert train.retries == 2 and train.retry_delay.total_seconds() == 60
    assert prepare.skip is True and train.skip is False
    assert prepare.request.env == {
        "SHARED": "task",
        "TOKEN": "{{ conn.hf.password }}",
    }  # the task wins; templates stay
    assert train.request.env == {"SHARED": "pipeline", "TOKEN": "{{ conn.hf.password }}"}
    assert (train.request.project, train.request.scaling_group, train.backendai_conn_id) == (
        "research",
        "gpu-a",
        "backendai_lab",
    )
    assert train.pool == "default_pool"  # pool_policy: none
    assert train.fail_fast is False
    assert train.artifacts.vfolder == "tuned-artifacts"
    assert train.artifacts.upstream == ("prepare",)
    # one message per run: the notifiers are the DAG's callbacks, none of the tasks'
    for task in (prepare, train):
        assert task.on_success_callback in (None, []) and task.on_failure_callback in (None, [])
    on_success, on_failure = dag.on_success_callback, dag.on_failure_callback
    assert isinstance(on_success, SlackWebhookNotifier) and isinstance(on_failure, SlackWebhookNotifier)
    assert on_success.text == 'loss={{ ti.xcom_pull(task_ids="train")["loss"] }}'
    assert on_success.slack_webhook_conn_id == "slack_ml"


def test_execution_timeout_applies_to_every_task() -> None:
    text = AIRFLOW_BLOCK.replace("  retries: 2\n", "  retries: 2\n  execution_timeout: 90m\n")
    dag = build_pipeline(load_pipeline_text(text, "tuned.yaml"))
    assert {t.task_id: t.execution_timeout.total_seconds() for t in dag.tasks} == {
        "prepare": 5400,
        "train": 5400,
    }
    assert (
        build_pipeline(load_pipeline_text(AIRFLOW_BLOCK, "tuned.yaml")).get_task("train").execution_timeout
        is None
    )


def test_execution_timeout_must_be_a_duration() -> None:
    from airflow_provider_fasttrack.exceptions import PipelineSpecError

    text = AIRFLOW_BLOCK.replace("  retries: 2\n", "  retries: 2\n  execution_timeout: soon\n")
    with pytest.raises(PipelineSpecError, match=r"tuned.yaml:\d+:\d+.*execution_timeout"):
        load_pipeline_text(text, "tuned.yaml")


def test_env_templates_render_at_run_time() -> None:
    dag = build_pipeline(
        load_pipeline_text(AIRFLOW_BLOCK.replace("conn.hf.password", "run_id"), "tuned.yaml")
    )
    task = dag.get_task("train")  # "prepare" is skipped: a skipped task renders nothing
    assert task.template_fields == ("request",) and "env" in task.request.template_fields
    task.render_template_fields({"run_id": "manual__1"})  # Airflow renders the request's fields in place
    assert task.request.env == {"SHARED": "pipeline", "TOKEN": "manual__1"}


def test_dag_serialises(example_path: Path) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = build_pipeline(load_pipeline(example_path))
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert restored.get_task("score").upstream_task_ids == {"adapt-one-node", "adapt-two-nodes"}
    assert restored.params.get_param("skip_tasks").value == []


def test_skip_and_fail_fast_together_build_a_valid_dag() -> None:
    """Airflow's DAG-level fail_fast would reject the none_failed rules skipping needs; ours is per operator."""
    from airflow.sdk import DAG

    text = AIRFLOW_BLOCK.replace("fail_fast: false", "fail_fast: true")
    dag = build_pipeline(load_pipeline_text(text, "tuned.yaml"))
    assert dag.fail_fast is False
    assert dag.get_task("prepare").skip and all(t.fail_fast for t in dag.tasks)
    assert {t.trigger_rule for t in dag.tasks} == {"none_failed"}
    # the constraint this design avoids: Airflow refuses none_failed in a fail_fast DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with (
        pytest.raises(Exception, match="can only have TriggerRule.ALL_SUCCESS"),
        DAG("ff", schedule=None, fail_fast=True),
    ):
        EmptyOperator(task_id="after_skip", trigger_rule="none_failed")


PARAMS_BLOCK = """
version: 25.6.5
name: with-params
tasks:
- name: train
  command: python -m train --preset {{ params.preset }} --steps {{ params.max_steps }}
  environment: {image: 'python:3.11', envs: {LANGUAGE: '{{ params.language }}'}}
airflow:
  params:
    preset: {default: big, enum: [big, small], title: Recipe}
    max_steps: {default: -1, type: integer, minimum: -1}
    language: {default: ko, type: string, description: Data language}
"""


def test_params_become_the_trigger_form_and_render_in_commands() -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dag = build_pipeline(load_pipeline_text(PARAMS_BLOCK, "params.yaml"))
    assert list(dag.params) == ["preset", "max_steps", "language", "skip_tasks"]
    preset = dag.params.get_param("preset")
    assert (preset.value, preset.schema["enum"], preset.schema["title"]) == (
        "big",
        ["big", "small"],
        "Recipe",
    )
    assert dag.params.get_param("max_steps").schema == {"type": "integer", "minimum": -1}
    task = dag.get_task("train")
    params = {**dag.params.validate(), "preset": "small", "max_steps": 3}  # a run's conf over the defaults
    task.render_template_fields({"params": params})
    assert task.request.command == "python -m train --preset small --steps 3"
    assert task.request.env == {"LANGUAGE": "ko"}
    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert restored.params.get_param("max_steps").value == -1


def test_a_run_value_outside_the_param_schema_is_refused() -> None:
    import copy

    from airflow.sdk.definitions.param import ParamValidationError

    dag = build_pipeline(load_pipeline_text(PARAMS_BLOCK, "params.yaml"))
    params = copy.deepcopy(dag.params)
    with pytest.raises(ParamValidationError, match="preset"):
        params["preset"] = "huge"
    with pytest.raises(ParamValidationError, match="max_steps"):
        params["max_steps"] = -2


def test_shipped_trade_qa_pipeline_declares_its_offline_params() -> None:
    loaded = load_pipeline(ROOT / "dags" / "pipelines" / "trade-qa-finetune.yaml")
    assert loaded.warnings == []
    dag = build_pipeline(loaded)
    assert dag.get_task("extract-qa").skip is True
    assert dag.get_task("prepare-dataset").request.resources.keys() == {"cpu", "mem"}  # no GPU
    for task_id in ("pretrain-domain", "finetune", "evaluate"):
        assert "cuda.shares" in dag.get_task(task_id).request.resources
    assert dag.params.get_param("preset").value == "gemma2-2b"
    assert dag.params.get_param("preset").schema["enum"] == [
        "gemma2-2b",
        "gemma2-2b-seed",
        "smollm2-135m-cpu",
    ]
    # it ends in serving this run's merged model: vLLM on a cluster, transformers serve offline
    assert dag.get_task("merge-model").request.resources.keys() == {"cpu", "mem"}
    serve = dag.get_task("serve-model")
    assert serve.ephemeral and serve.request.model == "trade-qa-models"
    assert serve.request.vfolder_subpath == "served/{{ pipeline_job_id() }}"
    assert dag.get_task("smoke-query").upstream_task_ids == {"prepare-dataset", "serve-model"}
    assert dag.params.get_param("server").value == "vllm"
    offline = json.loads((ROOT / "dags" / "pipelines" / "trade-qa-finetune.offline.json").read_text())
    assert offline["server"] == "transformers"
