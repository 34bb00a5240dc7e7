"""``SessionRequest``: what one batch session asks Backend.AI for, and its ``POST /session`` body.

The one definition of a session's fields. Pipeline entities produce it, the factory passes it to the operator,
the operator templates it (Airflow renders the fields named in ``template_fields`` in place) and posts
:meth:`SessionRequest.body` through the hook. No Airflow import: backendai-lite reads :data:`CLUSTER_MODES` too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol

from airflow_provider_fasttrack.mounts import Mount, mounts_to_request

__all__ = ["CLUSTER_MODES", "REQUEST_FIELDS", "SessionDefaults", "SessionRequest", "pop_request_fields"]

CLUSTER_MODES = ("single-node", "multi-node")


class SessionDefaults(Protocol):
    """Where a request's unset project, domain and scaling group come from (a connection's settings)."""

    @property
    def project(self) -> str | None: ...
    @property
    def domain(self) -> str | None: ...
    @property
    def scaling_group(self) -> str | None: ...


@dataclass
class SessionRequest:
    """One Backend.AI batch session: image, command, per-kernel slots, cluster shape, mounts, environment.

    :param resources: slots of each kernel, e.g. ``{"cpu": 4, "mem": "16g", "cuda.shares": "1.5"}``; the
        session takes ``cluster_size`` times this (:func:`airflow_provider_fasttrack.slots.session_slots`).
    :param mounts: vfolders in FastTrack syntax, ``"vf"`` or ``"vf:alias"``.
    :param project: the project (``group``); unset: the connection's, else ``default``. Likewise ``domain``
        and ``scaling_group``.
    :param batch_timeout: seconds (or ``"30m"``) before Backend.AI ends the session with ``task-timeout``.
    :param tag: the session's tag (the operator uses the DAG id when unset).
    :param dependencies: sessions (ids or names) that must succeed before this one starts.
    """

    #: rendered by Airflow in place when the request is an operator's template field
    template_fields: ClassVar[tuple[str, ...]] = ("image", "command", "env", "mounts", "resources")

    image: str
    command: str
    resources: dict[str, Any] = field(default_factory=dict)
    resource_opts: dict[str, Any] = field(default_factory=dict)
    cluster_mode: str = "single-node"
    cluster_size: int = 1
    mounts: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    project: str | None = None
    scaling_group: str | None = None
    domain: str | None = None
    architecture: str = "x86_64"
    batch_timeout: int | str | None = None
    bootstrap_script: str | None = None
    tag: str | None = None
    priority: int | None = None
    dependencies: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cluster_mode not in CLUSTER_MODES:
            raise ValueError(f"cluster_mode must be 'single-node' or 'multi-node', not {self.cluster_mode!r}")
        if (
            isinstance(self.cluster_size, bool)
            or not isinstance(self.cluster_size, int)
            or self.cluster_size < 1
        ):
            raise ValueError(
                f"cluster_size must be a whole number of kernels >= 1, not {self.cluster_size!r}"
            )
        if isinstance(self.mounts, str):
            raise ValueError(
                f"mounts must be a list of 'vfolder' or 'vfolder:alias', not the text {self.mounts!r}"
            )
        # None (e.g. from Airflow's partial()) and any mapping or sequence become this model's own copies
        self.resources = dict(self.resources or {})
        self.resource_opts = dict(self.resource_opts or {})
        self.env = dict(self.env or {})
        self.mounts = list(self.mounts or ())
        self.dependencies = list(self.dependencies or ())

    def serialize(self) -> dict[str, Any]:
        """Plain JSON, as Airflow shows the template field in the UI and stores it in the serialized DAG."""
        return asdict(self)

    def body(
        self,
        name: str,
        *,
        defaults: SessionDefaults | None = None,
        extra_mounts: Iterable[Mount] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The ``POST /session`` body of this batch session (enqueue only; a live one of ``name`` is reused).

        :param name: the session name (deterministic per task instance).
        :param defaults: the connection's project, domain and scaling group, for the fields left unset.
        :param extra_mounts: mounts the caller adds (a pipeline's artifact folders).
        :param extra_env: environment the caller adds; it wins over :attr:`env`.
        """
        project = self.project or (defaults.project if defaults else None) or "default"
        domain = self.domain or (defaults.domain if defaults else None) or "default"
        scaling_group = self.scaling_group or (defaults.scaling_group if defaults else None)
        mounts: list[Mount] = [Mount.parse(text) for text in self.mounts]
        config: dict[str, Any] = {
            "resources": dict(self.resources),
            "environ": {**self.env, **(extra_env or {})},
            **mounts_to_request([*mounts, *extra_mounts]),
        }
        if self.resource_opts:
            config["resource_opts"] = dict(self.resource_opts)
        if scaling_group:
            config["scalingGroup"] = scaling_group
        body: dict[str, Any] = {
            "name": name,
            "image": self.image,
            "architecture": self.architecture,
            "type": "batch",
            "group": project,
            "domain": domain,
            "clusterMode": self.cluster_mode,
            "clusterSize": self.cluster_size,
            "enqueueOnly": True,
            "reuseIfExists": True,
            "startupCommand": self.command,
            "config": config,
        }
        optional = {
            "tag": self.tag,
            "batchTimeout": self.batch_timeout,
            "bootstrap_script": self.bootstrap_script,
            "priority": self.priority,
            "dependencies": list(self.dependencies) or None,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


#: the request's field names in declaration order (what an operator forwards to :class:`SessionRequest`)
REQUEST_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(SessionRequest))


def pop_request_fields(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove and return the :class:`SessionRequest` fields among ``kwargs`` (an operator's keywords)."""
    return {name: kwargs.pop(name) for name in REQUEST_FIELDS if name in kwargs}
