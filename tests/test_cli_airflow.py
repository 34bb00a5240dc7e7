"""The provider as Airflow's own CLI sees it, and ``fasttrack pools sync``, against backendai-lite."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from airflow_provider_fasttrack.cli import main as fasttrack

pytestmark = pytest.mark.usefixtures("airflow_db")


def airflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    return subprocess.run([sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True)


def test_providers_list_shows_the_provider() -> None:
    result = airflow("providers", "list")
    assert result.returncode == 0, result.stderr
    assert "airflow-provider-fasttrack" in result.stdout


def test_connections_test_against_backendai_lite(backendai_conn: str) -> None:
    result = airflow("connections", "test", backendai_conn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout


def test_pools_sync_from_the_cluster_capacity(backendai_conn: str, capsys) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.pool import Pool

    assert fasttrack(["pools", "sync"]) == 0
    pool = Pool.get_pool("backendai-gpu-default")
    assert pool is not None
    # backendai-lite's default capacity: 10 fGPU shares and 2 whole GPUs = 12 GPUs; 1 slot = 0.1 fGPU
    assert pool.slots == 120
    assert pool.include_deferred
    assert "backendai-gpu-default: 120 slots" in capsys.readouterr().out


def test_pools_sync_from_given_capacities() -> None:
    from airflow.models.pool import Pool

    assert fasttrack(["pools", "sync", "--capacity", "h100=2.5", "--capacity", "a10=8"]) == 0
    assert Pool.get_pool("backendai-gpu-h100").slots == 25  # type: ignore[union-attr]
    assert Pool.get_pool("backendai-gpu-a10").slots == 80  # type: ignore[union-attr]


def test_pools_sync_bad_capacity_is_a_usage_error(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        fasttrack(["pools", "sync", "--capacity", "h100"])
    assert exit_info.value.code == 2
    assert "use SCALING_GROUP=FGPU" in capsys.readouterr().err
