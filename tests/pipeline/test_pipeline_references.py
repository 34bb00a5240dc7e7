"""The deployment restricts which connections and variables pipeline templates may read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.loader import load_folder
from airflow_provider_fasttrack.pipeline.references import ReferencePolicy
from airflow_provider_fasttrack.pipeline.validate import load_pipeline_text

ONLY_OPENAI = ReferencePolicy(connections=frozenset({"openai_default"}), variables=frozenset())


def pipeline(command: str, **environment: str) -> str:
    task = {
        "name": "extract",
        "type": "Custom Task",
        "command": command,
        "environment": {"image": "python:3.11", "envs": environment},
        "resources": {"cpu": 1, "mem": "1g"},
    }
    return yaml.safe_dump({"name": "refs", "tasks": [task]}, sort_keys=False)


def refused(text: str, policy: ReferencePolicy = ONLY_OPENAI) -> str:
    with pytest.raises(PipelineSpecError) as caught:
        load_pipeline_text(text, "refs.yaml", references=policy)
    return str(caught.value)


def test_an_allowed_connection_loads() -> None:
    text = pipeline("extract", OPENAI_API_KEY="{{ conn.openai_default.password }}")
    assert load_pipeline_text(text, "refs.yaml", references=ONLY_OPENAI).spec.tasks[0].name == "extract"


def test_another_connection_is_refused_with_file_line_and_reference() -> None:
    message = refused(pipeline("echo {{ conn.backendai_default.password }}"))
    assert "refs.yaml:" in message and "tasks[0].command" in message
    assert "'backendai_default'" in message and "does not allow (openai_default)" in message


@pytest.mark.parametrize(
    "template",
    [
        "{{ var.value.db_password }}",
        "{{ var.json.settings }}",
        "{{ conn[params.which].password }}",
        "{% set c = conn %}{{ c.backendai_default.password }}",
        "{{ ti.get_template_context()['conn'].backendai_default.password }}",
    ],
)
def test_unlisted_or_unknowable_reads_are_refused(template: str) -> None:
    assert "the template" in refused(pipeline("echo", SECRET_VALUE=template))


def test_no_restriction_by_default_reads_anything() -> None:
    text = pipeline("echo {{ conn.backendai_default.host }} {{ var.value.anything }}")
    assert load_pipeline_text(text, "refs.yaml", references=ReferencePolicy()).spec.tasks


def test_the_loader_takes_the_policy_from_airflow_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "refs.yaml").write_text(pipeline("echo {{ conn.backendai_default.password }}"))
    monkeypatch.setenv("AIRFLOW__FASTTRACK__PIPELINE_CONNECTIONS", "openai_default")
    result = load_folder(tmp_path)
    assert "refs" not in result.dags and "'backendai_default'" in result.error_text()
    monkeypatch.setenv("AIRFLOW__FASTTRACK__PIPELINE_CONNECTIONS", "*")
    assert "refs" in load_folder(tmp_path).dags
