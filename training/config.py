"""Fine-tuning configuration: a small YAML file (or a named preset) with ``lora`` and ``sft`` sections.

``lora`` is passed to ``peft.LoraConfig`` and ``sft`` to ``trl.SFTConfig`` unchanged, so the YAML speaks the
libraries' own vocabulary; the top level holds what those two do not cover. The names in both sections are
checked against the two classes' own fields when the recipe is read, before any weights load.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from training.exceptions import ConfigError
from training.yamldoc import YamlDocument, load_model, validation_issues

__all__ = ["PRESETS_DIR", "FinetuneConfig", "load_config", "preset_names", "preset_path"]

PRESETS_DIR = Path(__file__).resolve().parent / "presets"


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
    """Read a YAML recipe and apply ``section.key=value`` overrides (values parsed as YAML).

    A bad value, or a name that ``SFTConfig``/``LoraConfig`` does not have, is reported as
    ``file:line:column field: reason``, or as the ``--set`` override it came from.
    """
    overrides = overrides or []
    config, document = load_model(
        path, FinetuneConfig, what="a fine-tuning recipe", overrides=overrides, error=ConfigError
    )
    _check_section_names(config, document, overrides)
    return config


def _check_section_names(config: FinetuneConfig, document: YamlDocument, overrides: list[str]) -> None:
    try:
        _sections_model().model_validate({"sft": config.sft, "lora": config.lora})
    except ValidationError as exc:
        raise ConfigError(validation_issues(exc, document, overrides=overrides)) from None


@functools.cache
def _sections_model() -> type[BaseModel]:
    """A model whose ``sft`` and ``lora`` accept exactly the init fields of TRL's and PEFT's config classes."""
    from peft import LoraConfig
    from trl import SFTConfig

    def names_of(name: str, config_class: type) -> type[BaseModel]:
        fields: Any = {f.name: (Any, None) for f in dataclasses.fields(config_class) if f.init}
        return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)

    return create_model(
        "RecipeSections",
        sft=(names_of("SFTSection", SFTConfig), None),
        lora=(names_of("LoraSection", LoraConfig), None),
    )
