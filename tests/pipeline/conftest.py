"""Fixtures for the pipeline tests: the FastTrack example, a folder of pipelines, the CLI in-process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import airflow.sdk  # noqa: F401  - Airflow's start-up log lines come now, not inside captured CLI output
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = Path(os.environ.get("FASTTRACK_EXAMPLES_DIR", "/work/shared/fasttrack-examples"))
EXAMPLE = EXAMPLES_DIR / "torchtune-llama-3.1-8b.pipeline.yaml"
DEMO = ROOT / "dags" / "pipelines" / "demo-wordcount.yaml"
BROKEN_DIR = Path(__file__).resolve().parent / "broken"


@pytest.fixture(scope="session")
def example_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of FastTrack's published example export (``$FASTTRACK_EXAMPLES_DIR``)."""
    if not EXAMPLE.is_file():
        pytest.skip(f"FastTrack example export not found at {EXAMPLE} (set FASTTRACK_EXAMPLES_DIR)")
    target = tmp_path_factory.mktemp("example") / EXAMPLE.name
    shutil.copyfile(EXAMPLE, target)
    return target


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``fasttrack ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from airflow_provider_fasttrack.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
