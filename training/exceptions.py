"""Errors raised by ``training`` (which runs without the provider, so it has its own).

Hierarchy (each class under its base; a root names its built-in base)::

    YamlDocumentError(ValueError)     a YAML document that does not load into its model; ``issues``
    └── ConfigError                   a fine-tuning recipe, preset name or ``--set`` override is invalid
    DatasetError(ValueError)          the dataset is missing or a row does not follow the contract
    BaseModelError(RuntimeError)      the base model cannot be found or prepared
    EvaluationError(RuntimeError)     the evaluation inputs are missing or inconsistent
    MergeError(ValueError)            the adapter to merge or the output folder is unusable
    ServedModelError(RuntimeError)    a served model cannot be asked, or gave no answer
    PrepareError(ValueError)          bad usage or input that stops dataset preparation
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.yamldoc import Issue

__all__ = [
    "BaseModelError",
    "ConfigError",
    "DatasetError",
    "EvaluationError",
    "MergeError",
    "PrepareError",
    "ServedModelError",
    "YamlDocumentError",
]


class YamlDocumentError(ValueError):
    """A YAML document that cannot be read, parsed or validated.

    ``issues`` holds one :class:`~training.yamldoc.Issue` per problem (each prints as one line
    ``file:line:column field: reason``); it is empty for a problem outside any document, given as text.
    """

    def __init__(self, issues: Sequence[Issue] | str) -> None:
        self.issues: list[Issue] = [] if isinstance(issues, str) else list(issues)
        super().__init__(issues if isinstance(issues, str) else "\n".join(map(str, self.issues)))


class ConfigError(YamlDocumentError):
    """A fine-tuning recipe, preset name or ``--set`` override is invalid."""


class DatasetError(ValueError):
    """The dataset is missing or a row does not follow the contract."""


class BaseModelError(RuntimeError):
    """The base model cannot be found or prepared."""


class EvaluationError(RuntimeError):
    """The evaluation inputs are missing or inconsistent."""


class MergeError(ValueError):
    """The adapter to merge or the output folder is unusable, with a message naming which."""


class ServedModelError(RuntimeError):
    """A served model cannot be asked (no endpoint, a refused request) or gave no answer."""


class PrepareError(ValueError):
    """Bad usage or input that stops dataset preparation, with a message naming what is wrong."""
