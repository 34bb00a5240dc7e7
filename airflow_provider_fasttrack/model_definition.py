"""A model folder's ``model-definition.yaml`` (Backend.AI model services) as pydantic models.

The one definition of the format: backendai-lite reads it to start replicas, and the model-service operator
checks it before creating a service (a ``custom`` service without a usable definition fails at once, with the
file, line and field). No Airflow import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_provider_fasttrack.exceptions import ModelDefinitionError
from training.yamldoc import load_model

__all__ = [
    "DEFINITION_FILES",
    "HealthCheck",
    "ModelDefinition",
    "ModelEntry",
    "ModelServiceConfig",
    "PreStartAction",
    "parse_model_definition",
]

#: the file names looked for when a service names no ``model_definition_path``, in this order
DEFINITION_FILES = ("model-definition.yaml", "model-definition.yml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class HealthCheck(_Model):
    """How a replica is probed: ``GET path`` answering ``expected_status_code`` within ``max_wait_time``."""

    path: str = "/"
    interval: float = Field(default=10.0, ge=0)
    max_retries: int = Field(default=10, ge=0)
    max_wait_time: float = Field(default=15.0, gt=0)
    expected_status_code: int = Field(default=200, ge=100, le=599)
    initial_delay: float = Field(default=60.0, ge=0)

    @field_validator("path")
    @classmethod
    def _a_path_on_the_replica(cls, value: str) -> str:
        """The probe goes to the replica's own host and port: a path (and query), never another authority."""
        if not value.startswith("/") or value.startswith("//"):
            raise ValueError("must start with '/' (a single one): a path on the replica, not a host")
        if any(c.isspace() or not c.isprintable() or c in "\\#" for c in value):
            raise ValueError("must be a path and query without spaces, control characters, '\\' or '#'")
        return value


class PreStartAction(_Model):
    """One step before the start command, e.g. ``{action: run_command, args: {command: [...]}}``."""

    action: str
    args: dict[str, Any] = Field(default_factory=dict)


class ModelServiceConfig(_Model):
    """How one model is served: the start command (``{model_path}`` substituted), its port and health check."""

    pre_start_actions: list[PreStartAction] = Field(default_factory=list)
    start_command: str | list[str] = Field(min_length=1)
    shell: str = "/bin/bash"
    port: int = Field(ge=1, le=65535)
    health_check: HealthCheck | None = None


class ModelEntry(_Model):
    """One model of the folder."""

    name: str
    model_path: str
    service: ModelServiceConfig | None = None


class ModelDefinition(_Model):
    """The whole file: ``models: [...]``; the first model with a ``service`` is the one served."""

    models: list[ModelEntry] = Field(min_length=1)

    def served(self) -> ModelEntry | None:
        """The model that a service of this folder runs (None when no model has a ``service``)."""
        return next((entry for entry in self.models if entry.service is not None), None)


def parse_model_definition(source: str | Path, name: str) -> ModelDefinition:
    """Parse a model definition; raises :class:`ModelDefinitionError` naming ``name``, the line and the field."""
    definition, document = load_model(
        source, ModelDefinition, name=name, what="a model definition", error=ModelDefinitionError
    )
    if definition.served() is None:
        issue = document.issue(("models",), "no model has a 'service' section (start_command, port)")
        raise ModelDefinitionError([issue])
    return definition
