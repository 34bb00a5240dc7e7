"""Validation of ``POST /session`` bodies into a :class:`SessionSpec`, with the manager's error kinds."""

from __future__ import annotations

import fnmatch
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from airflow_provider_fasttrack import slots as slotlib
from airflow_provider_fasttrack.durations import DURATION_EXAMPLES, duration_seconds
from airflow_provider_fasttrack.lite.config import ImageMapping, LiteConfig
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.session_request import CLUSTER_MODES

__all__ = ["MountRequest", "SessionSpec", "parse_batch_timeout", "parse_session_spec"]

SESSION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,62}[A-Za-z0-9_]$")
SESSION_TYPES = ("interactive", "batch", "inference")
DEFAULT_PRIORITY = 10


@dataclass(frozen=True)
class MountRequest:
    """One entry of ``config.mounts`` resolved: vfolder, subpath, destination, permission."""

    entry: str
    vfolder: str
    subpath: str
    destination: str
    read_only: bool


@dataclass
class SessionSpec:
    """A validated session creation request."""

    name: str
    image: str
    architecture: str
    type: str
    group: str
    domain: str
    cluster_mode: str
    cluster_size: int
    tag: str | None
    enqueue_only: bool
    max_wait_seconds: float
    reuse_if_exists: bool
    startup_command: str | None
    bootstrap_script: str | None
    batch_timeout: float | None
    dependencies: list[str]
    callback_url: str | None
    priority: int
    scaling_group: str
    kernel_slots: slotlib.Slots
    resource_opts: dict[str, Any]
    mounts: list[MountRequest]
    environ: dict[str, str]
    preopen_ports: list[int]
    image_mapping: ImageMapping
    raw_config: dict[str, Any] = field(default_factory=dict)

    @property
    def requested_slots(self) -> slotlib.Slots:
        """The whole session's request: every kernel asks for ``kernel_slots``."""
        return slotlib.session_slots(self.kernel_slots, self.cluster_size)


def _bad(msg: str) -> LiteError:
    return LiteError("invalid-api-params", msg)


def _bool(body: dict[str, Any], *keys: str, default: bool) -> bool:
    for key in keys:
        if key in body and body[key] is not None:
            value = body[key]
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise _bad(f"{key} must be a boolean")
    return default


def _first(body: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if body.get(key) is not None:
            return body[key]
    return None


def parse_batch_timeout(value: Any) -> float | None:
    """``batchTimeout``: seconds as a number or ``30s|5m|1h|2d|1w``; ``None``/0 means no timeout."""
    if value is None or value == "" or value == 0:
        return None
    if isinstance(value, bool):
        raise _bad("batchTimeout must be seconds or a duration such as '30s', '5m', '1h'")
    try:
        seconds = duration_seconds(value)
    except ValueError:
        raise _bad(f"batchTimeout {value!r} is not a duration such as {DURATION_EXAMPLES}") from None
    if seconds < 0:
        raise _bad("batchTimeout must not be negative")
    return seconds or None


def match_image(config: LiteConfig, image: str) -> ImageMapping:
    """The first image mapping whose glob matches; refused with the mapping shown otherwise."""
    for mapping in config.images:
        if fnmatch.fnmatchcase(image, mapping.pattern):
            return mapping
    patterns = ", ".join(repr(m.pattern) for m in config.images) or "(none)"
    raise LiteError(
        "image-not-found",
        f"Unknown image reference {image!r}: backendai-lite maps images to local runtimes by glob and no "
        f"pattern matches (configured patterns: {patterns}); add an 'images' entry to the server config.",
    )


def _parse_resources(config: LiteConfig, resources: Any) -> slotlib.Slots:
    if resources is None:
        resources = {}
    if not isinstance(resources, dict):
        raise _bad("config.resources must be a mapping of slot name to amount")
    known = config.known_slot_types()
    for name in resources:
        if name not in known:
            raise LiteError(
                "unknown-resource-slot-type",
                f"Unknown resource slot type {name!r} (known: {', '.join(sorted(known))})",
            )
    merged = dict(config.default_resources)
    merged.update(resources)
    try:
        parsed = slotlib.parse_slots(merged)
    except ValueError as exc:
        raise _bad(f"config.resources: {exc}") from exc
    device = parsed.get("cuda.device")
    if device is not None and device != device.to_integral_value():
        raise _bad("config.resources: cuda.device counts whole GPUs; use cuda.shares for fractions")
    return {name: value for name, value in parsed.items() if value != Decimal(0)}


def _clean_subpath(value: str, what: str) -> str:
    path = PurePosixPath(value.strip("/"))
    if ".." in path.parts or path.is_absolute():
        raise _bad(f"{what}: {value!r} must be a relative path without '..'")
    return "" if str(path) == "." else str(path)


def _parse_mounts(cfg: dict[str, Any]) -> list[MountRequest]:
    mounts = cfg.get("mounts") or []
    mount_map = cfg.get("mount_map") or cfg.get("mountMap") or {}
    options = cfg.get("mount_options") or cfg.get("mountOptions") or {}
    if not isinstance(mounts, list) or not all(isinstance(m, str) and m.strip("/") for m in mounts):
        raise _bad("config.mounts must be a list of vfolder names ('vf' or 'vf/sub/path')")
    if not isinstance(mount_map, dict) or not isinstance(options, dict):
        raise _bad("config.mount_map and config.mount_options must be mappings keyed by mounts entries")
    for key in list(mount_map) + list(options):
        if key not in mounts:
            raise _bad(f"{key!r} in mount_map/mount_options is not in config.mounts")
    result: list[MountRequest] = []
    seen: dict[str, str] = {}
    for entry in mounts:
        vfolder, _, subpath = entry.strip("/").partition("/")
        opts = options.get(entry) or {}
        if not isinstance(opts, dict):
            raise _bad(f"mount_options[{entry!r}] must be a mapping")
        permission = str(opts.get("permission") or "rw")
        if permission not in ("ro", "rw", "wd"):
            raise _bad(f"mount_options[{entry!r}].permission must be ro, rw or wd")
        if opts.get("subpath"):
            subpath = "/".join(p for p in (subpath, str(opts["subpath"])) if p)
        subpath = _clean_subpath(subpath, f"mounts entry {entry!r}")
        target = mount_map.get(entry) or opts.get("mount_destination") or vfolder
        if not isinstance(target, str) or not target.strip():
            raise _bad(f"mount_map[{entry!r}] must be a path")
        destination = target if target.startswith("/") else f"/home/work/{target.strip('/')}"
        dest_path = PurePosixPath(destination)
        if ".." in dest_path.parts or dest_path == PurePosixPath("/home/work") or len(dest_path.parts) < 2:
            raise _bad(f"mount destination {destination!r} of {entry!r} is not allowed")
        destination = str(dest_path)
        if destination in seen:
            raise _bad(f"{entry!r} and {seen[destination]!r} are both mounted at {destination}")
        seen[destination] = entry
        result.append(MountRequest(entry, vfolder, subpath, destination, permission == "ro"))
    return result


def _parse_environ(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad("config.environ must be a mapping of variable name to value")
    environ = {}
    for key, val in value.items():
        if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise _bad(f"config.environ: {key!r} is not a valid variable name")
        if isinstance(val, (dict, list)) or val is None:
            raise _bad(f"config.environ[{key!r}] must be a string")
        environ[key] = str(val).lower() if isinstance(val, bool) else str(val)
    return environ


def parse_session_spec(config: LiteConfig, body: Any) -> SessionSpec:
    """Validate a creation body; raises :class:`LiteError` with the manager's kinds."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    name = _first(body, "name", "clientSessionToken", "sessionName")
    if not isinstance(name, str) or not SESSION_NAME_RE.match(name):
        raise _bad(
            "name (clientSessionToken) must be 4-64 characters of letters, digits, '-', '_' and '.', "
            "starting with a letter or digit"
        )
    try:
        uuid.UUID(name)
    except ValueError:
        pass
    else:
        raise _bad("a session name must not be a UUID")
    image = _first(body, "image", "lang")
    if not isinstance(image, str) or not image:
        raise _bad("image is required")
    # absent: interactive, as on the manager; present, it must name a type (0, "" or null is no default)
    session_type = (
        _first(body, "type", "sessionType") if {"type", "sessionType"} & body.keys() else "interactive"
    )
    if not isinstance(session_type, str) or session_type.lower() not in SESSION_TYPES:
        raise _bad(f"type must be one of {', '.join(SESSION_TYPES)}")
    session_type = session_type.lower()
    cluster_mode = str(_first(body, "clusterMode", "cluster_mode") or "single-node")
    if cluster_mode not in CLUSTER_MODES:
        raise _bad(f"clusterMode must be one of {', '.join(CLUSTER_MODES)}")
    cluster_size = _first(body, "clusterSize", "cluster_size") or 1
    if isinstance(cluster_size, bool) or not isinstance(cluster_size, int) or not 1 <= cluster_size <= 64:
        raise _bad("clusterSize must be an integer from 1 to 64")
    startup = _first(body, "startupCommand", "startup_command")
    if startup is not None and not isinstance(startup, str):
        raise _bad("startupCommand must be a string")
    if session_type == "batch" and not (startup and startup.strip()):
        raise _bad("Batch sessions must have a non-empty startup command.")
    bootstrap = _first(body, "bootstrap_script", "bootstrapScript")
    if bootstrap is not None and not isinstance(bootstrap, str):
        raise _bad("bootstrap_script must be a string")
    priority = body.get("priority", DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
        raise _bad("priority must be an integer from 0 to 100")
    dependencies = body.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise _bad("dependencies must be a list of session IDs")
    deps: list[str] = []
    for dep in dependencies:
        try:
            deps.append(str(uuid.UUID(str(dep))))
        except ValueError as exc:
            raise _bad(f"Unknown session ID in dependencies: {dep!r}") from exc
    tag = body.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > 64):
        raise _bad("tag must be a string of at most 64 characters")
    cfg = body.get("config") or {}
    if not isinstance(cfg, dict):
        raise _bad("config must be a JSON object")
    scaling_group = _first(cfg, "scalingGroup", "scaling_group") or _first(body, "scalingGroup")
    scaling_group = scaling_group or config.default_scaling_group
    if not isinstance(scaling_group, str) or scaling_group not in config.scaling_groups:
        raise _bad(f"Unknown scaling group {scaling_group!r} (known: {', '.join(config.scaling_groups)})")
    ports = cfg.get("preopen_ports") or cfg.get("preopenPorts") or []
    if not isinstance(ports, list) or not all(isinstance(p, int) and 1024 <= p <= 65535 for p in ports):
        raise _bad("config.preopen_ports must be a list of port numbers from 1024 to 65535")
    max_wait = body.get("maxWaitSeconds") or 0
    if isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or max_wait < 0:
        raise _bad("maxWaitSeconds must be a non-negative number")
    callback_url = _first(body, "callback_url", "callbackUrl")
    if callback_url is not None and not isinstance(callback_url, str):
        raise _bad("callback_url must be a URL string")
    resource_opts = cfg.get("resource_opts") or cfg.get("resourceOpts") or {}
    if not isinstance(resource_opts, dict):
        raise _bad("config.resource_opts must be a mapping")
    return SessionSpec(
        name=name,
        image=image,
        architecture=str(body.get("architecture") or "x86_64"),
        type=session_type,
        group=str(_first(body, "group", "group_name", "groupName") or "default"),
        domain=str(_first(body, "domain", "domain_name", "domainName") or "default"),
        cluster_mode=cluster_mode,
        cluster_size=cluster_size,
        tag=tag,
        enqueue_only=_bool(body, "enqueueOnly", "enqueue_only", default=False),
        max_wait_seconds=float(max_wait),
        reuse_if_exists=_bool(body, "reuseIfExists", "reuse_if_exists", default=True),
        startup_command=startup,
        bootstrap_script=bootstrap,
        batch_timeout=parse_batch_timeout(_first(body, "batchTimeout", "batch_timeout")),
        dependencies=deps,
        callback_url=callback_url,
        priority=priority,
        scaling_group=scaling_group,
        kernel_slots=_parse_resources(config, cfg.get("resources")),
        resource_opts=resource_opts,
        mounts=_parse_mounts(cfg),
        environ=_parse_environ(cfg.get("environ")),
        preopen_ports=list(ports),
        image_mapping=match_image(config, image),
        raw_config=cfg,
    )
