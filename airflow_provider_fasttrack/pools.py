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

__all__ = ["SLOTS_PER_GPU", "gpu_pool", "gpu_slots", "pool_name"]

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
