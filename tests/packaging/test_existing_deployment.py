"""Installing the provider into an existing Airflow deployment: built wheels, only additions, a working provider.

The deployment is ``.venv-airflow-ref`` (``scripts/airflow-reference-env``): Airflow and its providers as
``constraints.txt`` pins them, built once. The wheels are built from the checkout with ``python -m build``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

REFERENCE = ROOT / ".venv-airflow-ref"
PROVIDER = "airflow-provider-fasttrack"


def run(*command: str | Path, timeout: float = 600, **kwargs: object) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("AIRFLOW")}
    env.update(kwargs.pop("env", {}))  # type: ignore[call-overload]
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def reference_python() -> Path:
    run("bash", ROOT / "scripts" / "airflow-reference-env", timeout=1200)
    return REFERENCE / "bin" / "python"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheels of fasttrack-training and the provider, built from their sdists as ``python -m build`` does."""
    out = tmp_path_factory.mktemp("wheels")
    for source in (ROOT / "training", ROOT):
        run(sys.executable, "-m", "build", "--outdir", out, source, cwd=out)
    return {
        str(canonicalize_name(path.name.split("-")[0].replace("_", "-"))): path for path in out.glob("*.whl")
    }


def installed(python: Path) -> dict[str, str]:
    listing = json.loads(run(python, "-m", "pip", "list", "--format", "json"))
    return {str(canonicalize_name(item["name"])): item["version"] for item in listing}


def test_the_wheels_carry_the_presets_and_samples(wheels: dict[str, Path]) -> None:
    assert set(wheels) == {"fasttrack-training", PROVIDER}
    names = zipfile.ZipFile(wheels["fasttrack-training"]).namelist()
    presets = sorted(n for n in names if n.startswith("training/presets/"))
    shipped = (ROOT / "training/presets").rglob("*.yaml")
    assert presets == sorted(f"training/{p.relative_to(ROOT / 'training').as_posix()}" for p in shipped)
    shipped = sorted(
        f"training/{p.relative_to(ROOT / 'training')}"
        for p in (ROOT / "training/samples").rglob("*")
        if p.is_file()
    )
    assert shipped and sorted(n for n in names if n.startswith("training/samples/")) == shipped


def test_installing_into_the_deployment_only_adds_packages(
    reference_python: Path, wheels: dict[str, Path], tmp_path: Path
) -> None:
    before = installed(reference_python)
    assert canonicalize_name("apache-airflow") in before and PROVIDER not in before
    report_file = tmp_path / "report.json"
    run(
        reference_python, "-m", "pip", "install", "--dry-run", "--quiet", "--report", report_file,
        *wheels.values(),
    )  # fmt: skip
    to_install = {
        str(canonicalize_name(item["metadata"]["name"])): item["metadata"]["version"]
        for item in json.loads(report_file.read_text())["install"]
    }
    changed = {name: (before[name], version) for name, version in to_install.items() if name in before}
    assert changed == {}, f"installing the provider would change installed packages: {changed}"
    assert {PROVIDER, "fasttrack-training"} <= set(to_install)


def test_the_built_wheel_works_in_a_clean_environment(
    reference_python: Path, wheels: dict[str, Path], tmp_path: Path
) -> None:
    """A new environment on top of the deployment's packages (a ``.pth`` file), the wheels installed into it."""
    clean = tmp_path / "clean"
    run(sys.executable, "-m", "venv", clean)
    python = clean / "bin" / "python"
    reference_site = run(reference_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    clean_site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (clean_site / "airflow-reference.pth").write_text(reference_site)
    run(python, "-m", "pip", "install", "--quiet", *wheels.values())

    home = tmp_path / "airflow-home"
    providers = json.loads(
        run(python, "-m", "airflow", "providers", "list", "-o", "json", cwd=tmp_path, env={"AIRFLOW_HOME": str(home)})
        .strip().splitlines()[-1]
    )  # fmt: skip
    (ours,) = [p for p in providers if p["package_name"] == PROVIDER]
    from airflow_provider_fasttrack import __version__

    assert ours["version"] == __version__
    where = run(
        python,
        "-c",
        "import airflow_provider_fasttrack, training, pathlib; "
        "t = pathlib.Path(training.__file__).parent; "
        "print(airflow_provider_fasttrack.__file__); print(t); "
        "print(len(list((t / 'presets').glob('*.yaml'))), sum(p.is_file() for p in (t / 'samples').rglob('*')))",
        cwd=tmp_path,
    ).split()
    assert all(Path(path).is_relative_to(clean_site) for path in where[:2]), (
        where
    )  # the wheel, not the checkout
    assert int(where[2]) == len(list((ROOT / "training/presets").glob("*.yaml")))
    assert int(where[3]) == sum(p.is_file() for p in (ROOT / "training/samples").rglob("*")) > 0
