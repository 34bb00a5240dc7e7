"""SessionRequest: its checks and the ``POST /session`` body it makes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from airflow_provider_fasttrack.mounts import Mount
from airflow_provider_fasttrack.session_request import REQUEST_FIELDS, SessionRequest, pop_request_fields


@dataclass(frozen=True)
class Defaults:
    project: str | None = None
    domain: str | None = None
    scaling_group: str | None = None


def test_body_of_a_full_request() -> None:
    request = SessionRequest(
        image="python:3.11",
        command="python train.py",
        resources={"cpu": 4, "mem": "16g", "cuda.shares": "2.5"},
        resource_opts={"shmem": "2g"},
        cluster_mode="multi-node",
        cluster_size=2,
        mounts=["data", "configs:cfg"],
        env={"A": "1", "B": "task"},
        project="research",
        scaling_group="gpu-a",
        domain="lab",
        batch_timeout="30m",
        bootstrap_script="pip install x",
        tag="nightly",
        priority=20,
        dependencies=["s-1"],
    )
    body = request.body(
        "ft-train-0123",
        defaults=Defaults("default", "default", "cpu-only"),
        extra_mounts=[Mount("artifacts", subpath="job/train", destination="/pipeline/outputs")],
        extra_env={"B": "pipeline", "C": "3"},
    )
    assert body == {
        "name": "ft-train-0123",
        "image": "python:3.11",
        "architecture": "x86_64",
        "type": "batch",
        "group": "research",
        "domain": "lab",
        "clusterMode": "multi-node",
        "clusterSize": 2,
        "enqueueOnly": True,
        "reuseIfExists": True,
        "startupCommand": "python train.py",
        "config": {
            "resources": {"cpu": 4, "mem": "16g", "cuda.shares": "2.5"},  # per kernel, as the manager wants
            "resource_opts": {"shmem": "2g"},
            "environ": {"A": "1", "B": "pipeline", "C": "3"},
            "mounts": ["data", "configs", "artifacts/job/train"],
            "mount_map": {"configs": "cfg", "artifacts/job/train": "/pipeline/outputs"},
            "scalingGroup": "gpu-a",
        },
        "tag": "nightly",
        "batchTimeout": "30m",
        "bootstrap_script": "pip install x",
        "priority": 20,
        "dependencies": ["s-1"],
    }


def test_unset_fields_take_the_connection_defaults_then_default() -> None:
    request = SessionRequest(image="python:3.11", command="true")
    body = request.body("ft-a-1", defaults=Defaults(project="p", scaling_group="sg"))
    assert (body["group"], body["domain"], body["config"]["scalingGroup"]) == ("p", "default", "sg")
    bare = request.body("ft-a-1")
    assert (bare["group"], bare["domain"], "scalingGroup" in bare["config"]) == ("default", "default", False)
    assert not {"tag", "batchTimeout", "bootstrap_script", "priority", "dependencies"} & set(bare)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cluster_mode": "multi"}, "cluster_mode must be 'single-node' or 'multi-node', not 'multi'"),
        ({"cluster_size": 0}, "cluster_size must be a whole number of kernels >= 1, not 0"),
        ({"cluster_size": True}, "cluster_size must be a whole number"),
        ({"mounts": "data"}, "mounts must be a list"),
    ],
)
def test_bad_fields_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SessionRequest(image="python:3.11", command="true", **fields)  # type: ignore[arg-type]


def test_bad_mount_text_fails_when_the_body_is_made() -> None:
    request = SessionRequest(image="python:3.11", command="true", mounts=["bad name"])
    with pytest.raises(ValueError, match="'bad name' is not a mount"):
        request.body("ft-a-1")


def test_none_means_empty_and_inputs_are_copied() -> None:
    env = {"A": "1"}
    request = SessionRequest(image="i", command="c", resources=None, env=env, mounts=("data",))  # type: ignore[arg-type]
    env["A"] = "changed"
    assert (request.resources, request.env, request.mounts) == ({}, {"A": "1"}, ["data"])


def test_fields_split_from_operator_keywords() -> None:
    kwargs = {"image": "i", "command": "c", "cluster_size": 2, "retries": 3, "pool": "p"}
    assert pop_request_fields(kwargs) == {"image": "i", "command": "c", "cluster_size": 2}
    assert kwargs == {"retries": 3, "pool": "p"}
    assert REQUEST_FIELDS[:3] == ("image", "command", "resources")
    assert SessionRequest(image="i", command="c").serialize()["cluster_mode"] == "single-node"
