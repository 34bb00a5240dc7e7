"""The ``fasttrack`` CLI: validate, graph, export (round trip), and the DAG the export makes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from airflow_provider_fasttrack.cli import SUBCOMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_validate_accepts_the_example(run_cli, example_path: Path) -> None:
    code, out, err = run_cli("validate", str(example_path))
    assert code == 0
    assert (
        err
        == f"{example_path}:9:20 environment.envs.WANDB_API_KEY: warning: WANDB_API_KEY looks like a secret"
        + err.split("looks like a secret", 1)[1]
    )
    assert err.count("\n") == 1
    assert out == f"{example_path}: ok (4 tasks, DAG speech-asr)\n"


def test_validate_a_folder_finds_duplicate_dag_ids(run_cli, example_path: Path, tmp_path: Path) -> None:
    shutil.copy(example_path, tmp_path / "a.yaml")
    shutil.copy(example_path, tmp_path / "b.yaml")
    code, out, err = run_cli("validate", "-q", str(tmp_path))
    assert code == 1 and out == ""
    errors = [line for line in err.splitlines() if "warning:" not in line]
    assert errors == [
        f"{tmp_path / 'b.yaml'}:2:7 name: DAG id 'speech-asr' is already used by {tmp_path / 'a.yaml'}"
    ]


def test_graph_shows_layers_and_fan_in(run_cli, example_path: Path) -> None:
    code, out, _ = run_cli("graph", str(example_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "DAG speech-asr: 4 tasks, schedule none (manual)"
    assert lines[1].startswith("[0] fetch-audio")
    assert "(start)" in lines[1] and "cpu=2 mem=8g" in lines[1]
    multi = next(line for line in lines if "adapt-two-nodes " in line)
    assert multi.strip().startswith("[1] adapt-two-nodes") and "[multi-node x2 pool=" in multi
    one_node = next(line for line in lines if "adapt-one-node " in line)
    assert one_node.strip().startswith("[1] adapt-one-node") and "cuda.shares=2.5" in one_node
    assert "multi-node" not in one_node and "pool=backendai-gpu-gpu-a100x25" in one_node
    score = next(line for line in lines if "score" in line)
    assert score.strip().startswith("[2] score")
    assert "<- adapt-one-node, adapt-two-nodes" in score or "<- adapt-two-nodes, adapt-one-node" in score
    assert "pool=backendai-gpu-gpu-a100x5" in score


def test_export_round_trip_is_stable(run_cli, example_path: Path, tmp_path: Path) -> None:
    code, first, _ = run_cli("export", str(example_path))
    assert code == 0
    assert yaml.safe_load(first) == yaml.safe_load(example_path.read_text())
    exported = tmp_path / "exported.yaml"
    exported.write_text(first)
    code, second, _ = run_cli("export", str(exported))
    assert code == 0 and second == first


def test_export_by_dag_id(
    run_cli, example_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(example_path, tmp_path / "pipeline.yaml")
    monkeypatch.setenv("FASTTRACK_PIPELINES_DIR", str(tmp_path))
    code, out, _ = run_cli("export", "speech-asr", "-o", str(tmp_path / "out.yaml"))
    assert (code, out) == (0, "")
    assert yaml.safe_load((tmp_path / "out.yaml").read_text()) == yaml.safe_load(example_path.read_text())
    code, _, err = run_cli("export", "no-such-dag")
    assert code == 1 and err.startswith(
        "fasttrack: no-such-dag: no such file, and no pipeline with that DAG id"
    )


def test_export_loads_into_a_dagbag_like_the_original(
    run_cli, example_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "pipelines"
    folder.mkdir()
    _, text, _ = run_cli("export", str(example_path))
    (folder / "exported.yaml").write_text(text)
    monkeypatch.setenv("FASTTRACK_PIPELINES_DIR", str(folder))
    bag = DagBag(dag_folder=str(ROOT / "dags" / "fasttrack_pipelines.py"))
    assert bag.import_errors == {}
    dag = bag.dags["speech-asr"]
    score = dag.get_task("score")
    assert score.upstream_task_ids == {"adapt-one-node", "adapt-two-nodes"}
    assert score.request.resources == {"cpu": 1, "mem": "2g", "cuda.shares": "0.5"}
    assert list(score.request.mounts) == ["asr-checkpoints"]
    assert score.request.env == {
        "WANDB_API_KEY": "wandb-0000000000",
        "SAMPLE_RATE": "16000",
        "SCORE_SPLIT": "test",
    }
    two_nodes = dag.get_task("adapt-two-nodes")
    assert (two_nodes.request.cluster_mode, two_nodes.request.cluster_size) == ("multi-node", 2)
    assert list(two_nodes.request.mounts) == ["asr-corpus:corpus", "asr-checkpoints:/mnt/checkpoints"]


def test_a_subcommand_is_one_registration() -> None:
    def register_pools(sub) -> None:
        sub.add_parser("hello").set_defaults(handler=lambda args: 0)

    SUBCOMMANDS.append(register_pools)
    try:
        assert build_parser().parse_args(["hello"]).handler(None) == 0
    finally:
        SUBCOMMANDS.remove(register_pools)
