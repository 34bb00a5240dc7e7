"""Backend.AI resource slot values as FastTrack writes them: ``cpu: 4``, ``mem: 16g``, ``cuda.shares: '1.5'``."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["normalize_memory", "normalize_slot"]

_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)([kmgtpe]?)$", re.IGNORECASE)
_SLOT_NAME = re.compile(r"^[a-z][a-z0-9_-]*\.(device|shares)$")
_MEMORY_SLOTS = {"mem"}


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError from None
    if not number.is_finite():
        raise ValueError
    return number


def _decimal_text(number: Decimal) -> str:
    return format(number.normalize(), "f")


def normalize_memory(value: Any) -> str:
    """``'16g'``, ``'512M'``, ``1073741824`` -> ``16g``, ``512m``, ``1073741824``; raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a memory size (use 16g or 512m)")
    text = str(value).strip()
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(f"{value!r} is not a memory size (use 16g or 512m)")
    return f"{_decimal_text(Decimal(match.group(1)))}{match.group(2).lower()}"


def normalize_slot(name: str, value: Any) -> int | str:
    """Check one resource slot and return its canonical form (``cpu`` -> int, fGPU shares -> decimal text)."""
    if name in _MEMORY_SLOTS:
        return normalize_memory(value)
    if name == "cpu" or (_SLOT_NAME.match(name) and name.endswith(".device")):
        try:
            number = _decimal(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a whole number of {_unit(name)}") from None
        if number != number.to_integral_value() or number < 0:
            raise ValueError(f"{value!r} is not a whole number of {_unit(name)}")
        if name == "cpu" and number == 0:
            raise ValueError("a task needs at least 1 cpu")
        return int(number)
    if _SLOT_NAME.match(name):
        try:
            number = _decimal(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number of fractional GPUs (e.g. '0.5' or '5')") from None
        if number < 0:
            raise ValueError(f"{value!r}: fractional GPU shares cannot be negative")
        return _decimal_text(number)
    raise ValueError(
        f"unknown resource slot {name!r} (use cpu, mem, <accelerator>.device or <accelerator>.shares)"
    )


def _unit(name: str) -> str:
    return "CPU cores" if name == "cpu" else f"{name.split('.')[0]} devices"
