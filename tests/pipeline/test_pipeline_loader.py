"""The dags/ loader: one DAG per YAML, broken files reported by name without hiding the others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline import loader

ROOT = Path(__file__).resolve().parents[2]
BROKEN = Path(__file__).resolve().parent / "broken"
DEMO = ROOT / "dags" / "pipelines" / "demo-wordcount.yaml"


@pytest.fixture
def mixed_folder(tmp_path: Path, example_path: Path) -> Path:
    shutil.copy(example_path, tmp_path / "a-speech.yaml")
    shutil.copy(BROKEN / "mem_gb.yaml", tmp_path / "b-broken.yaml")
    (tmp_path / "nested").mkdir()
    shutil.copy(DEMO, tmp_path / "nested" / "c-demo.yml")
    return tmp_path


def test_broken_file_is_an_import_error_and_the_rest_load(
    mixed_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(loader.PIPELINES_DIR_ENV, str(mixed_folder))
    bag = DagBag(dag_folder=str(ROOT / "dags" / "fasttrack_pipelines.py"))
    assert set(bag.dags) == {"speech-asr", "demo-wordcount"}
    assert len(bag.import_errors) == 1
    (message,) = bag.import_errors.values()
    assert message == (
        "PipelineImportError: b-broken.yaml:19:10 tasks[1].resources.mem: '16gb' is not a memory size (use 16g or 512m)"
    )


def test_default_folder_is_next_to_the_dag_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.delenv(loader.PIPELINES_DIR_ENV, raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert "demo-wordcount" in bag.dags
    demo = bag.dags["demo-wordcount"]
    assert demo.get_task("report").upstream_task_ids == {"count-words", "count-lines"}


def test_duplicate_dag_ids_keep_the_first(tmp_path: Path, example_path: Path) -> None:
    shutil.copy(example_path, tmp_path / "one.yaml")
    shutil.copy(example_path, tmp_path / "two.yaml")
    result = loader.load_folder(tmp_path)
    assert list(result.dags) == ["speech-asr"]
    assert result.errors == {
        "two.yaml": ["two.yaml:2:7 name: DAG id 'speech-asr' is already used by one.yaml"]
    }


def test_only_the_requested_dag_is_built(mixed_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "demo-wordcount")
    namespace: dict = {}
    result = loader.publish(namespace, mixed_folder)
    assert list(result.dags) == ["demo-wordcount"]
    assert "fasttrack_broken_pipelines" in namespace  # errors still reported


def test_specs_are_cached_by_content(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(DEMO.read_text())
    first = loader.load_spec_cached(path, "demo.yaml")
    assert loader.load_spec_cached(path, "demo.yaml") is first
    path.write_text(DEMO.read_text().replace("cpu: 1\n", "cpu: 2\n", 1))
    changed = loader.load_spec_cached(path, "demo.yaml")
    assert changed is not first
    assert changed.spec.tasks[0].resources["cpu"] == 2
    path.write_text("name: [")
    with pytest.raises(PipelineSpecError):
        loader.load_spec_cached(path, "demo.yaml")


def test_unknown_fields_become_airflow_warnings(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text(
        DEMO.read_text().replace("name: demo-wordcount", "name: demo-wordcount\nlabel: x")
    )
    with pytest.warns(loader.PipelineWarning, match=r"demo.yaml:\d+:1 label: warning: unknown field 'label'"):
        loader.publish({}, tmp_path)


def test_dag_processor_serialises_the_good_and_reports_the_broken(
    mixed_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DAG processor's own parse step (what runs in its child process), serialisation included."""
    import structlog
    from airflow.dag_processing.processor import DagFileParseRequest, _parse_file

    monkeypatch.setenv(loader.PIPELINES_DIR_ENV, str(mixed_folder))
    request = DagFileParseRequest(
        file=str(ROOT / "dags" / "fasttrack_pipelines.py"),
        bundle_path=ROOT / "dags",
        bundle_name="dags-folder",
    )
    result = _parse_file(request, structlog.get_logger())
    assert result is not None
    assert sorted(d.dag_id for d in result.serialized_dags) == ["demo-wordcount", "speech-asr"]
    assert list(result.import_errors) == ["fasttrack_pipelines.py"]
    assert result.import_errors["fasttrack_pipelines.py"].startswith(
        "PipelineImportError: b-broken.yaml:19:10 "
    )
