"""Resource slot values: ``cpu: 4``, ``mem: "16g"``, ``cuda.shares: "1.5"`` parsed to numbers and compared."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["format_slots", "parse_memory", "parse_slot", "parse_slots", "slots_exceeding"]

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


def parse_memory(value: Any) -> Decimal:
    """Bytes in a memory size: an integer, or a number with a binary unit (``512m``, ``16g``, ``1.5t``)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a memory size (use 16g or 512m)")
    if isinstance(value, int | float | Decimal):
        number, unit = Decimal(str(value)), ""
    else:
        match = _MEMORY.match(str(value))
        if not match or str(value).strip().lower().endswith(("gb", "mb", "kb", "tb")):
            raise ValueError(f"{value!r} is not a memory size (use 16g or 512m)")
        number, unit = Decimal(match.group(1)), match.group(2).lower()
    if number < 0:
        raise ValueError(f"{value!r} is not a memory size: it is negative")
    return (number * (1024 ** _UNITS[unit])).to_integral_value()


def parse_slot(name: str, value: Any) -> Decimal:
    """One slot value as a number: memory-like slots (``mem``, ``*.mem``) in bytes, others as given."""
    if name == "mem" or name.endswith(".mem"):
        return parse_memory(value)
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{value!r} is not a non-negative number")
    return number


def parse_slots(slots: Mapping[str, Any]) -> dict[str, Decimal]:
    """All slots of a request or capacity as numbers (``ValueError`` naming the slot on bad input)."""
    parsed: dict[str, Decimal] = {}
    for name, value in slots.items():
        try:
            parsed[name] = parse_slot(name, value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return parsed


def slots_exceeding(
    request: Mapping[str, Any], limit: Mapping[str, Any]
) -> dict[str, tuple[Decimal, Decimal]]:
    """Slots where ``request`` asks for more than ``limit`` has: ``{slot: (requested, available)}``.

    A slot the limit does not mention is treated as unavailable (0) when requested above zero.
    """
    wanted, have = parse_slots(request), parse_slots(limit)
    return {
        name: (amount, have.get(name, Decimal(0)))
        for name, amount in wanted.items()
        if amount > have.get(name, Decimal(0))
    }


def format_slots(slots: Mapping[str, Any]) -> str:
    """``cpu=4, mem=16g, cuda.shares=1.5`` for messages."""
    return ", ".join(f"{name}={value}" for name, value in slots.items())
