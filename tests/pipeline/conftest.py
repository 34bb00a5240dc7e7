"""Fixtures for the pipeline tests: a FastTrack-format export, a folder of pipelines, the CLI in-process."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import airflow.sdk  # noqa: F401  - Airflow's start-up log lines come now, not inside captured CLI output
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = FIXTURES / "speech-asr.pipeline.yaml"
DEMO = ROOT / "dags" / "pipelines" / "demo-wordcount.yaml"
BROKEN_DIR = Path(__file__).resolve().parent / "broken"


@pytest.fixture(scope="session")
def example_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of ``fixtures/speech-asr.pipeline.yaml``, a pipeline as FastTrack 25.x exports it.

    It has what FastTrack's exports carry: ``version``, ``ownership``, pipeline and task ``envs``, ``Custom Task``
    tasks with ``module_uri``, ``scaling-group``, string ``cuda.shares``, ``resource_opts.shmem``, a multi-node
    task (``cluster_size: 2``), mounts with relative and absolute aliases and without, and a fan-out and fan-in.
    """
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
