"""Training recipes: a small YAML file (or a named preset) with ``lora`` and ``sft`` sections.

Fine-tuning recipes live in ``presets/``, continual pre-training recipes (``python -m training pretrain``) in
``presets/pretrain/``; both have the same sections.

``lora`` is passed to ``peft.LoraConfig`` and ``sft`` to ``trl.SFTConfig`` unchanged, so the YAML speaks the
libraries' own vocabulary; the top level holds what those two do not cover. The names in both sections are
checked against the two classes' own fields when the recipe is read, before any weights load.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from training.exceptions import ConfigError
from training.yamldoc import YamlDocument, load_model, validation_issues

__all__ = [
    "PRESETS_DIR",
    "PRETRAIN_PRESETS_DIR",
    "FinetuneConfig",
    "PretrainConfig",
    "load_config",
    "load_pretrain_config",
    "preset_names",
    "preset_path",
]

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PRETRAIN_PRESETS_DIR = PRESETS_DIR / "pretrain"


class FinetuneConfig(BaseModel):
    """One fine-tuning recipe."""

    model_config = ConfigDict(extra="forbid")

    base_model: str
    attn_implementation: str = "auto"
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    lora: dict[str, Any] = Field(default_factory=dict)
    sft: dict[str, Any] = Field(default_factory=dict)


class PretrainConfig(FinetuneConfig):
    """One continual pre-training recipe: a fine-tuning recipe's fields, the training method and the held-out share.

    ``method: lora`` trains a LoRA adapter (``lora`` section) and merges it into the written model; ``full``
    trains every weight (the ``lora`` section is then not used).
    """

    method: Literal["lora", "full"] = "lora"
    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 42


Recipe = TypeVar("Recipe", bound=FinetuneConfig)


def add_run_arguments(parser: argparse.ArgumentParser, *, base_model_help: str, set_example: str) -> None:
    """The options every training step that runs a recipe takes: base model, overrides, resume, trackers, cache."""
    parser.add_argument("--base-model", help=base_model_help)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a recipe value, e.g. {set_example} (repeatable)",
    )
    parser.add_argument(
        "--resume",
        default="auto",
        help="'auto' (last checkpoint in OUTPUT/checkpoints if any), 'no', or a checkpoint folder",
    )
    parser.add_argument(
        "--report-to", default=None, help="experiment trackers, e.g. wandb,mlflow (default: none)"
    )
    parser.add_argument("--model-cache", type=Path, default=None, help="where converted base models are kept")


def preset_names(folder: Path = PRESETS_DIR) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml"))


def preset_path(name: str, folder: Path = PRESETS_DIR) -> Path:
    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(preset_names(folder))}")
    return path


def load_config(path: Path, overrides: list[str] | None = None) -> FinetuneConfig:
    """Read a YAML recipe and apply ``section.key=value`` overrides (values parsed as YAML).

    A bad value, or a name that ``SFTConfig``/``LoraConfig`` does not have, is reported as
    ``file:line:column field: reason``, or as the ``--set`` override it came from.
    """
    return _load_recipe(path, FinetuneConfig, "a fine-tuning recipe", overrides or [])


def load_pretrain_config(path: Path, overrides: list[str] | None = None) -> PretrainConfig:
    """Read a continual pre-training recipe, checked and reported as :func:`load_config` does."""
    return _load_recipe(path, PretrainConfig, "a pre-training recipe", overrides or [])


def _load_recipe(path: Path, model: type[Recipe], what: str, overrides: list[str]) -> Recipe:
    config, document = load_model(path, model, what=what, overrides=overrides, error=ConfigError)
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
