"""Which pending sessions start now: priority then FIFO, capacity per scaling group and keypair."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_fasttrack import slots as slotlib
from airflow_provider_fasttrack.lite.config import LiteConfig

__all__ = ["OCCUPYING_STATUSES", "Decision", "decide", "never_fits", "usage"]

#: statuses in which a session holds its slots
OCCUPYING_STATUSES = frozenset(
    {"SCHEDULED", "PREPARING", "PULLING", "PREPARED", "CREATING", "RUNNING", "TERMINATING"}
)


@dataclass
class Decision:
    """The outcome of one scheduling round."""

    start: list[dict[str, Any]] = field(default_factory=list)
    #: session id -> the predicates that failed, recorded in its ``status_data``
    waiting: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def usage(sessions: Iterable[dict[str, Any]], key: str) -> dict[str, slotlib.Slots]:
    """Slots held by occupying sessions, summed per ``key`` (``scaling_group`` or ``access_key``)."""
    used: dict[str, slotlib.Slots] = {}
    for row in sessions:
        if row["status"] in OCCUPYING_STATUSES:
            held = slotlib.from_json(row["requested_slots"])
            used[row[key]] = slotlib.add(used.get(row[key], {}), held)
    return used


def _dependencies_met(row: dict[str, Any], by_id: Mapping[str, dict[str, Any]]) -> bool:
    for dep_id in row["dependencies"]:
        dep = by_id.get(dep_id)
        if dep is None or dep["status"] != "TERMINATED" or dep["result"] != "SUCCESS":
            return False
    return True


def decide(config: LiteConfig, sessions: list[dict[str, Any]]) -> Decision:
    """Choose the pending sessions to start given all sessions' current state.

    Pending sessions are considered by priority (high first), then creation order. A session whose
    dependencies have not all succeeded is passed over; the first session that does not fit its scaling
    group blocks the ones behind it in that group (no backfilling), as a FIFO scheduler does.
    """
    by_id = {row["id"]: row for row in sessions}
    group_used = usage(sessions, "scaling_group")
    key_used = usage(sessions, "access_key")
    key_running: dict[str, int] = {}
    for row in sessions:
        if row["status"] in OCCUPYING_STATUSES:
            key_running[row["access_key"]] = key_running.get(row["access_key"], 0) + 1
    pending = sorted(
        (row for row in sessions if row["status"] == "PENDING"), key=lambda r: (-r["priority"], r["seq"])
    )
    decision = Decision()
    blocked_groups: set[str] = set()
    for row in pending:
        group = row["scaling_group"]
        request = slotlib.from_json(row["requested_slots"])
        if not _dependencies_met(row, by_id):
            decision.waiting[row["id"]] = [
                {"name": "dependencies", "msg": "Waiting for the sessions it depends on to succeed."}
            ]
            continue
        if group in blocked_groups:
            decision.waiting[row["id"]] = [
                {"name": "scheduling_order", "msg": "Sessions ahead in the queue are waiting for resources."}
            ]
            continue
        failed: list[dict[str, str]] = []
        keypair = config.keypair(row["access_key"])
        if keypair is not None:
            limit = keypair.limits()
            if limit:
                remaining = slotlib.subtract(limit, key_used.get(row["access_key"], {}))
                capped = {k: v for k, v in request.items() if k in limit}
                if not slotlib.fits(capped, remaining):
                    failed.append(
                        {"name": "keypair_resource_limit", "msg": "Your keypair resource quota is exceeded."}
                    )
            cap = keypair.max_concurrent_sessions
            if cap and key_running.get(row["access_key"], 0) >= cap:
                failed.append(
                    {"name": "concurrency", "msg": f"You cannot run more than {cap} concurrent sessions."}
                )
        capacity = config.scaling_groups[group].capacity()
        free = slotlib.subtract(capacity, group_used.get(group, {}))
        if not slotlib.fits(request, free):
            failed.append({"name": "no_available_instances", "msg": "No agent has enough free slots now."})
        if failed:
            decision.waiting[row["id"]] = failed
            blocked_groups.add(group)
            continue
        decision.start.append(row)
        group_used[group] = slotlib.add(group_used.get(group, {}), request)
        key_used[row["access_key"]] = slotlib.add(key_used.get(row["access_key"], {}), request)
        key_running[row["access_key"]] = key_running.get(row["access_key"], 0) + 1
    return decision


def never_fits(config: LiteConfig, access_key: str, scaling_group: str, request: slotlib.Slots) -> str | None:
    """Why a request can never be scheduled (exceeds the group's capacity or the keypair's limit), or ``None``."""
    over_capacity = slotlib.exceeding(request, config.scaling_groups[scaling_group].capacity())
    if over_capacity:
        slot, (amount, have) = min(over_capacity.items())
        return (
            f"The resource request exceeds the total capacity of scaling group {scaling_group!r} "
            f"({slot}: requested {slotlib.format_value(amount)}, capacity {slotlib.format_value(have)}); "
            "it could never be scheduled."
        )
    keypair = config.keypair(access_key)
    if keypair is not None:
        limit = keypair.limits()
        over_limit = slotlib.exceeding({k: v for k, v in request.items() if k in limit}, limit)
        if over_limit:
            slot, (amount, have) = min(over_limit.items())
            return (
                f"The resource request exceeds your keypair's total resource slots "
                f"({slot}: requested {slotlib.format_value(amount)}, limit {slotlib.format_value(have)})."
            )
    return None
