"""``training`` installs and runs where neither Airflow nor the provider is installed (a GPU session's image).

A fresh virtual environment gets ``./training[run]`` only (pinned by ``constraints.txt``); every step module must
import there, and ``python -m training --help`` must answer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["training.prepare", "training.extract", "training.finetune", "training.evaluate", "training.report"]
NOT_INSTALLED = ["airflow", "airflow_provider_fasttrack"]

#: imports every module of the installed package and prints their names
_IMPORT_ALL = """
import importlib, pkgutil, training
names = ["training", *(m.name for m in pkgutil.walk_packages(training.__path__, "training."))]
for name in names:
    module = importlib.import_module(name)
    assert "site-packages" in (module.__file__ or ""), module.__file__
print(",".join(names))
"""


def _python_311() -> str:
    found = shutil.which("python3.11")
    assert found, "python3.11 is needed to build the standalone environment"
    return found


@pytest.mark.timeout(1800)
def test_training_installs_and_imports_without_airflow_or_the_provider(tmp_path: Path) -> None:
    source = tmp_path / "training"  # a copy, so that building leaves no build/ folder in the checkout
    shutil.copytree(
        ROOT / "training", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    env_dir = tmp_path / "venv"
    subprocess.run([_python_311(), "-m", "venv", str(env_dir)], check=True)
    python = str(env_dir / "bin" / "python")
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), f"{source}[run]"],
        capture_output=True,
        text=True,
        env=clean_env,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr[-4000:]

    run_dir = tmp_path / "elsewhere"  # no checkout on the import path
    run_dir.mkdir()
    imported = subprocess.run(
        [python, "-c", _IMPORT_ALL], capture_output=True, text=True, env=clean_env, cwd=run_dir
    )
    assert imported.returncode == 0, imported.stderr[-4000:]
    names = set(imported.stdout.strip().split(","))
    assert set(STEPS) | {"training.yamldoc", "training.formats.exam"} <= names, names

    for name in NOT_INSTALLED:
        refused = subprocess.run(
            [python, "-c", f"import {name}"], capture_output=True, env=clean_env, cwd=run_dir
        )
        assert refused.returncode != 0, f"import {name} succeeded in the training-only environment"

    helped = subprocess.run(
        [python, "-m", "training", "--help"], capture_output=True, text=True, env=clean_env, cwd=run_dir
    )
    assert helped.returncode == 0, helped.stderr
    assert "prepare" in helped.stderr and "finetune" in helped.stderr and "evaluate" in helped.stderr
    for step in ("prepare", "extract", "finetune", "evaluate"):
        step_help = subprocess.run(
            [python, "-m", "training", step, "--help"],
            capture_output=True,
            text=True,
            env=clean_env,
            cwd=run_dir,
        )
        assert step_help.returncode == 0, step_help.stderr
        assert "usage:" in step_help.stdout
