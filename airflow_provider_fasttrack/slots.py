"""Resource slot values: ``cpu: 4``, ``mem: "16g"``, ``cuda.shares: "1.5"`` parsed, checked, summed and written.

One place for every form a slot value takes: numbers (:func:`parse_slot`), FastTrack's canonical text
(:func:`normalize_slot`, ``16g``, ``'1.5'``) and the manager's JSON strings (:func:`to_json`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "INFINITY",
    "Slots",
    "add",
    "exceeding",
    "fits",
    "format_slots",
    "format_value",
    "from_json",
    "is_accelerator_slot",
    "is_memory_slot",
    "normalize_memory",
    "normalize_slot",
    "parse_memory",
    "parse_slot",
    "parse_slots",
    "scaling_group_capacities",
    "session_slots",
    "subtract",
    "to_json",
]

#: slot amounts as numbers, keyed by slot name (``mem`` in bytes)
Slots = dict[str, Decimal]

INFINITY = Decimal("Infinity")
_UNLIMITED = ("inf", "infinity")
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(?:i?b)?\s*$", re.IGNORECASE)
_STRICT_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)([kmgtpe]?)$", re.IGNORECASE)
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
_ACCELERATOR_SLOT = re.compile(r"^[a-z][a-z0-9_-]*\.(device|shares)$")


def _not_memory(value: Any) -> ValueError:
    return ValueError(f"{value!r} is not a memory size (use 16g or 512m)")


def is_memory_slot(name: str) -> bool:
    """Whether a slot counts bytes (``mem``, ``shmem``, ``<accelerator>.mem``)."""
    return name in ("mem", "shmem") or name.endswith(".mem")


def is_accelerator_slot(name: str) -> bool:
    """Whether a slot counts GPUs: ``<accelerator>.shares`` (fractional) or ``<accelerator>.device`` (whole)."""
    return bool(_ACCELERATOR_SLOT.match(name))


def parse_memory(value: Any) -> Decimal:
    """Bytes in a memory size: an integer, or a number with a binary unit (``512m``, ``16g``, ``1.5t``)."""
    if isinstance(value, bool):
        raise _not_memory(value)
    if isinstance(value, int | float | Decimal):
        number, unit = Decimal(str(value)), ""
    else:
        match = _MEMORY.match(str(value))
        if not match or str(value).strip().lower().endswith(("gb", "mb", "kb", "tb")):
            raise _not_memory(value)
        number, unit = Decimal(match.group(1)), match.group(2).lower()
    if number < 0:
        raise ValueError(f"{value!r} is not a memory size: it is negative")
    return (number * (1024 ** _UNITS[unit])).to_integral_value()


def normalize_memory(value: Any) -> str:
    """FastTrack's form of a memory size: ``'16g'``, ``'512M'``, ``1073741824`` -> ``16g``, ``512m``, ``1073741824``.

    Stricter than :func:`parse_memory`: a number directly followed by one unit letter, nothing else.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _not_memory(value)
    match = _STRICT_MEMORY.match(str(value).strip())
    if not match:
        raise _not_memory(value)
    return f"{format_value(Decimal(match.group(1)))}{match.group(2).lower()}"


def _number(value: Any) -> Decimal:
    """A finite decimal (possibly negative); ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a non-negative number")
    return number


def parse_slot(name: str, value: Any, *, allow_unlimited: bool = False) -> Decimal:
    """One slot value as a number: memory slots (:func:`is_memory_slot`) in bytes, others as given.

    With ``allow_unlimited``, ``"inf"``/``"Infinity"`` is accepted as :data:`INFINITY` (a limit, never a request).
    """
    if allow_unlimited and isinstance(value, str) and value.strip().lower() in _UNLIMITED:
        return INFINITY
    if is_memory_slot(name):
        return parse_memory(value)
    number = _number(value)
    if number < 0:
        raise ValueError(f"{value!r} is not a non-negative number")
    return number


def parse_slots(slots: Mapping[str, Any], *, allow_unlimited: bool = False) -> Slots:
    """All slots of a request or capacity as numbers (``ValueError`` naming the slot on bad input)."""
    parsed: Slots = {}
    for name, value in slots.items():
        try:
            parsed[str(name)] = parse_slot(str(name), value, allow_unlimited=allow_unlimited)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return parsed


def normalize_slot(name: str, value: Any) -> int | str:
    """Check one FastTrack task resource and return its canonical form.

    ``cpu`` and ``<accelerator>.device`` -> int, ``mem`` -> :func:`normalize_memory`, fGPU shares -> decimal text.
    """
    if name == "mem":
        return normalize_memory(value)
    if name == "cpu" or (is_accelerator_slot(name) and name.endswith(".device")):
        unit = "CPU cores" if name == "cpu" else f"{name.split('.')[0]} devices"
        try:
            number = _number(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number of {unit}") from None
        if number != number.to_integral_value() or number < 0:
            raise ValueError(f"{value!r} is not a whole number of {unit}")
        if name == "cpu" and number == 0:
            raise ValueError("a task needs at least 1 cpu")
        return int(number)
    if is_accelerator_slot(name):
        try:
            number = _number(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number of fractional GPUs (e.g. '0.5' or '5')") from None
        if number < 0:
            raise ValueError(f"{value!r}: fractional GPU shares cannot be negative")
        return format_value(number)
    raise ValueError(
        f"unknown resource slot {name!r} (use cpu, mem, <accelerator>.device or <accelerator>.shares)"
    )


def add(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> Slots:
    """Slot-wise sum (a missing slot counts as zero)."""
    return {key: a.get(key, Decimal(0)) + b.get(key, Decimal(0)) for key in set(a) | set(b)}


def subtract(a: Mapping[str, Decimal], b: Mapping[str, Decimal]) -> Slots:
    """Slot-wise difference ``a - b`` (a missing slot counts as zero)."""
    return {key: a.get(key, Decimal(0)) - b.get(key, Decimal(0)) for key in set(a) | set(b)}


def session_slots(kernel: Mapping[str, Any], cluster_size: int) -> Slots:
    """A whole session's slots: every one of its ``cluster_size`` kernels takes the per-kernel ``kernel`` slots.

    The one place that counts a multi-kernel session: GPU pools, the operator's can-never-fit check and
    backendai-lite's scheduler all call it. Values may be unparsed (``mem: "16g"``) or parsed numbers.
    """
    if isinstance(cluster_size, bool) or not isinstance(cluster_size, int) or cluster_size < 1:
        raise ValueError(f"cluster_size must be a whole number >= 1, not {cluster_size!r}")
    return {key: value * cluster_size for key, value in parse_slots(kernel).items()}


def exceeding(
    request: Mapping[str, Decimal], available: Mapping[str, Decimal]
) -> dict[str, tuple[Decimal, Decimal]]:
    """Parsed slots where ``request`` asks for more than ``available`` has: ``{slot: (requested, available)}``.

    A slot ``available`` does not mention counts as zero; a request of zero never exceeds.
    """
    return {
        name: (amount, available.get(name, Decimal(0)))
        for name, amount in request.items()
        if amount > 0 and amount > available.get(name, Decimal(0))
    }


def fits(request: Mapping[str, Decimal], available: Mapping[str, Decimal]) -> bool:
    """Whether every requested slot is within what is available (a missing slot means zero)."""
    return not exceeding(request, available)


def format_value(value: Decimal) -> str:
    """A slot number as the manager writes it: ``"5"``, ``"0.5"``, ``"Infinity"``."""
    if value.is_infinite():
        return "Infinity"
    return format(value.normalize(), "f")


def to_json(slots: Mapping[str, Decimal]) -> dict[str, str]:
    """Slots as the manager serialises them: every value a string, keys sorted."""
    return {key: format_value(slots[key]) for key in sorted(slots)}


def from_json(values: Mapping[str, str]) -> Slots:
    """Inverse of :func:`to_json`."""
    return {key: Decimal(value) for key, value in values.items()}


def format_slots(slots: Mapping[str, Any]) -> str:
    """``cpu=4, mem=16g, cuda.shares=1.5`` for messages."""
    return ", ".join(f"{name}={value}" for name, value in slots.items())


def scaling_group_capacities(presets: Mapping[str, Any]) -> dict[str, Slots]:
    """Total slots per scaling group from a ``/resource/check-presets`` answer.

    Total = occupied + available (current managers), or using + remaining (older ones).
    """
    capacities: dict[str, Slots] = {}
    for group, slots in (presets.get("scaling_groups") or {}).items():
        used = slots.get("occupied", slots.get("using")) or {}
        free = slots.get("available", slots.get("remaining")) or {}
        names = set(used) | set(free)
        capacities[str(group)] = {
            name: parse_slot(name, used.get(name, 0)) + parse_slot(name, free.get(name, 0)) for name in names
        }
    return capacities
