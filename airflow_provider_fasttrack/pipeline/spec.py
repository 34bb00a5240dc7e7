"""The FastTrack pipeline format as pydantic models, plus the optional ``airflow:`` block.

FastTrack's own fields are lenient (unknown fields warn, numbers may be strings) so that exports load
unmodified; the ``airflow:`` block belongs to this provider and rejects unknown fields to catch typos.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from airflow_provider_fasttrack.durations import duration_seconds
from airflow_provider_fasttrack.mounts import VFOLDER_NAME

__all__ = [
    "TASK_TYPES",
    "AirflowOptions",
    "ApprovalSpec",
    "AssetKind",
    "AssetOptions",
    "Notifications",
    "Ownership",
    "ParamSpec",
    "PipelineEnvironment",
    "PipelineParam",
    "PipelineSpec",
    "QualityGate",
    "ServiceSpec",
    "SlackNotification",
    "TaskEnvironment",
    "TaskRetry",
    "TaskSpec",
]

#: Every task type spelling FastTrack releases have exported -> what the task is. 25.x writes ``Custom Task``
#: (older files ``default``) and ``serving``; 26.x writes ``custom`` and ``deployment``.
TASK_TYPES: dict[str, Literal["custom", "serving"]] = {
    "Custom Task": "custom",
    "custom": "custom",
    "default": "custom",
    "serving": "serving",
    "deployment": "serving",
}
#: the kinds of artefact a task may produce as an Airflow asset (``airflow.assets.outlets``)
AssetKind = Literal["dataset", "adapter", "model"]
TaskType = Literal["Custom Task", "custom", "default", "deployment", "serving"]


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


def _whole_number(value: Any) -> Any:
    """``true`` is not a count (pydantic would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    return value


def _seconds(value: Any) -> Any:
    """A number of seconds, or text with a unit (``30s``, ``5m``, ``1h``); ``None`` stays."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    return duration_seconds(value)


def _env_value(value: Any) -> Any:
    if value is None:
        raise ValueError("an environment variable needs a value (use '' for an empty one)")
    if isinstance(value, dict | list):
        raise ValueError("an environment variable value must be text, not a mapping or list")
    return _text(value)


def _vfolder_name(value: str | None) -> str | None:
    if value is not None and not VFOLDER_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a vfolder name")
    return value


Text = Annotated[str, BeforeValidator(_empty_if_none)]
EnvValue = Annotated[str, BeforeValidator(_env_value)]
EnvMap = Annotated[dict[str, EnvValue], BeforeValidator(_dict_if_none)]
SlotMap = Annotated[dict[str, Any], BeforeValidator(_dict_if_none)]
NameList = Annotated[list[Annotated[str, BeforeValidator(_text)]], BeforeValidator(_list_if_none)]
#: a time limit: seconds, or text such as 30m, 2h
Duration = Annotated[float | None, BeforeValidator(_seconds), Field(gt=0, allow_inf_nan=False)]


class _FastTrackModel(BaseModel):
    """FastTrack's part of the format: unknown fields are kept (and reported as warnings)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)


class _OwnModel(BaseModel):
    """This provider's part of the format: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, coerce_numbers_to_str=True)


class Ownership(_FastTrackModel):
    """Who owns the pipeline in Backend.AI: its domain (the sessions' ``domain``) and scope.

    FastTrack 25.x writes ``domain_name`` and ``scope: personal``; 26.x ``domain`` and ``scope: user`` or
    ``project``. Backend.AI sessions always belong to the connection's user, in the task's project.
    """

    domain_name: Text | None = None
    domain: Text | None = Field(default=None, description="FastTrack 26.x spelling of domain_name")
    scope: Literal["personal", "user", "project"] = "personal"

    @property
    def session_domain(self) -> str:
        """The Backend.AI domain of the pipeline's sessions (``default`` when the file names none)."""
        return self.domain_name or self.domain or "default"


class PipelineEnvironment(_FastTrackModel):
    """Pipeline-wide environment variables, inherited by every task."""

    envs: EnvMap = Field(default_factory=dict)


class TaskEnvironment(_FastTrackModel):
    """Where and in what image a task runs, and its own environment variables (these win)."""

    project: Text | None = None
    scaling_group: Text | None = Field(default=None, alias="scaling-group")
    image: Text
    envs: EnvMap = Field(default_factory=dict)


class ServiceSpec(_FastTrackModel):
    """The ``service:`` block of a serving task: a Backend.AI model service from a model vfolder.

    ``ephemeral`` is FastTrack's own (delete the service when the run ends); ``model_mount_destination: ''``
    means the default (``/models``).
    """

    name: Annotated[str, BeforeValidator(_text)]
    model: Text = ""
    model_mount_destination: Text = ""
    model_definition_path: Text | None = None
    vfolder_subpath: Text = ""
    runtime_variant: Text = "custom"
    replicas: int = Field(default=1, ge=0)
    open_to_public: bool = False
    ephemeral: bool = False


class TaskRetry(_FastTrackModel):
    """FastTrack 26.x ``retry``: attempts in all (the first included) and the seconds between them."""

    max_attempts: Annotated[int, BeforeValidator(_whole_number), Field(ge=1)]
    delay: Annotated[
        float | None,
        BeforeValidator(_seconds),
        Field(ge=0, allow_inf_nan=False, description="seconds, or text such as 30s, 5m, 1h"),
    ] = None


class TaskSpec(_FastTrackModel):
    """One FastTrack task: one Backend.AI batch session."""

    name: Annotated[str, BeforeValidator(_text)]
    description: Text = ""
    type: TaskType = "Custom Task"
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
    continue_on_failure: bool = Field(
        default=False,
        description="a failure of this task neither fails the run nor stops its downstream tasks",
    )
    retry: TaskRetry | None = None
    service: ServiceSpec | None = None

    @property
    def is_serving(self) -> bool:
        """A model-service task (``serving``, or ``deployment`` as FastTrack 26.x writes it)."""
        return TASK_TYPES[self.type] == "serving"


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


class _ParamSchema(BaseModel):
    """A run parameter's default and JSON-schema keywords, as Airflow's ``Param(default, **schema)`` takes them."""

    default: Any = None
    type: JsonType | list[JsonType] | None = None
    title: Text | None = None
    description: Text | None = None
    enum: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def keywords(self) -> dict[str, Any]:
        """The JSON-schema keywords (everything but ``default``)."""
        return self.model_dump(include=set(_ParamSchema.model_fields) - {"default"}, exclude_none=True)


class ParamSpec(_ParamSchema, _OwnModel):
    """One run parameter of the trigger form (an Airflow ``Param``): a default and JSON-schema keywords.

    Commands, environment values and Slack messages read it as ``{{ params.<name> }}``; a run overrides it from
    the trigger form or ``--conf``.
    """


class PipelineParam(_ParamSchema, _FastTrackModel):
    """One entry of FastTrack 26.x's ``params:`` list: a run parameter with its name."""

    name: Annotated[str, BeforeValidator(_text)]


class QualityGate(_OwnModel):
    """A quality gate: its own task that reads the result (XCom) of ``after`` and lets the tasks in ``before``
    (and everything downstream of them) run only when ``result[key] > above``; otherwise they are skipped.

    ``key`` and ``above`` may be templates (``{{ params.<name> }}``); ``above`` renders to a number.
    """

    after: Annotated[str, BeforeValidator(_text)]
    key: Annotated[str, BeforeValidator(_text)]
    above: Annotated[str, BeforeValidator(_text)]
    before: Annotated[NameList, Field(min_length=1)]


class ApprovalSpec(_OwnModel):
    """A person approves or rejects before the ``before`` tasks run (``airflow.approvals.<name>``)."""

    after: Annotated[str, BeforeValidator(_text)]
    before: NameList
    subject: Text | None = Field(default=None, description="the request's headline (a template)")
    body: Text | None = Field(
        default=None, description="markdown (a template); default: the evaluation summary of the run"
    )
    response_timeout: Duration = Field(
        default=None, description="how long to wait for an answer: seconds, or text such as 30m, 24h"
    )
    default: Literal["reject", "approve", "none"] = Field(
        default="reject", description="the answer taken when nobody answers in time; none: the task fails"
    )


class AssetOptions(_OwnModel):
    """Airflow assets: what the pipeline's tasks produce, and the assets whose events start this pipeline."""

    outlets: Annotated[dict[str, AssetKind], BeforeValidator(_dict_if_none)] = Field(
        default_factory=dict,
        description="task -> the kind of artefact it produces; its success records an event of that asset",
    )
    schedule: NameList | None = Field(
        default=None,
        description="run when all of these assets (names or URIs) have new events, instead of airflow.schedule",
    )


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
    execution_timeout: Duration = Field(
        default=None, description="each task's time limit: seconds, or text such as 30m, 2h"
    )
    tags: NameList = Field(default_factory=list)
    owner: Text = "airflow"
    conn_id: Text = "backendai_default"
    pool_policy: Literal["gpu", "none"] = "gpu"
    vfolder: Text | None = None
    model_storage: Annotated[str | None, AfterValidator(_vfolder_name)] = Field(
        default=None,
        description="the model vfolder (model-type) that serving tasks without service.model serve at /models",
    )
    fail_fast: bool = True
    notifications: Notifications = Field(default_factory=Notifications)
    params: dict[str, ParamSpec] = Field(
        default_factory=dict, description="run parameters of the trigger form, read as {{ params.<name> }}"
    )
    quality_gates: dict[str, QualityGate] = Field(
        default_factory=dict,
        description="name -> a task that holds its before tasks back unless the after task's result passes",
    )
    approvals: dict[str, ApprovalSpec] = Field(
        default_factory=dict, description="human approvals: name -> where it waits and what it asks"
    )
    assets: AssetOptions | None = None


class PipelineSpec(_FastTrackModel):
    """A FastTrack pipeline export, optionally with an ``airflow:`` block."""

    version: Text = ""
    name: Annotated[str, BeforeValidator(_text)]
    description: Text = ""
    ownership: Ownership = Field(default_factory=Ownership)
    environment: PipelineEnvironment = Field(default_factory=PipelineEnvironment)
    params: Annotated[list[PipelineParam], BeforeValidator(_list_if_none)] = Field(
        default_factory=list, description="run parameters of the trigger form, read as {{ params.<name> }}"
    )
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
