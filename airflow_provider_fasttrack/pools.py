"""Airflow pools that mirror Backend.AI GPU capacity, so Airflow queues GPU tasks instead of the cluster.

Unit: one pool slot = 0.1 fGPU (``cuda.shares``); a whole GPU (``cuda.device``) counts as 10 slots, the same as
1.0 fGPU. Pools are per scaling group and named ``backendai-gpu-<scaling group>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from airflow_provider_fasttrack.slots import scaling_group_capacities, session_slots

__all__ = ["SLOTS_PER_GPU", "cluster_gpu_capacity", "gpu_pool", "gpu_slots", "pool_name", "sync_pools"]

SLOTS_PER_GPU = 10
GPU_SLOTS = ("cuda.shares", "cuda.device")


def pool_name(scaling_group: str | None) -> str:
    return f"backendai-gpu-{scaling_group or 'default'}"


def gpu_slots(resources: Mapping[str, Any], cluster_size: int) -> int:
    """Pool slots for a session's GPUs: per-kernel ``resources`` x ``cluster_size`` kernels (0 for none).

    Partial slots round up: 2 kernels x ``cuda.shares: 5`` take 100 slots, 1 x ``cuda.shares: 0.25`` takes 3.
    """
    total = session_slots({k: v for k, v in resources.items() if k in GPU_SLOTS}, cluster_size)
    return math.ceil(sum(total.values(), Decimal(0)) * SLOTS_PER_GPU)


def gpu_pool(
    scaling_group: str | None, resources: Mapping[str, Any], cluster_size: int
) -> tuple[str, int] | None:
    """``(pool, pool_slots)`` for a session that requests GPUs, ``None`` for a CPU-only one."""
    slots = gpu_slots(resources, cluster_size)
    return (pool_name(scaling_group), slots) if slots else None


def cluster_gpu_capacity(presets: Mapping[str, Any]) -> dict[str, Decimal]:
    """GPUs (fGPU units) per scaling group from a ``/resource/check-presets`` answer."""
    return {
        group: sum((amount for slot, amount in slots.items() if slot in GPU_SLOTS), Decimal(0))
        for group, slots in scaling_group_capacities(presets).items()
    }


def sync_pools(capacities: Mapping[str, Decimal | float | int]) -> list[tuple[str, int]]:
    """Create or resize ``backendai-gpu-<group>`` pools (``include_deferred``) for GPU capacities in fGPU."""
    from airflow.models.pool import Pool

    done = []
    for group, gpus in sorted(capacities.items()):
        slots = math.floor(Decimal(str(gpus)) * SLOTS_PER_GPU)
        name = pool_name(group)
        Pool.create_or_update_pool(
            name,
            slots=slots,
            description=f"Backend.AI scaling group {group}: {gpus} fGPU, one slot = 0.1 fGPU",
            include_deferred=True,
        )
        done.append((name, slots))
    return done
