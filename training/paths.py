"""Default input and output folders inside a Backend.AI pipeline task."""

from __future__ import annotations

import os
from pathlib import Path

PIPELINE_OUTPUTS = Path("/pipeline/outputs")


def default_output_dir() -> Path | None:
    """``$BACKENDAI_PIPELINE_OUTPUTS``, else ``/pipeline/outputs`` when it exists, else ``None``."""
    env = os.environ.get("BACKENDAI_PIPELINE_OUTPUTS")
    if env:
        return Path(env)
    return PIPELINE_OUTPUTS if PIPELINE_OUTPUTS.is_dir() else None


def default_input_dir(index: int = 1) -> Path | None:
    """``$BACKENDAI_PIPELINE_INPUT<n>``, else ``/pipeline/input<n>`` when it exists, else ``None``."""
    env = os.environ.get(f"BACKENDAI_PIPELINE_INPUT{index}")
    if env:
        return Path(env)
    path = Path(f"/pipeline/input{index}")
    return path if path.is_dir() else None


def missing_outside_pipeline(values: dict[str, object]) -> str | None:
    """The error for options left unset that only a pipeline task fills in by default (``{flag: value}``)."""
    missing = [flag for flag, value in values.items() if value is None]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return f"error: {' and '.join(missing)} {verb} required outside a pipeline task"
