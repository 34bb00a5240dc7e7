"""A prepared dataset mounted read-only (as upstream outputs are on a cluster) loads and maps without writing to it.

``datasets`` writes cache files next to the Arrow files of a dataset loaded from disk; ``load_splits`` loads it
into memory so that the trainer's tokenisation (``Dataset.map``) writes nothing into the input folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_provider_fasttrack.lite.sandbox import namespaces_available
from tests.conftest import ROOT
from tests.lite.conftest import create_session, session_logs, terminated, wait_for
from tests.training.model_fixtures import qa_dataset_fixture  # noqa: F401

MAP_ON_READ_ONLY = (
    "PYTHONPATH=/home/work/code python -c 'from training.data import load_splits; "
    'data = load_splits("/home/work/prepared"); '
    'mapped = data["train"].map(lambda row: {"n": len(row["question"])}); '
    'print("mapped", len(mapped))\''
)


def test_a_read_only_dataset_maps_without_writing(lite, qa_dataset: Path) -> None:  # type: ignore[no-untyped-def]
    if not namespaces_available()[0]:
        pytest.skip("read-only mounts need private mount namespaces")
    with lite.client() as http:
        for name in ("ro-prepared", "ro-code"):
            assert http.post("/folders", json={"name": name}).status_code in (201, 400)
        shutil.copytree(qa_dataset, lite.vfolder_path("ro-prepared"), dirs_exist_ok=True)
        # the code reaches the session as a pipeline stages it: a vfolder on PYTHONPATH
        shutil.copytree(
            ROOT / "training",
            lite.vfolder_path("ro-code") / "training",
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "samples"),
            dirs_exist_ok=True,
        )
        before = sorted(p.name for p in lite.vfolder_path("ro-prepared").rglob("*"))
        config = {
            "resources": {"cpu": 1, "mem": "1g"},
            "mounts": ["ro-prepared", "ro-code"],
            "mount_map": {"ro-prepared": "prepared", "ro-code": "code"},
            "mount_options": {"ro-prepared": {"permission": "ro"}, "ro-code": {"permission": "ro"}},
        }
        created = create_session(http, MAP_ON_READ_ONLY, config=config, image="python:3.11")
        record = wait_for(http, created["sessionId"], terminated, timeout=300)
        logs = session_logs(http, created["sessionId"])
    assert record["result"] == "SUCCESS", logs
    train_rows = len((qa_dataset / "train.jsonl").read_text().splitlines())
    assert f"mapped {train_rows}" in logs
    assert sorted(p.name for p in lite.vfolder_path("ro-prepared").rglob("*")) == before
