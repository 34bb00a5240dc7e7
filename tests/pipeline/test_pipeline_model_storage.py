"""FastTrack 26.4 serving tasks without ``service.model``: served from the pipeline's model storage
(``airflow.model_storage``), mounted at /models."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_fasttrack.cli import main
from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.export import export_yaml
from airflow_provider_fasttrack.pipeline.factory import build_pipeline, check_serialisable
from airflow_provider_fasttrack.pipeline.validate import load_pipeline, load_pipeline_text
from tests.pipeline.conftest import FIXTURES

EXPORT = FIXTURES / "handbook-qa-26.pipeline.yaml"


def with_storage(name: str = "handbook-models") -> str:
    """The export as it is, plus the pipeline's model storage."""
    return EXPORT.read_text() + f"airflow:\n  model_storage: {name}\n"


def line_of(text: str, needle: str, after: str = "") -> int:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def test_without_model_storage_each_serving_task_and_the_setting_are_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = EXPORT.read_text()
    with pytest.raises(PipelineSpecError) as caught:
        load_pipeline(EXPORT, display_name="handbook-qa.yaml")
    issues = [str(issue) for issue in caught.value.issues]
    assert len(issues) == 2, issues
    for index, task in ((1, "serve-api"), (2, "serve-chat")):
        line = line_of(text, "service:", after=f"- name: {task}") + 1  # the block's first field
        expected = (
            f"handbook-qa.yaml:{line}:5 tasks[{index}].service: the model folder is missing: "
            f"task {task!r} names no service.model"
        )
        assert any(issue.startswith(expected) and "airflow.model_storage" in issue for issue in issues), (
            issues
        )
    assert main(["validate", str(EXPORT)]) == 1
    err = capsys.readouterr().err
    assert f"{EXPORT}:{line_of(text, 'service:', after='- name: serve-api') + 1}:5" in err
    assert "task 'serve-api' names no service.model" in err and "airflow.model_storage" in err


def test_the_model_storage_is_served_at_models() -> None:
    loaded = load_pipeline_text(with_storage(), "handbook-qa.yaml")
    assert [
        str(w) for w in loaded.warnings if "max_surge" in str(w)
    ]  # FastTrack's fields are kept, as warnings
    dag = build_pipeline(loaded)
    check_serialisable(dag, loaded)
    for task_id, definition in (
        ("serve-api", "model-definition-api.yaml"),
        ("serve-chat", "model-definition-chat.yaml"),
    ):
        request = dag.get_task(task_id).request
        assert request.model == "handbook-models"
        assert request.model_mount_destination == "/models"
        assert request.model_definition_path == definition
        assert request.body()["config"]["model"] == "handbook-models"


def test_a_task_of_its_own_model_keeps_it_and_the_setting_round_trips() -> None:
    text = with_storage().replace(
        "    name: handbook-chat\n", "    name: handbook-chat\n    model: chat-models\n"
    )
    loaded = load_pipeline_text(text, "handbook-qa.yaml")
    dag = build_pipeline(loaded)
    assert dag.get_task("serve-chat").request.model == "chat-models"
    assert dag.get_task("serve-api").request.model == "handbook-models"
    exported = export_yaml(loaded.spec)
    assert "model_storage: handbook-models" in exported
    assert export_yaml(load_pipeline_text(exported, "again.yaml").spec) == exported


def test_a_model_storage_that_is_not_a_vfolder_name_is_refused(tmp_path: Path) -> None:
    text = with_storage("'../models'")
    with pytest.raises(PipelineSpecError) as caught:
        load_pipeline_text(text, "handbook-qa.yaml")
    line = line_of(text, "model_storage:")
    assert any(
        str(issue).startswith(f"handbook-qa.yaml:{line}:") and "airflow.model_storage" in str(issue)
        for issue in caught.value.issues
    ), caught.value.issues
