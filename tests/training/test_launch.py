"""The data-parallel launcher's rendezvous, read from Backend.AI's cluster variables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from training.launch import (
    Cluster,
    LaunchError,
    Rank,
    forwarded_environment,
    launch,
    log_format,
    node_commands,
    remote_command,
)


def _kernel(host: str, hosts: str = "main1,sub1,sub2") -> dict[str, str]:
    role = "main" if host.startswith("main") else "sub"
    return {"BACKENDAI_CLUSTER_HOSTS": hosts, "BACKENDAI_CLUSTER_HOST": host, "BACKENDAI_CLUSTER_ROLE": role}


def test_the_main_kernel_starts_every_node_with_its_rank() -> None:
    cluster = Cluster.from_env(_kernel("main1"))
    commands = node_commands(cluster, "finetune", ["--preset", "x"], nproc=2, port=29411, starts_all=True)
    assert list(commands) == ["main1", "sub1", "sub2"]
    for rank, argv in enumerate(commands.values()):
        assert argv[:3] == [sys.executable, "-m", "torch.distributed.run"]
        flags = dict(zip(argv[3:-5:2], argv[4:-5:2], strict=True))
        assert flags == {
            "--nnodes": "3",
            "--node-rank": str(rank),
            "--master-addr": "main1",
            "--master-port": "29411",
            "--nproc-per-node": "2",
        }
        assert argv[-5:] == ["--module", "training", "finetune", "--preset", "x"]


def test_a_sub_kernel_starts_only_itself() -> None:
    cluster = Cluster.from_env(_kernel("sub2"))
    assert (cluster.node_rank, cluster.main_host, cluster.size) == (2, "main1", 3)
    commands = node_commands(cluster, "finetune", [], nproc=1, port=29411, starts_all=False)
    assert list(commands) == ["sub2"] and "--node-rank" in commands["sub2"]
    with pytest.raises(LaunchError, match="--master-port"):  # it cannot pick the port the others use
        launch("finetune", [], nproc_per_node="1", spawn="none", env=_kernel("sub2"))


def test_outside_a_cluster_there_is_one_node() -> None:
    cluster = Cluster.from_env({})
    assert (cluster.size, cluster.node_rank) == (1, 0)
    assert (
        "--standalone"
        in node_commands(cluster, "finetune", [], nproc=2, port=1, starts_all=True)["localhost"]
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (_kernel("sub9"), "not in BACKENDAI_CLUSTER_HOSTS"),
        (_kernel("sub1", hosts="sub1,main1"), "does not list the main kernel first"),
    ],
)
def test_inconsistent_cluster_variables_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(LaunchError, match=message):
        Cluster.from_env(env)


def test_the_remote_command_keeps_directory_variables_and_quoting(tmp_path: Path) -> None:
    env = forwarded_environment(
        {"PYTHONPATH": "/code dir", "OMP_NUM_THREADS": "1", "NCCL_SOCKET_IFNAME": "eth0", "SECRET": "s3"}
    )
    assert env == {"PYTHONPATH": "/code dir", "OMP_NUM_THREADS": "1", "NCCL_SOCKET_IFNAME": "eth0"}
    probe = [
        "bash",
        "-c",
        'printf "%s|" "$PWD" "$PYTHONPATH" "$OMP_NUM_THREADS" "$SETUP" "$@"',
        "-",
        "a b",
        "it's",
    ]
    command = remote_command(probe, cwd=str(tmp_path), env=env, setup="export SETUP=done")
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out == f"{tmp_path}|/code dir|1|done|a b|it's|"


def test_a_failing_node_setup_stops_that_node(tmp_path: Path) -> None:
    command = remote_command(["echo", "launched"], cwd=str(tmp_path), env={}, setup="false")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "launched" not in done.stdout


def test_log_lines_name_the_rank_under_data_parallel() -> None:
    assert "[rank 1/2]" in log_format(Rank.current({"RANK": "1", "WORLD_SIZE": "2"}))
    assert "[rank" not in log_format(Rank.current({}))
    assert Rank.current({"RANK": "0", "WORLD_SIZE": "2"}).is_main
