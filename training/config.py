"""Fine-tuning configuration: a small YAML file (or a named preset) with ``lora`` and ``sft`` sections.

``lora`` is passed to ``peft.LoraConfig`` and ``sft`` to ``trl.SFTConfig`` unchanged, so the YAML speaks the
libraries' own vocabulary; the top level holds what those two do not cover.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airflow_provider_fasttrack.pipeline.source import format_loc, parse_yaml

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


class ConfigError(ValueError):
    """A configuration file or override is invalid."""


class FinetuneConfig(BaseModel):
    """One fine-tuning recipe."""

    model_config = ConfigDict(extra="forbid")

    base_model: str
    attn_implementation: str = "auto"
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    lora: dict[str, Any] = Field(default_factory=dict)
    sft: dict[str, Any] = Field(default_factory=dict)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(preset_names())}")
    return path


def load_config(path: Path, overrides: list[str] | None = None) -> FinetuneConfig:
    """Read a YAML config and apply ``section.key=value`` overrides (values parsed as YAML).

    A bad value is reported as ``file:line:column field: reason``, or as the ``--set`` override it came from.
    """
    try:
        document = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration: {e.strerror}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if duplicates := document.duplicate_key_issues():
        raise ConfigError("\n".join(map(str, duplicates)))
    if not isinstance(document.data, dict):
        raise ConfigError(f"{path}:1:1: expected a mapping at the top level")
    overrides = overrides or []
    data = apply_overrides(document.data, overrides)
    try:
        return FinetuneConfig.model_validate(data)
    except ValidationError as e:
        problems = []
        for error in e.errors(include_input=False, include_url=False):
            loc = tuple(error["loc"])
            override = _override_for(loc, overrides)
            if override is None:
                unknown = error["type"] == "extra_forbidden"
                problems.append(str(document.issue(loc, error["msg"], key=unknown)))
            else:
                problems.append(f"--set {override}: field {format_loc(loc)}: {error['msg']}")
        raise ConfigError("\n".join(problems)) from None


def _override_for(loc: tuple[str | int, ...], overrides: list[str]) -> str | None:
    """The last ``--set`` override that wrote ``loc`` or a section above it."""
    for item in reversed(overrides):
        key = tuple(item.partition("=")[0].split("."))
        if loc[: len(key)] == key:
            return item
    return None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. sft.max_steps=10")
        target = data
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        target[leaf] = yaml.safe_load(value)
    return data
