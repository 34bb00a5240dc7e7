"""Durations as Backend.AI writes them: a number of seconds, or text such as ``30s``, ``5m``, ``1h``, ``2d``, ``1w``."""

from __future__ import annotations

import re

__all__ = ["DURATION_EXAMPLES", "duration_seconds"]

_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: how messages show the accepted forms
DURATION_EXAMPLES = "'30s', '5m', '1h', '2d' or '1w'"


def duration_seconds(value: int | float | str) -> float:
    """Seconds of ``value``: a number is seconds, text may carry a unit; raises ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration such as {DURATION_EXAMPLES}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration such as {DURATION_EXAMPLES}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    return seconds
