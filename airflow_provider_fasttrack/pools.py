"""Airflow pools that mirror Backend.AI GPU capacity, so Airflow queues GPU tasks instead of the cluster.

Unit: one pool slot = 0.1 fGPU (``cuda.shares``); a whole GPU (``cuda.device``) counts as 10 slots, the same as
1.0 fGPU. Pools are per scaling group and named ``backendai-gpu-<scaling group>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from airflow_provider_fasttrack.slots import parse_slots

__all__ = ["SLOTS_PER_GPU", "cluster_gpu_capacity", "gpu_pool", "gpu_slots", "pool_name", "sync_pools"]

SLOTS_PER_GPU = 10
GPU_SLOTS = ("cuda.shares", "cuda.device")


def pool_name(scaling_group: str | None) -> str:
    return f"backendai-gpu-{scaling_group or 'default'}"


def gpu_slots(resources: Mapping[str, Any]) -> int:
    """Pool slots for a GPU request (0 when it asks for none); partial slots round up."""
    parsed = parse_slots({k: v for k, v in resources.items() if k in GPU_SLOTS})
    gpus = sum(parsed.values(), Decimal(0))
    return math.ceil(gpus * SLOTS_PER_GPU)


def gpu_pool(scaling_group: str | None, resources: Mapping[str, Any]) -> tuple[str, int] | None:
    """``(pool, pool_slots)`` for a task that requests GPUs, ``None`` for a CPU-only task."""
    slots = gpu_slots(resources)
    return (pool_name(scaling_group), slots) if slots else None


def cluster_gpu_capacity(presets: Mapping[str, Any]) -> dict[str, Decimal]:
    """GPUs (fGPU units) per scaling group from a ``/resource/check-presets`` answer: using + remaining."""
    capacity: dict[str, Decimal] = {}
    for group, slots in (presets.get("scaling_groups") or {}).items():
        using, remaining = slots.get("using") or {}, slots.get("remaining") or {}
        total = Decimal(0)
        for slot in GPU_SLOTS:
            amounts = parse_slots({slot: using.get(slot, 0)}), parse_slots({slot: remaining.get(slot, 0)})
            total += amounts[0][slot] + amounts[1][slot]
        capacity[str(group)] = total
    return capacity


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
