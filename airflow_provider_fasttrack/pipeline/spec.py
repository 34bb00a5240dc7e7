"""The FastTrack pipeline format as pydantic models, plus the optional ``airflow:`` block.

FastTrack's own fields are lenient (unknown fields warn, numbers may be strings) so that exports load
unmodified; the ``airflow:`` block belongs to this provider and rejects unknown fields to catch typos.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "AirflowOptions",
    "Notifications",
    "Ownership",
    "ParamSpec",
    "PipelineEnvironment",
    "PipelineSpec",
    "SlackNotification",
    "TaskEnvironment",
    "TaskSpec",
]


def _text(value: Any) -> Any:
    """Numbers and booleans become text (``'1.5'``); ``None`` stays for the field default to apply."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _empty_if_none(value: Any) -> Any:
    return "" if value is None else _text(value)


def _datetime(value: Any) -> Any:
    """A YAML date (``2026-01-01``) is midnight of that day."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    return value


def _list_if_none(value: Any) -> Any:
    return [] if value is None else value


def _dict_if_none(value: Any) -> Any:
    return {} if value is None else value


def _env_value(value: Any) -> Any:
    if value is None:
        raise ValueError("an environment variable needs a value (use '' for an empty one)")
    if isinstance(value, dict | list):
        raise ValueError("an environment variable value must be text, not a mapping or list")
    return _text(value)


Text = Annotated[str, BeforeValidator(_empty_if_none)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
EnvMap = Annotated[dict[str, EnvValue], BeforeValidator(_dict_if_none)]
SlotMap = Annotated[dict[str, Any], BeforeValidator(_dict_if_none)]
NameList = Annotated[list[Annotated[str, BeforeValidator(_text)]], BeforeValidator(_list_if_none)]


class _FastTrackModel(BaseModel):
    """FastTrack's part of the format: unknown fields are kept (and reported as warnings)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)


class _OwnModel(BaseModel):
    """This provider's part of the format: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, coerce_numbers_to_str=True)


class Ownership(_FastTrackModel):
    """Who owns the pipeline in Backend.AI; ``domain_name`` becomes the sessions' domain."""

    domain_name: Text = "default"
    scope: Text = "personal"


class PipelineEnvironment(_FastTrackModel):
    """Pipeline-wide environment variables, inherited by every task."""

    envs: EnvMap = Field(default_factory=dict)


class TaskEnvironment(_FastTrackModel):
    """Where and in what image a task runs, and its own environment variables (these win)."""

    project: Text | None = None
    scaling_group: Text | None = Field(default=None, alias="scaling-group")
    image: Text
    envs: EnvMap = Field(default_factory=dict)


class TaskSpec(_FastTrackModel):
    """One FastTrack task: one Backend.AI batch session."""

    name: Annotated[str, BeforeValidator(_text)]
    description: Text = ""
    type: Literal["Custom Task", "default", "serving"] = "Custom Task"
    cluster_mode: Literal["single-node", "multi-node"] = "single-node"
    cluster_size: int = Field(default=1, ge=1)
    module_uri: Text = ""
    command: Text = ""
    environment: TaskEnvironment
    resources: SlotMap = Field(
        default_factory=dict,
        json_schema_extra={
            "properties": {
                "cpu": {"type": ["integer", "string"], "description": "CPU cores"},
                "mem": {"type": ["string", "integer"], "description": "memory, e.g. 16g or 512m"},
                "cuda.shares": {"type": ["string", "number"], "description": "fractional GPUs, e.g. '1.5'"},
                "cuda.device": {"type": ["integer", "string"], "description": "whole GPUs"},
            }
        },
    )
    resource_opts: SlotMap = Field(
        default_factory=dict,
        json_schema_extra={
            "properties": {"shmem": {"type": ["string", "integer"], "description": "e.g. 2g"}}
        },
    )
    dependencies: NameList = Field(default_factory=list)
    mounts: NameList = Field(default_factory=list, description="'vfolder' or 'vfolder:alias'")
    skip: bool = False
    service: dict[str, Any] | None = None


class SlackNotification(_OwnModel):
    """Slack messages; a message is a Jinja template.

    Without ``channel``: an incoming webhook (an Airflow ``slackwebhook`` connection, default ``slack_default``).
    With ``channel``: a bot token posting with ``chat.postMessage`` (a ``slack`` connection, default
    ``slack_api_default``).
    """

    conn_id: Text | None = None
    channel: Text | None = None
    on_success: bool | str = False
    on_failure: bool | str = False


class Notifications(_OwnModel):
    """Where the pipeline reports its outcome."""

    slack: SlackNotification | None = None


JsonType = Literal["string", "integer", "number", "boolean", "array", "object", "null"]


class ParamSpec(_OwnModel):
    """One run parameter of the trigger form (an Airflow ``Param``): a default and JSON-schema keywords.

    Commands, environment values and Slack messages read it as ``{{ params.<name> }}``; a run overrides it from
    the trigger form or ``--conf``.
    """

    default: Any = None
    type: JsonType | list[JsonType] | None = None
    title: Text | None = None
    description: Text | None = None
    enum: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def keywords(self) -> dict[str, Any]:
        """The JSON-schema keywords (everything but ``default``), as ``Param(default, **schema)`` takes them."""
        return self.model_dump(exclude={"default"}, exclude_none=True)


class AirflowOptions(_OwnModel):
    """What FastTrack's export does not say but Airflow needs (all optional)."""

    dag_id: Text | None = None
    schedule: Text | None = Field(default=None, description="cron expression or preset such as @daily")
    start_date: Annotated[dt.datetime | None, BeforeValidator(_datetime)] = None
    timezone: Text = "UTC"
    catchup: bool = False
    max_runs: int | None = Field(
        default=None,
        ge=1,
        description="stop scheduling after this many scheduled runs (FastTrack's repetition count)",
    )
    retries: int = Field(default=0, ge=0)
    retry_delay_seconds: int = Field(default=300, ge=0)
    tags: NameList = Field(default_factory=list)
    owner: Text = "airflow"
    conn_id: Text = "backendai_default"
    pool_policy: Literal["gpu", "none"] = "gpu"
    vfolder: Text | None = None
    fail_fast: bool = True
    notifications: Notifications = Field(default_factory=Notifications)
    params: dict[str, ParamSpec] = Field(
        default_factory=dict, description="run parameters of the trigger form, read as {{ params.<name> }}"
    )


class PipelineSpec(_FastTrackModel):
    """A FastTrack pipeline export, optionally with an ``airflow:`` block."""

    version: Text = ""
    name: Annotated[str, BeforeValidator(_text)]
    description: Text = ""
    ownership: Ownership = Field(default_factory=Ownership)
    environment: PipelineEnvironment = Field(default_factory=PipelineEnvironment)
    tasks: list[TaskSpec]
    airflow: AirflowOptions = Field(default_factory=AirflowOptions)

    @property
    def dag_id(self) -> str:
        """The DAG id: ``airflow.dag_id``, else the pipeline name with unsafe characters replaced."""
        if self.airflow.dag_id:
            return self.airflow.dag_id
        return "".join(c if c.isalnum() or c in "._-" else "_" for c in self.name)

    @property
    def vfolder(self) -> str:
        """The vfolder that holds the pipeline's artifacts: ``airflow.vfolder`` or ``fasttrack-<name>``."""
        if self.airflow.vfolder:
            return self.airflow.vfolder
        safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in self.name)
        return f"fasttrack-{safe}"[:64]

    def task(self, name: str) -> TaskSpec:
        """The task called ``name``."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)
