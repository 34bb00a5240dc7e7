"""Model services: replicas as inference sessions, health checks, scaling, tokens and the endpoint proxy's routes.

A service keeps ``replicas`` inference sessions running. Each replica is a lite session (sandbox, mounts, slots
as any session) whose startup command is the model definition's (``custom``) or a runtime variant's server,
listening on a free loopback port that backendai-lite chose. Each service has a health loop of its own that probes
its replicas as the ``health_check`` says (through a client of its own, apart from the endpoint's traffic); a
replica that exits or stays unhealthy is recorded in the service's errors and replaced. The endpoint reaches a
service's replicas through the service's own connection pool (``services`` in the configuration: a connection
limit and timeouts), so one service's callers cannot hold the connections or the health checks of another.
Services live in memory: they end with the server, as their replicas do.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import shlex
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import httpx

from airflow_provider_fasttrack.exceptions import ModelDefinitionError
from airflow_provider_fasttrack.lite.config import KeypairConfig, LiteConfig, ServicesConfig
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.registry import SessionRegistry
from airflow_provider_fasttrack.lite.session_spec import parse_batch_timeout, parse_session_spec
from airflow_provider_fasttrack.lite.store import DEAD_STATUSES, Store
from airflow_provider_fasttrack.lite.vfolders import VFolders
from airflow_provider_fasttrack.model_definition import (
    DEFINITION_FILES,
    HealthCheck,
    parse_model_definition,
)
from airflow_provider_fasttrack.naming import is_uuid
from airflow_provider_fasttrack.service_request import (
    MODEL_MOUNT_DESTINATION,
    RUNTIME_VARIANTS,
    VARIANT_DEFAULTS,
    service_name_problem,
)

__all__ = ["SERVE_PREFIX", "Replica", "Service", "ServiceManager"]

log = logging.getLogger("backendai_lite.services")

#: the endpoint proxy's path: ``/serve/<endpoint id>/...`` (token-checked, not signed)
SERVE_PREFIX = "/serve/"
#: replicas that fail in a row before the service stops starting new ones (until it is scaled again)
MAX_CONSECUTIVE_FAILURES = 5
#: seconds between rounds of the health loop (a replica is probed only as often as its interval says)
TICK_SECONDS = 0.2
#: ``cmd`` and ``modular-max``: the port their startup command is told to listen on, when none is configured
DEFAULT_COMMAND_PORT = 8000
LOG_TAIL_LINES = 15
#: the usage mode of the folders a service serves; the manager's words when another is chosen or one is extra
MODEL_USAGE_MODE = "model"
#: the manager 26.9.6 looks the model folder up among model-type folders only
NOT_A_MODEL_FOLDER = "Cannot find model folder"
MODEL_FOLDER_AS_EXTRA_MOUNT = "MODEL type VFolders cannot be added as a part of extra_mounts folder"


def _bad(message: str) -> LiteError:
    return LiteError("invalid-api-params", message)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Launch:
    """How every replica of a service starts: its command (with ``{port}``), its declared port and health check."""

    command: str
    declared_port: int
    health: HealthCheck | None

    def command_for(self, port: int) -> str:
        """The command for a replica on ``port``: ``{port}``, and the declared port as a whole word, become it."""
        text = self.command.replace("{port}", str(port))
        return re.sub(rf"(?<![\w.]){self.declared_port}(?![\w.])", str(port), text)


@dataclass
class Replica:
    """One route: an inference session and the loopback port its server listens on."""

    route_id: str
    session_id: str
    port: int
    started: float
    status: str = "PROVISIONING"
    failures: int = 0
    next_check: float = 0.0


@dataclass
class Service:
    """One model service of one owner."""

    id: str
    #: the endpoint's connections to this service's replicas (their limit and timeouts are this service's alone)
    http: httpx.AsyncClient
    name: str
    access_key: str
    replicas: int
    runtime_variant: str
    is_public: bool
    model_id: str
    model_definition_path: str | None
    session_body: dict[str, Any]
    launch: Launch
    routes: dict[str, Replica] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    failures_in_row: int = 0
    ever_healthy: bool = False
    #: sha256 of each token -> expiry (epoch seconds)
    tokens: dict[str, float] = field(default_factory=dict)
    serial: int = 0
    watch: asyncio.Task[None] | None = None

    def healthy(self) -> list[Replica]:
        return [r for r in self.routes.values() if r.status == "HEALTHY"]


def endpoint_client(limits: ServicesConfig) -> httpx.AsyncClient:
    """The endpoint's client for one service: ``max_connections`` and every timeout from the configuration."""
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=limits.max_connections, max_keepalive_connections=limits.max_connections
        ),
        timeout=httpx.Timeout(
            connect=limits.connect_timeout,
            read=limits.read_timeout,
            write=limits.write_timeout,
            pool=limits.pool_timeout,
        ),
        trust_env=False,
    )


def replica_url(port: int, target: str | bytes) -> httpx.URL:
    """``target`` (a path, with its query, kept as sent) on the replica at ``127.0.0.1:port``.

    The URL is built from its parts, so no target can name another host or port.
    """
    raw = target.encode() if isinstance(target, str) else target
    return httpx.URL(scheme="http", host="127.0.0.1", port=port, raw_path=raw)


def _int(body: dict[str, Any], *keys: str, default: int) -> int:
    for key in keys:
        if body.get(key) is not None:
            value = body[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(f"{key} must be a whole number >= 0")
            return value
    return default


class ServiceManager:
    """Owns the model services and their replicas (through the session registry)."""

    def __init__(
        self, config: LiteConfig, store: Store, registry: SessionRegistry, vfolders: VFolders
    ) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self.vfolders = vfolders
        self.services: dict[str, Service] = {}
        self._lock = asyncio.Lock()
        #: health probes: a client apart from the endpoint's, no connection kept (each probe is bounded by its
        #: ``max_wait_time``)
        self.probes = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0), trust_env=False
        )

    # lifecycle
    async def stop(self) -> None:
        for service in list(self.services.values()):
            await self._delete(service)
        await self.probes.aclose()

    # lookups
    def get(self, service_id: str, access_key: str) -> Service:
        service = self.services.get(service_id)
        if service is None or service.access_key != access_key:
            raise LiteError("object-not-found", f"No such model service: {service_id}")
        return service

    def owned(self, access_key: str) -> list[Service]:
        return [s for s in self.services.values() if s.access_key == access_key]

    # creation
    async def create(self, keypair: KeypairConfig, body: Any) -> Service:
        """Validate a ``POST /services`` body and start the service's replicas."""
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.")
        name = body.get("name", body.get("service_name"))
        if not isinstance(name, str):
            raise _bad("name (service_name) is required")
        if problem := service_name_problem(name):
            raise _bad(problem)
        replicas = _int(body, "replicas", "desired_session_count", default=1)
        image = body.get("image")
        if not isinstance(image, str) or not image:
            raise _bad("image is required")
        variant = body.get("runtime_variant") or "custom"
        if variant not in RUNTIME_VARIANTS:
            raise _bad(f"runtime_variant {variant!r} is not one of {', '.join(RUNTIME_VARIANTS)}")
        cfg = body.get("config")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), str) or not cfg["model"]:
            raise _bad("config.model (the model vfolder's name or id) is required")
        destination = cfg.get("model_mount_destination") or MODEL_MOUNT_DESTINATION
        if not isinstance(destination, str) or not destination.startswith("/"):
            raise _bad("config.model_mount_destination must be an absolute path")
        if destination != MODEL_MOUNT_DESTINATION and variant not in ("custom", "cmd"):
            raise _bad(f"config.model_mount_destination must be {MODEL_MOUNT_DESTINATION} for {variant}")
        model = self.vfolders.get(keypair.access_key, cfg["model"])
        if model["usage_mode"] != MODEL_USAGE_MODE:
            raise LiteError("vfolder-not-found", NOT_A_MODEL_FOLDER)
        subpath = str(cfg.get("vfolder_subpath") or "").strip("/")
        startup = body.get("startup_command")
        if startup is not None and not isinstance(startup, str):
            raise _bad("startup_command must be a string")
        launch = self._launch(model, subpath, destination, variant, cfg.get("model_definition_path"), startup)
        if not isinstance(cfg.get("scaling_group"), str) or not cfg["scaling_group"]:
            raise _bad("config.scaling_group (the resource group of the replicas) is required")
        if not all(is_uuid(key) for key in cfg.get("extra_mounts") or {}):
            raise _bad("config.extra_mounts is keyed by vfolder id (a UUID)")
        async with self._lock:
            if any(s.name == name for s in self.owned(keypair.access_key)):
                raise _bad(f"Cannot create multiple services with the same name ({name!r})")
            service_id = str(uuid.uuid4())
            session_body = self._session_body(body, cfg, model, subpath, destination, keypair)
            parse_session_spec(self.config, {**session_body, "name": "svc-check", "startupCommand": "true"})
            service = Service(
                id=service_id,
                http=endpoint_client(self.config.services),
                name=name,
                access_key=keypair.access_key,
                replicas=replicas,
                runtime_variant=variant,
                is_public=bool(body.get("open_to_public", False)),
                model_id=model["id"],
                model_definition_path=cfg.get("model_definition_path"),
                session_body=session_body,
                launch=launch,
            )
            self.services[service_id] = service
        try:
            await self._reconcile(service)
        except Exception:  # e.g. a replica that can never fit: no half-made service stays behind
            await self._delete(service)
            raise
        service.watch = asyncio.create_task(self._health_loop(service), name=f"service-{service.id}")
        return service

    def _launch(
        self,
        model: dict[str, Any],
        subpath: str,
        destination: str,
        variant: str,
        definition_path: Any,
        startup: str | None,
    ) -> Launch:
        if variant in VARIANT_DEFAULTS:
            defaults = VARIANT_DEFAULTS[variant]
            command = (startup or defaults.start_command).replace("{model_path}", destination)
            return Launch(command, defaults.port, HealthCheck(path=defaults.health_path, initial_delay=0))
        if variant != "custom":  # cmd, modular-max: the startup command serves on {port}
            if not (startup and startup.strip()):
                raise _bad(f"runtime_variant {variant} needs a startup_command")
            return Launch(startup, DEFAULT_COMMAND_PORT, None)
        folder = self.vfolders.resolve(model, subpath)
        if definition_path is not None and not isinstance(definition_path, str):
            raise _bad("config.model_definition_path must be a path in the model folder")
        candidates = [definition_path] if definition_path else list(DEFINITION_FILES)
        found = next(
            (folder / PurePosixPath(c.lstrip("/")) for c in candidates if (folder / c.lstrip("/")).is_file()),
            None,
        )
        if found is None or not self.vfolders.contains(model, found.resolve()):
            raise _bad(
                f"the model folder {model['name']!r} has no {' or '.join(candidates)}; a custom service "
                "needs a model definition"
            )
        try:
            definition = parse_model_definition(found, f"{model['name']}:/{found.relative_to(folder)}")
        except ModelDefinitionError as exc:
            raise _bad(" ".join(str(exc).split("\n"))) from None
        entry = definition.served()
        assert entry is not None and entry.service is not None
        svc = entry.service
        model_path = entry.model_path

        def substituted(text: str) -> str:
            return text.replace("{model_path}", model_path)

        lines = []
        for index, action in enumerate(svc.pre_start_actions):
            if action.action != "run_command":
                raise _bad(
                    f"pre_start_actions[{index}].action {action.action!r}: backendai-lite runs only run_command"
                )
            step = action.args.get("command")
            if isinstance(step, list) and step:
                lines.append(shlex.join(substituted(str(part)) for part in step) + " || exit $?")
            elif isinstance(step, str) and step.strip():
                lines.append(f"{svc.shell} -c {shlex.quote(substituted(step))} || exit $?")
            else:
                raise _bad(f"pre_start_actions[{index}].args.command must be a command (text or list)")
        if isinstance(svc.start_command, list):
            lines.append("exec " + shlex.join(substituted(str(part)) for part in svc.start_command))
        else:
            lines.append(f"exec {svc.shell} -c {shlex.quote(substituted(svc.start_command))}")
        return Launch("\n".join(lines), svc.port, svc.health_check)

    def _session_body(
        self,
        body: dict[str, Any],
        cfg: dict[str, Any],
        model: dict[str, Any],
        subpath: str,
        destination: str,
        keypair: KeypairConfig,
    ) -> dict[str, Any]:
        entry = f"{model['name']}/{subpath}" if subpath else model["name"]
        mounts = [entry]
        mount_map = {entry: destination}
        extra = cfg.get("extra_mounts") or {}
        if not isinstance(extra, dict):
            raise _bad("config.extra_mounts must map vfolder ids to mount options")
        for key, option in extra.items():
            row = self.vfolders.get(keypair.access_key, str(key))
            if row["usage_mode"] == MODEL_USAGE_MODE:
                raise _bad(MODEL_FOLDER_AS_EXTRA_MOUNT)
            mounts.append(row["name"])
            target = (option or {}).get("mount_destination") if isinstance(option, dict) else None
            mount_map[row["name"]] = target or f"/home/work/{row['name']}"
        session_config: dict[str, Any] = {
            "resources": cfg.get("resources") or {},
            "resource_opts": cfg.get("resource_opts") or {},
            "environ": dict(cfg.get("environ") or {}),
            "mounts": mounts,
            "mount_map": mount_map,
        }
        if cfg.get("scaling_group"):
            session_config["scalingGroup"] = cfg["scaling_group"]
        session_body: dict[str, Any] = {
            "image": body["image"],
            "type": "inference",
            "group": body.get("group") or "default",
            "domain": body.get("domain") or "default",
            "clusterMode": body.get("cluster_mode") or "single-node",
            "clusterSize": body.get("cluster_size") or 1,
            "enqueueOnly": True,
            "reuseIfExists": False,
            "config": session_config,
        }
        for key in ("tag", "bootstrap_script"):
            if body.get(key) is not None:
                session_body[key] = body[key]
        return session_body

    # replicas
    async def _start_replica(self, service: Service) -> None:
        keypair = self.config.keypair(service.access_key)
        assert keypair is not None
        port = free_port()
        service.serial += 1
        name = f"svc-{service.name[:40]}-{service.serial}-{service.id[:8]}"
        body = dict(service.session_body)
        cfg = dict(body["config"])
        cfg["environ"] = {**cfg["environ"], "BACKENDAI_SERVICE_PORT": str(port), "PORT": str(port)}
        body.update(name=name, config=cfg, startupCommand=service.launch.command_for(port))
        spec = parse_session_spec(self.config, body)
        row, _ = await self.registry.create(keypair, spec)
        route = Replica(route_id=str(uuid.uuid4()), session_id=row["id"], port=port, started=time.monotonic())
        health = service.launch.health
        route.next_check = route.started + (health.initial_delay if health else 0.0)
        service.routes[route.route_id] = route
        log.info("service %s: replica %s (session %s) on port %d", service.name, name, row["id"], port)

    async def _stop_replica(self, service: Service, route: Replica) -> None:
        service.routes.pop(route.route_id, None)
        row = self.store.session(route.session_id)
        if row is not None and row["status"] not in DEAD_STATUSES:
            await self.registry.destroy(row, forced=True, recursive=False)

    def _record_failure(self, service: Service, route: Replica, reason: str) -> None:
        tail = ""
        row = self.store.session(route.session_id)
        if row is not None:
            lines = self.registry.logs(row, None).rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
            tail = "\n".join(lines)
        service.errors.append(
            {
                "session_id": route.session_id,
                "error": {"name": "ReplicaFailed", "repr": reason, "logs": tail},
            }
        )
        service.retries += 1
        service.failures_in_row += 1
        log.warning("service %s: replica %s failed: %s", service.name, route.session_id, reason)

    async def _reconcile(self, service: Service) -> None:
        """Start or stop replicas until ``replicas`` are alive (new ones stop after repeated failures)."""
        alive = list(service.routes.values())
        while len(alive) > service.replicas:
            route = alive.pop()
            await self._stop_replica(service, route)
        missing = service.replicas - len(alive)
        if missing > 0 and service.failures_in_row < MAX_CONSECUTIVE_FAILURES:
            for _ in range(missing):
                await self._start_replica(service)

    async def _check(self, service: Service, route: Replica) -> None:
        row = self.store.session(route.session_id)
        if row is None or row["status"] in DEAD_STATUSES:
            service.routes.pop(route.route_id, None)
            self._record_failure(
                service, route, f"the replica's session ended ({row and row['status_info']})"
            )
            return
        if row["status"] != "RUNNING":
            return
        now = time.monotonic()
        health = service.launch.health
        if health is None:
            self._mark_healthy(service, route)
            return
        if now < route.next_check:
            return
        route.next_check = now + max(health.interval, TICK_SECONDS)
        try:
            async with asyncio.timeout(health.max_wait_time):
                request = self.probes.build_request(
                    "GET", replica_url(route.port, health.path), timeout=health.max_wait_time
                )
                answer = await self.probes.send(request, stream=True)  # the status is enough: no body read
                await answer.aclose()
            ok = answer.status_code == health.expected_status_code
        except (httpx.HTTPError, httpx.InvalidURL, TimeoutError):
            ok = False
        if ok:
            self._mark_healthy(service, route)
            return
        route.failures += 1
        if route.status == "HEALTHY":
            route.status = "UNHEALTHY"
        if route.failures > health.max_retries:
            self._record_failure(
                service, route, f"health check GET {health.path} failed {route.failures} times in a row"
            )
            await self._stop_replica(service, route)

    @staticmethod
    def _mark_healthy(service: Service, route: Replica) -> None:
        if route.status != "HEALTHY":
            log.info("service %s: replica %s is healthy", service.name, route.session_id)
        route.status = "HEALTHY"
        route.failures = 0
        service.failures_in_row = 0
        service.ever_healthy = True

    async def _health_loop(self, service: Service) -> None:
        """One service's replicas, probed and replaced until the service is deleted."""
        while service.id in self.services:
            await asyncio.sleep(TICK_SECONDS)
            try:
                for route in list(service.routes.values()):
                    await self._check(service, route)
                if service.id in self.services:
                    await self._reconcile(service)
            except Exception:
                log.exception("service %s: health round failed", service.name)

    # operations
    async def scale(self, service: Service, to: Any) -> None:
        if isinstance(to, bool) or not isinstance(to, int) or to < 0:
            raise _bad("to must be a whole number >= 0")
        service.replicas = to
        service.failures_in_row = 0
        await self._reconcile(service)

    async def delete(self, service: Service) -> None:
        await self._delete(service)

    async def _delete(self, service: Service) -> None:
        self.services.pop(service.id, None)
        if service.watch is not None and service.watch is not asyncio.current_task():
            service.watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await service.watch
        for route in list(service.routes.values()):
            await self._stop_replica(service, route)
        await service.http.aclose()

    def issue_token(self, service: Service, body: Any) -> str:
        """A random token valid for ``duration`` (seconds or '30m', '1h', ...) or until ``valid_until``."""
        if not isinstance(body, dict):
            raise _bad("The request body must be a JSON object.")
        if body.get("valid_until") is not None:
            until = body["valid_until"]
            if isinstance(until, bool) or not isinstance(until, int | float):
                raise _bad("valid_until must be a UNIX timestamp")
            expiry = float(until)
        else:
            seconds = parse_batch_timeout(body.get("duration"))
            if seconds is None:
                raise _bad("duration (seconds or e.g. '1h') or valid_until is required")
            expiry = time.time() + seconds
        if expiry <= time.time():
            raise _bad("the token would already be expired")
        token = secrets.token_urlsafe(32)
        service.tokens[_digest(token)] = expiry
        return token

    def token_valid(self, service: Service, authorization: str | None) -> bool:
        if service.is_public:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() not in ("backendai", "bearer") or not token.strip():
            return False
        expiry = service.tokens.get(_digest(token.strip()))
        return expiry is not None and expiry > time.time()

    def pick(self, service: Service) -> Replica | None:
        """A healthy replica, in turn."""
        healthy = service.healthy()
        if not healthy:
            return None
        service.serial += 1
        return healthy[service.serial % len(healthy)]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
