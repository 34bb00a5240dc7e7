"""``ServiceRequest``: what one Backend.AI model service asks for, and its ``POST /services`` body.

The one definition of a model service's fields, of the runtime variants and of their defaults. The pipeline
factory produces it from a ``type: serving`` task, the operator templates and posts it; backendai-lite reads
:data:`RUNTIME_VARIANTS`, :data:`VARIANT_DEFAULTS` and :data:`SERVICE_NAME` too. No Airflow import.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from airflow_provider_fasttrack.mounts import Mount
from airflow_provider_fasttrack.session_request import CLUSTER_MODES, SessionDefaults

__all__ = [
    "MODEL_MOUNT_DESTINATION",
    "RUNTIME_VARIANTS",
    "SERVICE_NAME",
    "SERVICE_REQUEST_FIELDS",
    "VARIANT_DEFAULTS",
    "ServiceRequest",
    "VariantDefaults",
    "service_name_problem",
    "vfolder_subpath_problem",
]

#: the runtime variants the manager knows; ``custom`` reads the model folder's model-definition.yaml
RUNTIME_VARIANTS = ("custom", "vllm", "nim", "huggingface-tgi", "sglang", "modular-max", "cmd")
#: where the model folder is mounted; only ``custom`` and ``cmd`` may choose another place
MODEL_MOUNT_DESTINATION = "/models"
#: a service name, matched in full: word characters and '-', not starting or ending with '-'
SERVICE_NAME = re.compile(r"\w[\w-]*\w")
SERVICE_NAME_MIN = 4
SERVICE_NAME_MAX = 64


@dataclass(frozen=True)
class VariantDefaults:
    """A runtime variant's server: its health path and port, and the command that starts it."""

    health_path: str
    port: int
    start_command: str


#: what a non-custom variant runs on a replica ({model_path} and {port} substituted)
VARIANT_DEFAULTS: dict[str, VariantDefaults] = {
    "vllm": VariantDefaults("/health", 8000, "vllm serve {model_path} --host 0.0.0.0 --port {port}"),
    "huggingface-tgi": VariantDefaults(
        "/info", 3000, "text-generation-launcher --model-id {model_path} --port {port}"
    ),
    "nim": VariantDefaults("/v1/health/ready", 8000, "/opt/nim/start_server.sh"),
    "sglang": VariantDefaults(
        "/health", 9001, "python -m sglang.launch_server --model-path {model_path} --port {port}"
    ),
}


def service_name_problem(name: str) -> str | None:
    """Why ``name`` is not a service name, or ``None``."""
    if not SERVICE_NAME_MIN <= len(name) <= SERVICE_NAME_MAX or not SERVICE_NAME.fullmatch(name):
        return (
            f"{name!r} is not a service name ({SERVICE_NAME_MIN}-{SERVICE_NAME_MAX} letters, digits, '_' "
            "or '-', not starting or ending with '-')"
        )
    return None


def vfolder_subpath_problem(subpath: str) -> str | None:
    """Why ``subpath`` is not a folder inside the model vfolder (relative, no ``..``), or ``None``."""
    if subpath.startswith("/") or ".." in subpath.split("/"):
        return f"{subpath!r} is not a folder inside the model vfolder (a relative path without '..')"
    return None


@dataclass
class ServiceRequest:
    """One Backend.AI model service: a model folder served by ``replicas`` inference sessions.

    :param name: the service name (unique per owner; a non-ephemeral service of this name is reused).
    :param model: the model vfolder (name or id), mounted at ``model_mount_destination``.
    :param runtime_variant: one of :data:`RUNTIME_VARIANTS`; ``custom`` runs the folder's model definition.
    :param model_definition_path: the model definition inside the folder (default ``model-definition.yaml``).
    :param model_mount_destination: ``/models`` unless the variant is ``custom`` or ``cmd``; ``''`` is the default.
    :param vfolder_subpath: the folder inside the model vfolder that is mounted (default: the whole vfolder).
    :param extra_mounts: more vfolders in FastTrack syntax, ``"vf"`` or ``"vf:alias"`` (keyed by id in the body).
    :param resources: per-replica slots; ``env``: the replicas' environment.
    :param open_to_public: the endpoint answers without a token.
    """

    #: rendered by Airflow in place when the request is an operator's template field
    template_fields: ClassVar[tuple[str, ...]] = (
        "name",
        "model",
        "vfolder_subpath",
        "image",
        "env",
        "startup_command",
    )

    name: str
    model: str
    image: str
    runtime_variant: str = "custom"
    replicas: int = 1
    resources: dict[str, Any] = field(default_factory=dict)
    resource_opts: dict[str, Any] = field(default_factory=dict)
    cluster_mode: str = "single-node"
    cluster_size: int = 1
    model_definition_path: str | None = None
    model_mount_destination: str = MODEL_MOUNT_DESTINATION
    vfolder_subpath: str | None = None
    extra_mounts: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    project: str | None = None
    domain: str | None = None
    scaling_group: str | None = None
    startup_command: str | None = None
    bootstrap_script: str | None = None
    open_to_public: bool = False
    tag: str | None = None

    def __post_init__(self) -> None:
        if self.runtime_variant not in RUNTIME_VARIANTS:
            raise ValueError(
                f"runtime_variant {self.runtime_variant!r} is not one of {', '.join(RUNTIME_VARIANTS)}"
            )
        if self.cluster_mode not in CLUSTER_MODES:
            raise ValueError(f"cluster_mode must be 'single-node' or 'multi-node', not {self.cluster_mode!r}")
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) or self.replicas < 0:
            raise ValueError(f"replicas must be a whole number >= 0, not {self.replicas!r}")
        self.model_mount_destination = self.model_mount_destination or MODEL_MOUNT_DESTINATION
        if self.model_mount_destination != MODEL_MOUNT_DESTINATION and self.runtime_variant not in (
            "custom",
            "cmd",
        ):
            raise ValueError(
                f"model_mount_destination must be {MODEL_MOUNT_DESTINATION} for runtime_variant "
                f"{self.runtime_variant!r} (only custom and cmd may choose)"
            )
        self.resources = dict(self.resources or {})
        self.resource_opts = dict(self.resource_opts or {})
        self.env = dict(self.env or {})
        self.extra_mounts = list(self.extra_mounts or ())

    def serialize(self) -> dict[str, Any]:
        """Plain JSON, as Airflow shows the template field in the UI and stores it in the serialized DAG."""
        return asdict(self)

    def body(
        self,
        name: str | None = None,
        *,
        defaults: SessionDefaults | None = None,
        extra_mount_ids: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The ``POST /services`` body.

        :param name: the service name to create (default :attr:`name`; an ephemeral service gets a per-run name).
        :param defaults: the connection's project, domain and scaling group, for the fields left unset.
        :param extra_mount_ids: vfolder name -> id, for :attr:`extra_mounts` (the manager keys them by id).
        """
        project = self.project or (defaults.project if defaults else None) or "default"
        domain = self.domain or (defaults.domain if defaults else None) or "default"
        scaling_group = self.scaling_group or (defaults.scaling_group if defaults else None) or "default"
        ids = dict(extra_mount_ids or {})
        extra: dict[str, Any] = {}
        for text in self.extra_mounts:
            mount = Mount.parse(text)
            option = {"type": "bind", "mount_destination": mount.path_in_session}
            extra[ids.get(mount.name, mount.name)] = option
        config: dict[str, Any] = {
            "model": self.model,
            "model_mount_destination": self.model_mount_destination,
            "environ": dict(self.env),
            "resources": dict(self.resources),
            "extra_mounts": extra,
        }
        optional_config = {
            "model_definition_path": self.model_definition_path,
            "vfolder_subpath": self.vfolder_subpath,
            "scaling_group": scaling_group,
            "resource_opts": dict(self.resource_opts) or None,
        }
        config.update({key: value for key, value in optional_config.items() if value is not None})
        body: dict[str, Any] = {
            "name": name or self.name,
            "replicas": self.replicas,
            "image": self.image,
            "runtime_variant": self.runtime_variant,
            "group": project,
            "domain": domain,
            "cluster_mode": self.cluster_mode,
            "cluster_size": self.cluster_size,
            "open_to_public": self.open_to_public,
            "config": config,
        }
        optional = {
            "tag": self.tag,
            "startup_command": self.startup_command,
            "bootstrap_script": self.bootstrap_script,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


#: the request's field names in declaration order (what an operator forwards to :class:`ServiceRequest`)
SERVICE_REQUEST_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ServiceRequest))
