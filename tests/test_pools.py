"""GPU pools: pool slots of a session's GPU request (all kernels) and capacities from check-presets."""

from __future__ import annotations

from decimal import Decimal

import pytest

from airflow_provider_fasttrack.lite.testing import DEFAULT_SLOTS
from airflow_provider_fasttrack.pools import cluster_gpu_capacity, gpu_pool, gpu_slots, pool_name


@pytest.mark.parametrize(
    ("resources", "cluster_size", "slots"),
    [
        ({"cuda.shares": 5}, 1, 50),
        ({"cuda.shares": 5}, 2, 100),
        ({"cuda.shares": "2.5"}, 4, 100),
        ({"cuda.shares": "0.25"}, 1, 3),  # partial slots round up
        ({"cuda.shares": "0.25"}, 3, 8),  # 0.75 fGPU in all
        ({"cuda.device": 1}, 2, 20),
        ({"cpu": 4, "mem": "16g", "cuda.shares": "1.5"}, 1, 15),
        ({"cpu": 4, "mem": "16g"}, 8, 0),
    ],
)
def test_gpu_slots_count_every_kernel(resources: dict[str, object], cluster_size: int, slots: int) -> None:
    assert gpu_slots(resources, cluster_size) == slots


def test_gpu_pool_names_the_scaling_group_and_skips_cpu_tasks() -> None:
    assert gpu_pool("nvidia-H100", {"cuda.shares": 5}, 2) == ("backendai-gpu-nvidia-H100", 100)
    assert gpu_pool(None, {"cuda.device": 1}, 1) == ("backendai-gpu-default", 10)
    assert gpu_pool("default", {"cpu": 2}, 2) is None
    assert pool_name(None) == pool_name("default") == "backendai-gpu-default"


def test_bad_values_are_errors() -> None:
    with pytest.raises(ValueError, match="cuda.shares"):
        gpu_slots({"cuda.shares": "half"}, 1)
    with pytest.raises(ValueError, match="cluster_size"):
        gpu_slots({"cuda.shares": 1}, 0)


def test_cluster_gpu_capacity_from_a_real_check_presets(hook) -> None:  # type: ignore[no-untyped-def]
    presets = hook.check_presets()
    capacity = cluster_gpu_capacity(presets)
    # the test server's default group has fGPU shares and whole devices; both count as GPUs
    expected = Decimal(str(DEFAULT_SLOTS["cuda.shares"])) + Decimal(str(DEFAULT_SLOTS["cuda.device"]))
    assert capacity["default"] == expected
