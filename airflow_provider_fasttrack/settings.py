"""The provider's section of the Airflow configuration, ``[fasttrack]``, and how its values are read."""

from __future__ import annotations

__all__ = ["CONFIG_SECTION", "configured_seconds"]

CONFIG_SECTION = "fasttrack"


def configured_seconds(option: str, default: float) -> float:
    """``[fasttrack] <option>`` as seconds (``default`` when unset, 0 when empty); a clear error if not a number."""
    from airflow.configuration import conf

    value = conf.get(CONFIG_SECTION, option, fallback=f"{default:g}").strip()
    try:
        seconds = float(value) if value else 0.0
    except ValueError:
        raise ValueError(f"[{CONFIG_SECTION}] {option} = {value!r} is not a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"[{CONFIG_SECTION}] {option} = {value!r} is not a number of seconds")
    return seconds
