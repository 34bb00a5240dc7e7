"""``POST /resource/check-presets``: limits, usage and what remains, per keypair and scaling group."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_fasttrack import slots as slotlib
from airflow_provider_fasttrack.lite.api.session import json_object_body
from airflow_provider_fasttrack.lite.context import caller, context
from airflow_provider_fasttrack.lite.errors import LiteError

router = APIRouter()


def _unlimited(slot_names: set[str]) -> slotlib.Slots:
    return dict.fromkeys(slot_names, slotlib.INFINITY)


@router.post("/resource/check-presets")
async def check_presets(request: Request) -> dict[str, Any]:
    """What the keypair and each scaling group can still allocate, and which presets fit now."""
    ctx = context(request)
    body = await json_object_body(request)
    wanted_group = body.get("scaling_group") or body.get("scalingGroup")
    if wanted_group is not None and wanted_group not in ctx.config.scaling_groups:
        raise LiteError("invalid-api-params", f"Unknown scaling group {wanted_group!r}")
    keypair = caller(request)
    slot_names = ctx.config.known_slot_types()
    group_used, key_used = ctx.registry.occupancy()
    limits = _unlimited(slot_names)
    limits.update(keypair.limits())
    using = {name: Decimal(0) for name in slot_names}
    using.update(key_used.get(keypair.access_key, {}))
    key_remaining = slotlib.subtract(limits, using)
    groups: dict[str, Any] = {}
    sg_remaining: slotlib.Slots = {name: Decimal(0) for name in slot_names}
    for name, group in ctx.config.scaling_groups.items():
        if wanted_group is not None and name != wanted_group:
            continue
        capacity = {slot: Decimal(0) for slot in slot_names}
        capacity.update(group.capacity())
        used = {slot: Decimal(0) for slot in slot_names}
        used.update(group_used.get(name, {}))
        remaining = slotlib.subtract(capacity, used)
        # current managers name these "occupied"/"available"; older ones "using"/"remaining"
        groups[name] = {
            "occupied": slotlib.to_json(used),
            "available": slotlib.to_json(remaining),
            "using": slotlib.to_json(used),
            "remaining": slotlib.to_json(remaining),
        }
        sg_remaining = slotlib.add(sg_remaining, remaining)
    allocatable = {k: min(v, key_remaining.get(k, slotlib.INFINITY)) for k, v in sg_remaining.items()}
    presets = []
    for preset in ctx.config.presets:
        wanted = slotlib.parse_slots(preset.resource_slots)
        presets.append(
            {
                "name": preset.name,
                "resource_slots": slotlib.to_json(wanted),
                "shared_memory": preset.shared_memory,
                "allocatable": slotlib.fits(wanted, allocatable),
            }
        )
    unlimited = slotlib.to_json(_unlimited(slot_names))
    return {
        "keypair_limits": slotlib.to_json(limits),
        "keypair_using": slotlib.to_json(using),
        "keypair_remaining": slotlib.to_json(key_remaining),
        "group_limits": unlimited,
        "group_using": slotlib.to_json(using),
        "group_remaining": unlimited,
        "scaling_group_remaining": slotlib.to_json(sg_remaining),
        "scaling_groups": groups,
        "presets": presets,
    }
