"""The pipeline format: FastTrack exports load unmodified; values are checked and normalised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.validate import load_pipeline, load_pipeline_text

MINIMAL = """
name: mini
tasks:
- name: b
  command: echo b
  environment: {image: python:3.11}
  resources: {cpu: '2', mem: 1G, cuda.shares: 0.50}
  dependencies: [a]
- name: a
  command: echo a
  environment: {image: python:3.11}
"""


def where(text: str, needle: str) -> str:
    """``line:column`` (1-based) of the first ``needle`` in ``text``."""
    before = text[: text.index(needle)]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


def test_example_export_loads_unmodified(example_path: Path) -> None:
    loaded = load_pipeline(example_path)
    spec = loaded.spec
    assert [str(w) for w in loaded.warnings] == [
        f"{example_path.name}:9:20 environment.envs.WANDB_API_KEY: warning: WANDB_API_KEY looks like a secret "
        "written in the file; use a template such as '{{ conn.<conn_id>.password }}' so that Airflow keeps it out "
        "of the file and masks it in logs"
    ]
    assert spec.version == "25.9.1"
    assert (spec.ownership.domain_name, spec.ownership.scope) == ("lab", "project")
    assert [t.name for t in spec.tasks] == [
        "fetch-audio",
        "adapt-one-node",
        "adapt-two-nodes",
        "score",
    ]
    score = spec.task("score")
    assert score.dependencies == ["adapt-one-node", "adapt-two-nodes"]
    assert score.resources == {"cpu": 1, "mem": "2g", "cuda.shares": "0.5"}
    assert score.environment.envs == {"SCORE_SPLIT": "test"}
    assert score.mounts == ["asr-checkpoints"]
    two_nodes = spec.task("adapt-two-nodes")
    assert (two_nodes.cluster_mode, two_nodes.cluster_size) == ("multi-node", 2)
    assert two_nodes.resources == {"cpu": 8, "mem": "32g", "cuda.shares": "4"}
    assert two_nodes.resource_opts == {"shmem": "4g"}
    assert two_nodes.mounts == ["asr-corpus:corpus", "asr-checkpoints:/mnt/checkpoints"]
    fetch = spec.task("fetch-audio")
    assert (fetch.type, fetch.module_uri, fetch.cluster_size) == ("Custom Task", "", 1)
    assert (fetch.environment.project, fetch.environment.scaling_group) == ("speech", "gpu-a100")
    assert fetch.command.splitlines() == [
        "cd /home/work/corpus",
        "python fetch.py --split train,test",
        'python resample.py --rate "$SAMPLE_RATE"',
    ]
    assert spec.environment.envs == {"WANDB_API_KEY": "wandb-0000000000", "SAMPLE_RATE": "16000"}
    assert spec.dag_id == "speech-asr"
    assert spec.vfolder == "fasttrack-speech-asr"
    assert spec.airflow.fail_fast is True


def test_numbers_as_strings_and_any_task_order() -> None:
    spec = load_pipeline_text(MINIMAL, "mini.yaml").spec
    assert spec.task("b").resources == {"cpu": 2, "mem": "1g", "cuda.shares": "0.5"}
    assert spec.task("b").dependencies == ["a"]


def test_unknown_fields_warn_with_position() -> None:
    text = MINIMAL.replace("name: mini", "name: mini\ncolor: blue").replace(
        "  command: echo a", "  command: echo a\n  priority: 3"
    )
    loaded = load_pipeline_text(text, "mini.yaml")
    warnings = [str(w) for w in loaded.warnings]
    assert f"mini.yaml:{where(text, 'color')} color: warning: unknown field 'color' is ignored" in warnings
    assert (
        f"mini.yaml:{where(text, 'priority')} tasks[1].priority: warning: unknown field 'priority' is ignored"
        in warnings
    )
    assert loaded.spec.model_extra == {"color": "blue"}
    from airflow_provider_fasttrack.pipeline.export import export_yaml

    exported = export_yaml(loaded.spec)  # nothing is lost on the way back
    assert "color: blue" in exported and "priority: 3" in exported


def test_a_lablup_style_serving_export_validates_and_builds() -> None:
    """A serving task as Lablup's public RAG example writes it: a ``service:`` block, ``model_mount_destination: ''``."""
    from airflow_provider_fasttrack.operators.service import BackendAIModelServiceOperator
    from airflow_provider_fasttrack.pipeline.factory import build_pipeline

    loaded = load_pipeline(Path(__file__).parent / "fixtures" / "rag-serving.pipeline.yaml")
    assert [str(w) for w in loaded.warnings] == []
    dag = build_pipeline(loaded)
    serve = dag.get_task("rag-vs-baseline")
    assert isinstance(serve, BackendAIModelServiceOperator)
    assert not serve.ephemeral and "rag-vs-baseline-teardown" not in dag.task_ids  # a kept service
    body = serve.request.body(defaults=None)
    assert body["name"] == "gradio-server-pl" and body["open_to_public"] is True
    assert body["config"]["model"] == "gradio-server"
    assert body["config"]["model_mount_destination"] == "/models"
    assert body["config"]["resources"] == {"cpu": 8, "mem": "16g"}
    assert body["config"]["extra_mounts"] == {
        "rag-data": {"type": "bind", "mount_destination": "/home/work/rag-data"}
    }


def test_an_ephemeral_service_gets_a_teardown_after_its_downstream_tasks() -> None:
    from airflow_provider_fasttrack.pipeline.factory import build_pipeline

    loaded = load_pipeline(Path(__file__).parents[1] / "dags" / "pipelines" / "serve-and-query.yaml")
    dag = build_pipeline(loaded)
    teardown = dag.get_task("serve-teardown")
    assert teardown.is_teardown and teardown.trigger_rule == "all_done_setup_success"
    assert teardown.upstream_task_ids == {"query"}  # the last task downstream of the service


def test_several_errors_one_line_each() -> None:
    text = MINIMAL.replace("mem: 1G", "mem: 1gb").replace("dependencies: [a]", "dependencies: [a, z]")
    with pytest.raises(PipelineSpecError) as info:
        load_pipeline_text(text, "two.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 2 == len(info.value.issues)
    assert (
        lines[0]
        == f"two.yaml:{where(text, '1gb')} tasks[0].resources.mem: '1gb' is not a memory size (use 16g or 512m)"
    )
    assert (
        lines[1]
        == f"two.yaml:{where(text, 'z]')} tasks[0].dependencies[1]: unknown dependency 'z' (tasks: a, b)"
    )


def test_unreadable_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(PipelineSpecError) as info:
        load_pipeline(path)
    assert str(info.value) == "binary.yaml:1:1: cannot read the file: not UTF-8 text (byte 0xff)"


def test_json_schema_describes_both_parts(run_cli) -> None:
    code, out, _ = run_cli("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "FastTrack pipeline"
    assert {"name", "tasks"} <= set(schema["required"])
    task = schema["$defs"]["TaskSpec"]
    assert "scaling-group" in schema["$defs"]["TaskEnvironment"]["properties"]
    assert task["properties"]["cluster_mode"]["enum"] == ["single-node", "multi-node"]
    assert schema["$defs"]["AirflowOptions"]["additionalProperties"] is False
    assert "max_runs" in schema["$defs"]["AirflowOptions"]["properties"]
