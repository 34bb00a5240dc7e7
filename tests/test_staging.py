"""``fasttrack stage`` against a real backendai-lite: code and data into a vfolder, idempotently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_fasttrack.cli import main
from airflow_provider_fasttrack.staging import MANIFEST, code_files, run_requirements

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("backendai_conn")


def stage_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["stage", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


def local_tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    }


def test_code_and_data_land_in_the_vfolder_and_a_second_run_uploads_nothing(
    lite, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    sample = ROOT / "training" / "samples" / "en"
    args = ("stage-code", "--code", str(ROOT / "training"), "--data", str(sample), "--create", "stage-cache")
    code, out = stage_cli(capsys, *args)
    assert code == 0, out
    vfolder = lite.vfolder_path("stage-code")
    staged_code = local_tree(vfolder / "code" / "training")
    assert staged_code == {
        path: content
        for path, content in local_tree(ROOT / "training").items()
        if not path.split("/")[0].endswith(".egg-info") and path.split("/")[0] not in {"build", "dist"}
    }  # a build of the package leaves build/ and *.egg-info next to the code: they are not staged
    assert local_tree(vfolder / "data") == local_tree(sample)
    assert lite.vfolder_path("stage-cache").is_dir()
    first = json.loads((vfolder / MANIFEST).read_text())
    assert len(first) == len(staged_code) + len(local_tree(sample)) + (
        1 if (ROOT / "training" / "pyproject.toml").is_file() else 0
    )

    code, out = stage_cli(capsys, *args)
    assert code == 0, out
    assert f"stage-code: 0 files uploaded (0 bytes), {len(first)} unchanged" in out
    assert json.loads((vfolder / MANIFEST).read_text()) == first


def test_only_changed_or_missing_files_are_uploaded_again(
    lite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    package = tmp_path / "mypkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "steps.py").write_text("STEPS = 1\n")
    (package / "pyproject.toml").write_text(
        '[project]\nname = "mypkg"\ndependencies = ["pyyaml>=6"]\n'
        '[project.optional-dependencies]\nrun = ["torch>=2.4", "trl>=1.0"]\ntest = ["pytest"]\n'
    )
    assert stage_cli(capsys, "stage-delta", "--code", str(package))[0] == 0
    vfolder = lite.vfolder_path("stage-delta")
    assert (vfolder / "code" / "requirements.txt").read_text() == "pyyaml>=6\ntorch>=2.4\ntrl>=1.0\n"

    (package / "sub" / "steps.py").write_text("STEPS = 2\n")  # changed here
    (vfolder / "code" / "mypkg" / "__init__.py").unlink()  # gone there
    code, out = stage_cli(capsys, "stage-delta", "--code", str(package))
    assert code == 0, out
    assert "uploaded code/mypkg/__init__.py" in out and "uploaded code/mypkg/sub/steps.py" in out
    assert "2 files uploaded (10 bytes), 2 unchanged" in out
    assert (vfolder / "code" / "mypkg" / "sub" / "steps.py").read_text() == "STEPS = 2\n"


def test_a_wheel_is_staged_as_one_file_and_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = tmp_path / "mypkg-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x03\x04")
    assert [f.path for f in code_files(wheel)] == ["code/mypkg-0.1.0-py3-none-any.whl"]
    code, out = stage_cli(capsys, "stage-bad", "--data", str(tmp_path / "missing"))
    assert code == 1 and out.strip() == f"fasttrack: {tmp_path / 'missing'}: no such folder"
    (tmp_path / "bad.toml").write_text("[project\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        run_requirements(tmp_path / "bad.toml")
