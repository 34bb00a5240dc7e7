"""The pipelines' git repository of a local deployment, and Airflow's git DAG bundle over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from git import Actor, Repo

from deploy.local import PER_DEPLOYMENT, dag_bundle, pipelines_repository

AUTHOR = Actor("FastTrack tests", "tests@fasttrack.invalid")


def dags_source(root: Path) -> Path:
    source = root / "dags"
    (source / "pipelines").mkdir(parents=True)
    (source / "pipelines" / "one.yaml").write_text("name: one\n")
    (source / "dag_file.py").write_text("# a DAG file\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "dag_file.cpython-311.pyc").write_bytes(b"\0")
    return source


def test_the_repository_is_one_commit_of_the_dags_folder_on_the_bundles_branch(tmp_path: Path) -> None:
    source = dags_source(tmp_path)
    path = pipelines_repository(tmp_path / "repository", source)
    with Repo(path) as repo:
        assert repo.active_branch.name == dag_bundle()["kwargs"]["tracking_ref"]
        assert len(list(repo.iter_commits())) == 1
        assert sorted(item.path for item in repo.head.commit.tree.traverse()) == [
            "dag_file.py",
            "pipelines",
            "pipelines/one.yaml",
        ]
        assert not repo.is_dirty(untracked_files=True)


def test_an_existing_repository_keeps_its_commits(tmp_path: Path) -> None:
    source = dags_source(tmp_path)
    path = pipelines_repository(tmp_path / "repository", source)
    with Repo(path) as repo:
        (path / "pipelines" / "two.yaml").write_text("name: two\n")
        repo.index.add(["pipelines/two.yaml"])
        head = repo.index.commit("two", author=AUTHOR, committer=AUTHOR).hexsha
    (source / "pipelines" / "three.yaml").write_text("name: three\n")
    assert pipelines_repository(path, source) == path
    with Repo(path) as repo:
        assert repo.head.commit.hexsha == head
    assert not (path / "pipelines" / "three.yaml").exists()


def test_a_folder_that_is_not_a_repository_is_refused_by_name(tmp_path: Path) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine\n")
    with pytest.raises(RuntimeError, match=f"{occupied} is not empty and not a git repository"):
        pipelines_repository(occupied, dags_source(tmp_path))
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]


def test_the_git_dag_bundle_reads_the_repository_through_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.providers.git.bundles.git import GitDagBundle

    bundle = dag_bundle()
    assert bundle["classpath"] == "airflow.providers.git.bundles.git.GitDagBundle"
    connection = f"AIRFLOW_CONN_{bundle['kwargs']['git_conn_id'].upper()}"
    assert connection in PER_DEPLOYMENT  # each deployment names its repository
    path = pipelines_repository(tmp_path / "repository", dags_source(tmp_path))
    monkeypatch.setenv(connection, json.dumps({"conn_type": "git", "host": str(path)}))
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(tmp_path / "bundles"))
    with Repo(path) as repo:
        head = repo.head.commit.hexsha
    tracking = GitDagBundle(name=bundle["name"], **bundle["kwargs"])
    assert tracking.supports_versioning
    tracking.initialize()
    assert str(getattr(tracking.get_current_version(), "version", tracking.get_current_version())) == head
    assert (tracking.path / "pipelines" / "one.yaml").read_text() == "name: one\n"
    pinned = GitDagBundle(name=bundle["name"], version=head, **bundle["kwargs"])
    pinned.initialize()
    assert (pinned.path / "dag_file.py").is_file()
