"""``training`` installs and runs where neither Airflow nor the provider is installed (a GPU session's image).

That environment is backendai-lite's session runtime, ``.venv-session``, which ``scripts/bootstrap`` builds from
scratch with ``./training[run]`` pinned by ``constraints.txt`` (and then removes the installed copy: sessions import
the staged code). Here: the runtime still satisfies every requirement of ``training[run]`` without any download,
a wheel built from this checkout installs into it, every module of the installed package imports there, and
``python -m training --help`` answers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SESSION_PYTHON = ROOT / ".venv-session" / "bin" / "python"
STEPS = ["training.prepare", "training.extract", "training.finetune", "training.evaluate", "training.report"]
NOT_INSTALLED = ["airflow", "airflow_provider_fasttrack"]

#: imports every module of the installed package and prints their names
_IMPORT_ALL = """
import importlib, pkgutil, sys, training
names = ["training", *(m.name for m in pkgutil.walk_packages(training.__path__, "training."))]
for name in names:
    module = importlib.import_module(name)
    assert (module.__file__ or "").startswith(sys.argv[1]), module.__file__
print(",".join(names))
"""


def test_training_installs_and_imports_without_airflow_or_the_provider(tmp_path: Path) -> None:
    assert SESSION_PYTHON.exists(), "scripts/bootstrap builds .venv-session"
    source = tmp_path / "training"  # a copy, so that building leaves no build/ folder in the checkout
    shutil.copytree(
        ROOT / "training", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    python = str(SESSION_PYTHON)
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}

    def pip(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "pip", *args], capture_output=True, text=True, env=clean_env, cwd=tmp_path
        )

    # every requirement is already there: with no index, pip would install this distribution and nothing else
    report = tmp_path / "report.json"
    resolved = pip(
        "install", "--dry-run", "--no-index", "--no-build-isolation", "--report", str(report),
        "-c", str(ROOT / "constraints.txt"), f"{source}[run]",
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr[-4000:]
    added = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert added == ["fasttrack-training"], added

    site = tmp_path / "site"  # the built wheel, installed apart from the runtime's own packages
    built = pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source))
    assert built.returncode == 0, built.stderr[-4000:]
    wheel = next((tmp_path / "dist").glob("fasttrack_training-*.whl"))
    installed = pip("install", "--no-deps", "--target", str(site), str(wheel))
    assert installed.returncode == 0, installed.stderr[-4000:]
    clean_env["PYTHONPATH"] = str(site)

    run_dir = tmp_path / "elsewhere"  # no checkout on the import path
    run_dir.mkdir()
    imported = subprocess.run(
        [python, "-c", _IMPORT_ALL, str(site)], capture_output=True, text=True, env=clean_env, cwd=run_dir
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
