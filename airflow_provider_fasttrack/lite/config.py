"""backendai-lite configuration: keypairs, scaling groups, image mapping, sandbox and fault knobs (YAML)."""

from __future__ import annotations

import os
import secrets
import string
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from airflow_provider_fasttrack import slots as slotlib
from airflow_provider_fasttrack.exceptions import LiteConfigError
from training.yamldoc import load_model

__all__ = [
    "FaultConfig",
    "ImageMapping",
    "KeypairConfig",
    "LiteConfig",
    "Preset",
    "ScalingGroupConfig",
    "ServicesConfig",
    "generate_keypair",
    "load_config",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeypairConfig(_Model):
    """One keypair and its resource policy."""

    access_key: str = Field(min_length=4)
    secret_key: str = Field(min_length=8, repr=False)
    user_email: str = "user@lite.local"
    #: the user owning the keypair: keypairs with the same ``user_uuid`` are one user's, who sees the session
    #: events of all of them; unset, the keypair is a user of its own (a UUID derived from the access key)
    user_uuid: str = ""
    #: an admin sees every owner's sessions in ``/lite/sessions`` and may watch their events
    is_admin: bool = False
    #: keypair resource policy ``total_resource_slots`` (unset slot: unlimited)
    total_resource_slots: dict[str, Any] = Field(default_factory=dict)
    #: keypair resource policy ``max_concurrent_sessions`` (0: unlimited)
    max_concurrent_sessions: int = Field(default=0, ge=0)

    @field_validator("user_uuid")
    @classmethod
    def _canonical_uuid(cls, value: str) -> str:
        return str(uuid.UUID(value)) if value else value

    @model_validator(mode="after")
    def _own_user_by_default(self) -> KeypairConfig:
        if not self.user_uuid:
            self.user_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"backendai-lite:keypair:{self.access_key}"))
        return self

    def limits(self) -> slotlib.Slots:
        """The parsed total resource slots."""
        return slotlib.parse_slots(self.total_resource_slots, allow_unlimited=True)

    def __repr__(self) -> str:
        return f"KeypairConfig(access_key={self.access_key!r}, secret_key='***')"


class ScalingGroupConfig(_Model):
    """One scaling group: the slot capacity of its (single, local) agent."""

    slots: dict[str, Any]

    def capacity(self) -> slotlib.Slots:
        """The parsed slot capacity."""
        return slotlib.parse_slots(self.slots, allow_unlimited=True)


class ImageMapping(_Model):
    """Maps image names matching ``pattern`` (a glob) to a local runtime."""

    pattern: str
    #: a directory whose ``bin/`` goes first on PATH (a venv or prefix); empty: the server's own Python
    runtime: str | None = None

    def bin_dir(self) -> str:
        """The directory put first on PATH for sessions of this image."""
        if self.runtime:
            return str(Path(self.runtime) / "bin")
        return str(Path(sys.executable).parent)


class Preset(_Model):
    """A resource preset, as answered by ``/resource/check-presets``."""

    name: str
    resource_slots: dict[str, Any]
    shared_memory: str | None = None


class FaultConfig(_Model):
    """Fault injection, to exercise clients' retry paths against a real server."""

    #: fraction of requests answered with an error status
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    #: statuses to answer; 429 comes with ``Retry-After``, 403 is the manager's ``not-enough-permission``
    error_statuses: list[int] = Field(default_factory=lambda: [500, 503, 429])
    #: ``before``: the request never takes effect; ``after``: it takes effect but the client sees the error
    error_phase: Literal["before", "after", "both"] = "both"
    retry_after_seconds: float = Field(default=1.0, ge=0.0)
    #: fraction of requests delayed by ``latency_seconds``
    latency_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_seconds: float = Field(default=0.2, ge=0.0)
    #: fraction of event streams closed by the server after ``drop_event_stream_after`` events
    drop_event_stream_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    drop_event_stream_after: int = Field(default=1, ge=0)
    #: path prefixes never faulted
    exempt_paths: list[str] = Field(default_factory=lambda: ["/lite/"])
    #: only paths matching one of these shell patterns are faulted (``/session/*/logs``); empty: every path
    paths: list[str] = Field(default_factory=list)
    seed: int | None = None

    @field_validator("error_statuses")
    @classmethod
    def _statuses_are_errors(cls, value: list[int]) -> list[int]:
        for status in value:
            if status not in (403, 429) and not 500 <= status <= 599:
                raise ValueError(f"{status} is neither 403, 429 nor a 5xx status")
        if not value:
            raise ValueError("needs at least one status")
        return value


class ServicesConfig(_Model):
    """The model-service endpoint's limits, each per service: one service's traffic cannot starve another's."""

    #: connections to one service's replicas at a time; more requests wait up to ``pool_timeout``, then 503
    max_connections: int = Field(default=32, ge=1)
    #: seconds to connect to a replica
    connect_timeout: float = Field(default=10.0, gt=0)
    #: seconds a replica may go silent: before its answer starts, or between two chunks of it (then 503 or cut)
    read_timeout: float = Field(default=300.0, gt=0)
    #: seconds a replica may take to accept the next chunk of a request body
    write_timeout: float = Field(default=60.0, gt=0)
    #: seconds a request waits for one of the service's connections
    pool_timeout: float = Field(default=10.0, gt=0)


class LiteConfig(_Model):
    """The whole configuration file."""

    keypairs: list[KeypairConfig] = Field(default_factory=list)
    scaling_groups: dict[str, ScalingGroupConfig] = Field(default_factory=dict)
    default_scaling_group: str = "default"
    #: ``cuda.shares`` the default scaling group declares for a mock accelerator: the scheduler accounts them,
    #: no device is attached and GPU sessions run on the CPU (``serve --mock-gpu-shares N`` sets it too)
    mock_gpu_shares: Decimal | None = Field(default=None, gt=0)
    images: list[ImageMapping] = Field(default_factory=lambda: [ImageMapping(pattern="*")])
    presets: list[Preset] = Field(default_factory=list)
    #: per-kernel resources of a session that asks for none
    default_resources: dict[str, Any] = Field(default_factory=lambda: {"cpu": 1, "mem": "1g"})
    #: ``auto``: private mount namespaces when the OS allows; ``namespace``: require them; ``none``: never
    sandbox: Literal["auto", "namespace", "none"] = "auto"
    #: seconds between SIGTERM and SIGKILL when a session is destroyed without ``forced``
    kill_grace_seconds: float = Field(default=2.0, ge=0.0)
    #: multi-node batch sessions: the startup command runs on the main kernel only (as on a real cluster, where
    #: sub kernels wait to be driven from main), or on every kernel (each with its own cluster variables)
    multi_node_command: Literal["main", "all"] = "main"
    #: server environment variables (globs) passed on to sessions, so the default runtime finds its packages
    inherit_environment: list[str] = Field(
        default_factory=lambda: ["PYTHONPATH", "HF_*", "TRANSFORMERS_*", "TOKENIZERS_PARALLELISM", "TZ"]
    )
    #: largest API request body in bytes (413 above it); the storage side (``/upload``) is not limited
    max_request_body_bytes: int = Field(default=2**20, ge=1024)
    #: seconds an upload or download token stays valid after ``request-upload``/``request-download``
    transfer_token_seconds: float = Field(default=3600.0, gt=0)
    #: the model-service endpoint's connection limit and timeouts (per service)
    services: ServicesConfig = Field(default_factory=ServicesConfig)
    #: count requests per route and client connections; ``GET /lite/requests`` answers them (for measurements)
    request_stats: bool = False
    faults: FaultConfig = Field(default_factory=FaultConfig)

    def model_post_init(self, context: Any, /) -> None:
        if not self.scaling_groups:
            self.scaling_groups = {"default": ScalingGroupConfig(slots=_host_slots())}
        if self.default_scaling_group not in self.scaling_groups:
            self.default_scaling_group = next(iter(self.scaling_groups))
        if self.mock_gpu_shares is not None:
            self.declare_mock_gpu_shares(self.mock_gpu_shares)
        seen: set[str] = set()
        for keypair in self.keypairs:
            if keypair.access_key in seen:
                raise ValueError(f"access key {keypair.access_key!r} is configured twice")
            seen.add(keypair.access_key)
        for name, group in self.scaling_groups.items():
            try:
                group.capacity()
            except ValueError as exc:
                raise ValueError(f"scaling_groups.{name}.slots: {exc}") from exc
        if not self.presets:
            self.presets = [
                Preset(name="cpu-small", resource_slots={"cpu": 1, "mem": "1g"}),
                Preset(name="cpu-large", resource_slots={"cpu": 4, "mem": "8g"}),
                Preset(name="gpu-half", resource_slots={"cpu": 2, "mem": "8g", "cuda.shares": "0.5"}),
            ]

    def declare_mock_gpu_shares(self, shares: Decimal) -> None:
        """The default scaling group declares ``shares`` ``cuda.shares`` (accounted only: no device)."""
        group = self.scaling_groups[self.default_scaling_group]
        group.slots = {**group.slots, "cuda.shares": str(shares)}
        self.mock_gpu_shares = shares

    def mock_accelerator_banner(self) -> str | None:
        """What the server says at start about a mock accelerator (``None`` without one)."""
        if self.mock_gpu_shares is None:
            return None
        return (
            f"mock accelerator: scaling group {self.default_scaling_group!r} declares "
            f"cuda.shares={self.mock_gpu_shares} for the scheduler to account; no GPU is attached, "
            "sessions that request cuda.shares run on the CPU"
        )

    def known_slot_types(self) -> set[str]:
        """Slot names the server knows (the base ones plus every configured one)."""
        known = {"cpu", "mem", "cuda.shares", "cuda.device"}
        for group in self.scaling_groups.values():
            known.update(group.slots)
        return known

    def keypair(self, access_key: str) -> KeypairConfig | None:
        """The keypair with this access key, if configured."""
        return next((kp for kp in self.keypairs if kp.access_key == access_key), None)


def _host_slots() -> dict[str, Any]:
    cpus = os.cpu_count() or 1
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        mem = 8 * 2**30
    return {"cpu": cpus, "mem": str(mem)}


def generate_keypair() -> KeypairConfig:
    """A random development keypair in the manager's format (``AKIA`` + 16, 40-character secret)."""
    upper = string.ascii_uppercase + string.digits
    access = "AKIA" + "".join(secrets.choice(upper) for _ in range(16))
    alphabet = string.ascii_letters + string.digits + "/+"
    secret = "".join(secrets.choice(alphabet) for _ in range(40))
    return KeypairConfig(access_key=access, secret_key=secret)


def load_config(path: str | os.PathLike[str] | None) -> LiteConfig:
    """Load and validate the YAML configuration; ``None`` gives the defaults. Raises :class:`LiteConfigError`."""
    if path is None:
        return LiteConfig()
    config, _ = load_model(
        Path(path),
        LiteConfig,
        what="the configuration",
        empty_is_mapping=True,
        secret=lambda loc: "secret_key" in loc,
        error=LiteConfigError,
    )
    return config
