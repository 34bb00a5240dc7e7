"""Resource slots: parsing (``"16g"``, ``"0.5"``), arithmetic and the manager's JSON form."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

__all__ = [
    "BINARY_SIZE_SLOTS",
    "Slots",
    "add",
    "fits",
    "format_value",
    "from_json",
    "parse_slots",
    "parse_value",
    "scale",
    "subtract",
    "to_json",
]

Slots = dict[str, Decimal]

#: slots whose values are byte sizes and accept ``k``/``m``/``g``/``t`` suffixes
BINARY_SIZE_SLOTS = frozenset({"mem", "shmem"})
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
INFINITY = Decimal("Infinity")


def parse_value(slot: str, value: object) -> Decimal:
    """Parse one slot value; byte-size slots accept binary suffixes (``"16g"``)."""
    if isinstance(value, bool):
        raise ValueError(f"slot {slot!r}: {value!r} is not a number")
    if isinstance(value, (int, float, Decimal)):
        result = Decimal(str(value))
    elif isinstance(value, str):
        text = value.strip()
        if text.lower() in ("inf", "infinity"):
            return INFINITY
        if slot in BINARY_SIZE_SLOTS:
            match = _SIZE_RE.match(text)
            if not match:
                raise ValueError(f"slot {slot!r}: {value!r} is not a size such as '512m' or '16g'")
            result = Decimal(match.group(1)) * _UNITS[match.group(2).lower()]
        else:
            try:
                result = Decimal(text)
            except InvalidOperation as exc:
                raise ValueError(f"slot {slot!r}: {value!r} is not a number") from exc
    else:
        raise ValueError(f"slot {slot!r}: {value!r} is not a number")
    if not result.is_finite() or result < 0:
        raise ValueError(f"slot {slot!r}: {value!r} must be a non-negative number")
    return result


def parse_slots(values: Mapping[str, object]) -> Slots:
    """Parse a mapping of slot name to value."""
    return {str(name): parse_value(str(name), value) for name, value in values.items()}


def add(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> Slots:
    """Slot-wise sum."""
    return {key: a.get(key, Decimal(0)) + b.get(key, Decimal(0)) for key in set(a) | set(b)}


def subtract(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> Slots:
    """Slot-wise difference ``a - b``."""
    return {key: a.get(key, Decimal(0)) - b.get(key, Decimal(0)) for key in set(a) | set(b)}


def scale(a: Mapping[str, Decimal], factor: int) -> Slots:
    """Every slot multiplied by ``factor`` (the kernels of a multi-node session)."""
    return {key: value * factor for key, value in a.items()}


def fits(request: Mapping[str, Decimal], available: Mapping[str, Decimal]) -> bool:
    """Whether every requested slot is within what is available (a missing slot means zero)."""
    return all(value <= available.get(key, Decimal(0)) for key, value in request.items() if value > 0)


def format_value(value: Decimal) -> str:
    """The manager's string form of a slot value: ``"5"``, ``"0.5"``, ``"Infinity"``."""
    if value.is_infinite():
        return "Infinity"
    normalized = value.normalize()
    text = format(normalized, "f")
    return text


def to_json(slots: Mapping[str, Decimal]) -> dict[str, str]:
    """Slots as the manager serialises them: every value a string, keys sorted."""
    return {key: format_value(slots[key]) for key in sorted(slots)}


def from_json(values: Mapping[str, str]) -> Slots:
    """Inverse of :func:`to_json`."""
    return {key: Decimal(value) for key, value in values.items()}
