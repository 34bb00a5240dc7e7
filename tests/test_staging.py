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


def test_symlinks_are_skipped_and_named(lite, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """A link to a file outside the staged tree uploads nothing of it; a link to its own folder does not recurse."""
    secret = tmp_path / "outside" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY\n")
    data = tmp_path / "linked"
    (data / "sub").mkdir(parents=True)
    (data / "rows.csv").write_text("a,b\n")
    (data / "key").symlink_to(secret)
    (data / "sub" / "loop").symlink_to("..")
    (data / "self").symlink_to(".")
    code, out = stage_cli(capsys, "stage-links", "--data", str(data))
    assert code == 0, out
    assert "skipped symlink data/key" in out and "skipped symlink data/sub/loop" in out
    assert "stage-links: 1 files uploaded" in out
    vfolder = lite.vfolder_path("stage-links")
    assert local_tree(vfolder / "data") == {"rows.csv": b"a,b\n"}
    assert "PRIVATE KEY" not in (vfolder / MANIFEST).read_text()


def test_a_same_size_edit_inside_the_vfolder_is_staged_again(
    lite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """The vfolder is not trusted: what a session changed there (same size, even with the manifest and the
    modification time put back) is found by its content and replaced by the local file."""
    import os

    package = tmp_path / "edited"
    package.mkdir()
    (package / "steps.py").write_text("SAFE = 1\n")
    assert stage_cli(capsys, "stage-edit", "--code", str(package))[0] == 0
    staged = lite.vfolder_path("stage-edit") / "code" / "edited" / "steps.py"
    manifest = lite.vfolder_path("stage-edit") / MANIFEST
    before, stat = manifest.read_bytes(), staged.stat()
    staged.write_text("EVIL = 1\n")  # the same size
    os.utime(staged, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    manifest.write_bytes(before)
    code, out = stage_cli(capsys, "stage-edit", "--code", str(package))
    assert code == 0, out
    assert "uploaded code/edited/steps.py" in out and "1 files uploaded (9 bytes), 0 unchanged" in out
    assert staged.read_text() == "SAFE = 1\n"


def test_large_files_are_streamed_not_read_into_memory(
    lite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    import tracemalloc

    data = tmp_path / "big"
    data.mkdir()
    size = 48 * 1024 * 1024
    with open(data / "shard.bin", "wb") as out:
        for index in range(size // (1024 * 1024)):
            out.write(bytes([index % 256]) * (1024 * 1024))
    tracemalloc.start()
    try:
        code, out = stage_cli(capsys, "stage-big", "--data", str(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0, out
    assert (lite.vfolder_path("stage-big") / "data" / "shard.bin").stat().st_size == size
    assert peak < size // 2, f"staging a {size >> 20} MiB file peaked at {peak >> 20} MiB of Python memory"
    tracemalloc.start()
    try:  # a second run compares contents without holding a file either
        code, out = stage_cli(capsys, "stage-big", "--data", str(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0 and "0 files uploaded (0 bytes), 1 unchanged" in out, out
    assert peak < size // 2, f"comparing a {size >> 20} MiB file peaked at {peak >> 20} MiB"


def test_create_model_makes_model_type_folders(lite, hook, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """``--create-model`` makes the folders model services can serve; a general folder of that name is an error
    that names it and its type."""
    code, out = stage_cli(
        capsys, "stage-cm", "--create", "stage-cm-cache", "--create-model", "stage-cm-models"
    )
    assert code == 0, out
    modes = {f["name"]: f["usage_mode"] for f in hook.list_vfolders()}
    assert modes["stage-cm-models"] == "model" and modes["stage-cm-cache"] == "general"
    code, out = stage_cli(capsys, "stage-cm", "--create-model", "stage-cm-cache")
    assert code == 1
    assert out.strip().startswith(
        "fasttrack: vfolder 'stage-cm-cache' is a 'general' folder, not a 'model' one"
    )
