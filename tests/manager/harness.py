"""Backend.AI's own manager 26.9.6 on this machine, for the contract suite: no Docker, everything on 127.0.0.1.

What runs, each in its own process group under one temporary directory: PostgreSQL (the distribution's server,
as ``deploy.local.PostgreSQL`` runs it), Redis, etcd, then the manager, the storage proxy (a ``vfs`` volume
``local:volume1``, plain HTTP) and an agent with the ``dummy`` backend (``dummy_agent.py``: its batch sessions end
by the command's ``exit N`` after its ``sleep N``). The manager, agent and storage proxy come from
``.venv-bai-client`` (``scripts/bai-manager-env``); configs and the database fixture are written here::

    with ManagerHarness(workdir) as manager:
        manager.endpoint                  # http://127.0.0.1:PORT
        manager.keypairs["user"]          # KeypairSpec: access_key, secret_key, email
        manager.log_files                 # what each server wrote
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psycopg2

from deploy.local import PostgreSQL, _stop_groups, free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-bai-client"
ENV_SCRIPT = ROOT / "scripts" / "bai-manager-env"
DUMMY_AGENT = Path(__file__).resolve().with_name("dummy_agent.py")
PRELOADED_MANAGER = Path(__file__).resolve().with_name("preloaded_manager.py")

DOMAIN = "default"
PROJECT = "default"
SCALING_GROUP = "default"
VOLUME_HOST = "local:volume1"
#: The image the contract tests use, and the ones the repository's pipelines name; the dummy agent "has" them all.
IMAGE = "cr.backend.ai/stable/python:3.11-ubuntu22.04"
IMAGES = (
    IMAGE,
    "cr.backend.ai/stable/python:3.11",
    "cr.backend.ai/stable/pytorch:2.5-py3.11-cuda12.4-ubuntu22.04",
    "cr.backend.ai/cloud/python:3.11-ubuntu22.04",
    "cr.backend.ai/cloud/ngc-pytorch:25.01-pytorch2.6-py312-cuda12.8",
    "cr.backend.ai/multiarch/python:3.12-ubuntu24.04",
)
#: Short names, as on backendai-lite
ALIASES = {"python": IMAGE, "python:3.11": IMAGE}
#: the agent's fake hardware
AGENT_CPUS = 8
AGENT_MEMORY = 32 * 2**30
#: Seconds a batch session takes when its command has no ``sleep N`` (``dummy_agent.py``).
BATCH_DEFAULT_SECONDS = 1.0
ALL_VFOLDER_PERMISSIONS = [
    "create-vfolder",
    "modify-vfolder",
    "delete-vfolder",
    "mount-in-session",
    "upload-file",
    "download-file",
    "invite-others",
    "set-user-specific-permission",
]


class ManagerUnavailable(RuntimeError):
    """The manager cannot run here (its environment or a server binary is missing)."""


@dataclass(frozen=True)
class KeypairSpec:
    access_key: str
    secret_key: str = field(repr=False)
    email: str


@dataclass(frozen=True)
class UserSpec:
    name: str
    role: str  # superadmin | admin (of the domain) | user
    uuid: str


#: The users: ``user`` has two keypairs (``user`` and ``user-2nd``), ``other`` is another USER of the project,
#: ``admin`` the domain's admin; ``superadmin`` is for checks of the server itself.
USERS = {
    "user": UserSpec("user", "user", "00000000-0000-4000-8000-00000000a001"),
    "other": UserSpec("other", "user", "00000000-0000-4000-8000-00000000a002"),
    "admin": UserSpec("admin", "admin", "00000000-0000-4000-8000-00000000a003"),
    "superadmin": UserSpec("superadmin", "superadmin", "00000000-0000-4000-8000-00000000a004"),
}
#: keypair name -> (user, is the user's default keypair)
KEYPAIR_OWNERS = {
    "user": ("user", True),
    "user-2nd": ("user", False),
    "other": ("other", True),
    "admin": ("admin", True),
    "superadmin": ("superadmin", True),
}
DOMAIN_ID = "00000000-0000-4000-8000-00000000d001"
PROJECT_ID = "00000000-0000-4000-8000-00000000d002"
SCALING_GROUP_ID = "00000000-0000-4000-8000-00000000d003"


def email_of(user: str) -> str:
    return f"{user}@manager.local"


def new_keypairs() -> dict[str, KeypairSpec]:
    """Fresh random keys for every keypair (access keys look like Backend.AI's: 20 upper-case characters)."""
    alphabet = string.ascii_uppercase + string.digits
    return {
        name: KeypairSpec(
            access_key="AKMGR" + "".join(secrets.choice(alphabet) for _ in range(15)),
            secret_key=secrets.token_urlsafe(30),
            email=email_of(owner),
        )
        for name, (owner, _) in KEYPAIR_OWNERS.items()
    }


def parse_image(canonical: str) -> dict[str, str]:
    """``registry/project/name:tag`` into the parts the ``images`` table keeps."""
    registry, rest = canonical.split("/", 1)
    repository, tag = rest.rsplit(":", 1)
    project = repository.split("/", 1)[0]
    return {"registry": registry, "project": project, "image": repository, "tag": tag}


def _registry_id(registry: str, project: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://{registry}/{project}"))


def image_rows(images: tuple[str, ...] = IMAGES) -> dict[str, list[dict[str, Any]]]:
    """``container_registries``, ``images`` and ``image_aliases`` rows for ``images`` (no registry is scanned)."""
    registries: dict[str, dict[str, Any]] = {}
    rows, aliases = [], []
    for canonical in images:
        parts = parse_image(canonical)
        registry_id = _registry_id(parts["registry"], parts["project"])
        registries[registry_id] = {
            "id": registry_id,
            "registry_name": parts["registry"],
            "url": f"https://{parts['registry']}",
            "type": "docker",
            "project": parts["project"],
        }
        image_id = str(uuid.uuid5(uuid.NAMESPACE_URL, canonical))
        cuda = "cuda" in parts["tag"]
        rows.append(
            {
                "id": image_id,
                "name": canonical,
                "project": parts["project"],
                "image": parts["image"],
                "tag": parts["tag"],
                "registry": parts["registry"],
                "registry_id": registry_id,
                "architecture": "x86_64",
                "config_digest": "sha256:" + uuid.uuid5(uuid.NAMESPACE_OID, canonical).hex * 2,
                "size_bytes": 1_000_000_000,
                "type": "COMPUTE",
                "accelerators": "cuda" if cuda else None,
                "labels": {
                    "ai.backend.kernelspec": "1",
                    "ai.backend.features": "batch query uid-match user-input",
                    "ai.backend.base-distro": "ubuntu22.04",
                    "ai.backend.runtime-type": "python",
                    "ai.backend.runtime-path": "/usr/bin/python3",
                    "ai.backend.resource.min.cpu": "1",
                    "ai.backend.resource.min.mem": "256m",
                },
                "resources": {"cpu": {"min": "1", "max": None}, "mem": {"min": "256m", "max": None}},
            }
        )
        aliases += [
            {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, alias)), "alias": alias, "image": image_id}
            for alias, target in ALIASES.items()
            if target == canonical
        ]
    return {"container_registries": list(registries.values()), "images": rows, "image_aliases": aliases}


#: slot name -> (type, unit, rank): the slots the agents may report (the agent's resource rows refer to them)
SLOT_TYPES = {
    "cpu": ("count", "Core", 100),
    "mem": ("bytes", "GiB", 200),
    "cuda.device": ("count", "GPU", 300),
    "cuda.shares": ("count", "fGPU", 400),
}


def slot_type_rows() -> list[dict[str, Any]]:
    return [
        {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"slot:{name}")),
            "slot_name": name,
            "slot_type": kind,
            "required": name in ("cpu", "mem"),
            "display_name": name,
            "description": name,
            "display_unit": unit,
            "display_icon": name.split(".")[0],
            "number_format": {"binary": kind == "bytes", "round_length": 0},
            "rank": rank,
        }
        for name, (kind, unit, rank) in SLOT_TYPES.items()
    ]


def _node(entity_type: str, entity_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"node:{entity_type}:{entity_id}"))


def membership_rows() -> dict[str, list[dict[str, Any]]]:
    """The permission graph's nodes of the domain, the project and the users, and each user's membership of both.

    The manager checks a user's roles in a project through these memberships (without them: 403
    ``not-enough-permission`` on creating a session); ``permissions provision`` then gives the members the
    roles of the manager's presets.
    """
    entities = [("domain", DOMAIN_ID), ("project", PROJECT_ID)] + [("user", u.uuid) for u in USERS.values()]
    nodes = [
        {"id": _node(kind, entity_id), "entity_type": kind, "entity_id": entity_id}
        for kind, entity_id in entities
    ]
    memberships = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"member:{scope}:{user.uuid}")),
            "virtual_entity_id": _node(kind, scope),
            "member_entity_id": _node("user", user.uuid),
        }
        for kind, scope in (("domain", DOMAIN_ID), ("project", PROJECT_ID))
        for user in USERS.values()
    ]
    return {"virtual_entities": nodes, "entity_memberships": memberships}


def fixture_data(keypairs: dict[str, KeypairSpec]) -> dict[str, Any]:
    """The database's content: domain, project, users and keypairs, policies, presets, scaling group, images."""
    graph = membership_rows()
    vfolder_hosts = {VOLUME_HOST: ALL_VFOLDER_PERMISSIONS}
    users = [
        {
            "uuid": spec.uuid,
            "username": spec.name,
            "email": email_of(spec.name),
            "need_password_change": False,
            "full_name": spec.name,
            "description": "",
            "status": "active",
            "status_info": "admin-requested",
            "domain_name": DOMAIN,
            "domain_id": DOMAIN_ID,
            "resource_policy": "default",
            "role": spec.role,
        }
        for spec in USERS.values()
    ]
    return {
        # the nodes first: the fixture keeps nodes it wrote itself and adds the others
        "virtual_entities": graph["virtual_entities"],
        "domains": [
            {
                "id": DOMAIN_ID,
                "name": DOMAIN,
                "description": "",
                "is_active": True,
                "total_resource_slots": {},
                "allowed_vfolder_hosts": vfolder_hosts,
                "allowed_docker_registries": ["cr.backend.ai"],
            }
        ],
        "user_resource_policies": [
            {
                "name": "default",
                "max_vfolder_count": 0,
                "max_quota_scope_size": -1,
                "max_session_count_per_model_session": 10,
            }
        ],
        "project_resource_policies": [
            {"name": "default", "max_vfolder_count": 0, "max_quota_scope_size": -1, "max_network_count": 3}
        ],
        "keypair_resource_policies": [
            {
                "name": "default",
                "default_for_unspecified": "UNLIMITED",
                "total_resource_slots": {},
                "max_session_lifetime": 0,
                "max_concurrent_sessions": 50,
                "max_containers_per_session": 8,
                "idle_timeout": 3600,
                "allowed_vfolder_hosts": vfolder_hosts,
            }
        ],
        "groups": [
            {
                "id": PROJECT_ID,
                "name": PROJECT,
                "description": "",
                "is_active": True,
                "domain_name": DOMAIN,
                "resource_policy": "default",
                "total_resource_slots": {},
                "allowed_vfolder_hosts": vfolder_hosts,
                "type": "general",
            }
        ],
        "scaling_groups": [
            {
                "id": SCALING_GROUP_ID,
                "name": SCALING_GROUP,
                "description": "",
                "is_active": True,
                "is_public": True,
                "driver": "static",
                "driver_opts": {},
                "scheduler": "fifo",
                "scheduler_opts": {},
                "wsproxy_addr": "",
            }
        ],
        "sgroups_for_domains": [{"resource_group_id": SCALING_GROUP_ID, "domain_id": DOMAIN_ID}],
        "sgroups_for_groups": [{"resource_group_id": SCALING_GROUP_ID, "group": PROJECT_ID}],
        "users": users,
        "association_groups_users": [
            {"group_id": PROJECT_ID, "user_id": spec.uuid} for spec in USERS.values()
        ],
        "keypairs": [
            {
                "access_key": keypair.access_key,
                "secret_key": keypair.secret_key,
                "is_active": True,
                "resource_policy": "default",
                "rate_limit": 100_000,
                "num_queries": 0,
                "is_admin": USERS[KEYPAIR_OWNERS[name][0]].role != "user",
                "is_default": KEYPAIR_OWNERS[name][1],
                "user": USERS[KEYPAIR_OWNERS[name][0]].uuid,
            }
            for name, keypair in keypairs.items()
        ],
        "resource_presets": [
            {
                "name": "cpu01-small",
                "resource_slots": {"cpu": "1", "mem": str(2**30)},
                "shared_memory": 2**26,
            },
            {
                "name": "cpu02-medium",
                "resource_slots": {"cpu": "2", "mem": str(4 * 2**30)},
                "shared_memory": 2**30,
            },
        ],
        "resource_slot_types": slot_type_rows(),
        **image_rows(),
        "entity_memberships": graph["entity_memberships"],
    }


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "-_" for c in key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {value!r}")


def toml_text(config: dict[str, Any]) -> str:
    """A config file: one ``[table]`` per top-level key, nested tables inline."""
    lines = []
    for section, table in config.items():
        lines += [
            "",
            f"[{_toml_key(section)}]",
            *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()),
        ]
    return "\n".join(lines).lstrip() + "\n"


def _addr(port: int) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port}


def _logging(level: str = "INFO") -> dict[str, Any]:
    return {
        "level": level,
        "drivers": ["console"],
        "pkg-ns": {"": "WARNING", "ai.backend": level, "aiohttp": "WARNING", "alembic": "WARNING"},
        "console": {"colored": False, "format": "verbose"},
    }


class ManagerHarness:
    """The manager, storage proxy and dummy agent with their databases (see the module docstring)."""

    def __init__(self, workdir: Path, *, batch_default_seconds: float = BATCH_DEFAULT_SECONDS) -> None:
        self.root = workdir
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs = self.root / "logs"
        self.batch_default_seconds = batch_default_seconds
        self.keypairs = new_keypairs()
        #: the storage proxy's secrets: shared with the manager, and its own (download/upload tokens)
        self.storage_secret = secrets.token_urlsafe(24)
        self.storage_token_secret = secrets.token_urlsafe(24)
        self.ports = {
            name: free_port()
            for name in (
                "redis",
                "etcd",
                "etcd-peer",
                "manager",
                "manager-internal",
                "manager-termui",
                "manager-webui",
                "agent-rpc",
                "agent-service",
                "agent-sock",
                "agent-termui",
                "agent-webui",
                "agent-metadata",
                "storage-client",
                "storage-manager",
                "storage-internal",
                "storage-termui",
                "storage-webui",
            )
        }
        self.endpoint = f"http://127.0.0.1:{self.ports['manager']}"
        self.logs.mkdir(exist_ok=True)
        self.postgres = _Database(self.logs / "postgres.log")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.outputs: dict[str, Path] = {}
        #: seconds from nothing to the agent ALIVE
        self.setup_seconds: float | None = None
        self.teardown_seconds: float | None = None
        #: when the set-up began and when each of its steps ended (time.monotonic())
        self.started_at = time.monotonic()
        self.timings: dict[str, float] = {}

    # -- what tests use ------------------------------------------------------------------------

    @property
    def log_files(self) -> list[Path]:
        return [self.logs]

    @property
    def secrets(self) -> list[str]:
        """Everything secret the servers know: keypair secrets, the storage proxy's, the database password."""
        return [kp.secret_key for kp in self.keypairs.values()] + [
            self.storage_secret,
            self.postgres.password,
        ]

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the manager's database."""
        with contextlib.closing(
            psycopg2.connect(
                host="127.0.0.1",
                port=self.postgres.port,
                user=self.postgres.user,
                password=self.postgres.password,
                dbname=self.postgres.database,
            )
        ) as conn, conn.cursor() as cursor:  # fmt: skip
            cursor.execute(query, args)
            return list(cursor.fetchall()) if cursor.description else []

    # -- life cycle ----------------------------------------------------------------------------

    def __enter__(self) -> ManagerHarness:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.started_at = began = time.monotonic()
        self._check_environment()
        self._write_configs()
        self._spawn("redis", self._redis_command())
        self._spawn("etcd", self._etcd_command())
        self.postgres.start()
        self._mark("postgres")
        _wait_port(self.ports["redis"], self.processes["redis"], self.logs / "redis.log")
        _wait_port(self.ports["etcd"], self.processes["etcd"], self.logs / "etcd.log")
        self._put_etcd(
            "config/redis",
            {"addr": f"127.0.0.1:{self.ports['redis']}", "redis_helper_config": self.redis_helper_config()},
        )
        self._put_etcd("volumes", self.volumes_config())
        self._mark("redis, etcd")
        # what needs no database starts now; the manager imports itself meanwhile and starts on the go file
        env = self._env()
        go = self.root / "database-ready"
        self._spawn(
            "manager",
            [self._python(), str(PRELOADED_MANAGER), str(go), "-f", str(self.root / "manager.toml")],
            env=env,
        )
        self._spawn(
            "storage-proxy",
            [
                str(VENV / "bin" / "backend.ai"),
                "storage",
                "start-server",
                "-f",
                str(self.root / "storage-proxy.toml"),
            ],
            env=env,
        )
        self._spawn("agent", [self._python(), str(DUMMY_AGENT), "-f", str(self.root / "agent.toml")], env=env)
        # (it prints the secret key: its output stays next to the key, out of the logs)
        rpc = self.root / "rpc"
        keypair = self._spawn_cli(
            "rpc-keypair", "generate-rpc-keypair", str(rpc), "manager", output=rpc / "out"
        )
        # the manager's own role presets (its permission model), added to the fixture
        (self.root / "fixtures" / "manager").mkdir(parents=True, exist_ok=True)
        presets = self._spawn_cli("role-presets", "permissions", "emit", "--repository", str(self.root))
        self._finish(*self._spawn_cli("schema", "schema", "oneshot", "-f", str(self.root / "alembic.ini")))
        self._mark("schema")
        self._finish(*presets)
        self._write_fixture()
        self._finish(*self._spawn_cli("fixture", "fixture", "populate", str(self.root / "fixture.json")))
        self._mark("fixture")
        # each domain, project and user gets the roles of the presets; then the users may act in their project
        self._finish(*self._spawn_cli("roles", "permissions", "provision"))
        self._finish(*keypair)
        self._mark("roles")
        go.touch()
        self._wait_manager()
        self._mark("manager")
        self._wait_agent()
        self._mark("agent alive")
        self.setup_seconds = time.monotonic() - began

    def _mark(self, step: str) -> None:
        self.timings[step] = time.monotonic()

    def stop(self) -> None:
        """Stop every process (agent and servers first, the databases last) and drop the database's files."""
        began = time.monotonic()
        order = ["agent", "storage-proxy", "manager", "etcd", "redis"]
        for names in (order[:3], order[3:]):
            group = [self.processes.pop(name) for name in names if name in self.processes]
            if group:
                _stop_groups(group, signal.SIGTERM, timeout=10)
        rest = list(self.processes.values())
        self.processes.clear()
        if rest:
            _stop_groups(rest, signal.SIGKILL, timeout=5)
        self.postgres.stop()
        for data in ("etcd-data", "redis-data", "ipc", "var", "scratches"):
            shutil.rmtree(self.root / data, ignore_errors=True)
        self.teardown_seconds = time.monotonic() - began

    # -- set-up steps --------------------------------------------------------------------------

    def _check_environment(self) -> None:
        missing = [str(VENV / "bin" / "backend.ai")] if not (VENV / "bin" / "backend.ai").exists() else []
        missing += [tool for tool in ("redis-server", "etcd") if shutil.which(tool) is None]
        if missing:
            raise ManagerUnavailable(f"missing {', '.join(missing)}: run scripts/bai-manager-env")

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("BACKEND_", "AIRFLOW"))}
        # the manager's image code needs a Docker client object, not a daemon
        env["DOCKER_HOST"] = f"unix://{self.root / 'no-docker.sock'}"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _python(self) -> str:
        return str(VENV / "bin" / "python")

    def _mgr(self) -> list[str]:
        return [str(VENV / "bin" / "backend.ai"), "mgr", "-f", str(self.root / "manager.toml")]

    def _spawn(
        self, name: str, command: list[str], env: dict[str, str] | None = None, output: Path | None = None
    ) -> None:
        self.outputs[name] = output or self.logs / f"{name}.log"
        with self.outputs[name].open("ab") as log:
            self.processes[name] = subprocess.Popen(
                command, cwd=self.root, env=env or self._env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    def _spawn_cli(
        self, name: str, *args: str, output: Path | None = None
    ) -> tuple[str, subprocess.Popen[bytes]]:
        self._spawn(name, [*self._mgr(), *args], output=output)
        return name, self.processes[name]

    def _finish(self, name: str, process: subprocess.Popen[bytes], timeout: float = 180) -> None:
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        self.processes.pop(name, None)
        log = self.outputs[name].read_text(errors="replace")
        # some manager commands log an error and still exit 0
        if code != 0 or "Traceback" in log:
            raise RuntimeError(f"backend.ai mgr {name} failed (exit {code}):\n{log[-4000:]}")

    def _put_etcd(self, prefix: str, tree: dict[str, Any]) -> None:
        """What ``backend.ai mgr etcd put-json PREFIX`` writes, in one transaction of etcd's JSON API."""
        puts = [
            {"requestPut": {"key": _b64(f"/sorna/local/{key}"), "value": _b64(str(value))}}
            for key, value in _flatten(prefix, tree).items()
        ]
        url = f"http://127.0.0.1:{self.ports['etcd']}/v3/kv/txn"
        answer = httpx.post(url, json={"success": puts}, timeout=30)
        answer.raise_for_status()
        if not answer.json().get("succeeded"):
            raise RuntimeError(f"etcd did not take the keys under {prefix}: {answer.text}")

    def _redis_command(self) -> list[str]:
        data = self.root / "redis-data"
        data.mkdir(exist_ok=True)
        return [
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.ports["redis"]), "--dir", str(data),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes",
        ]  # fmt: skip

    def _etcd_command(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        return [
            "etcd", "--name", "harness", "--data-dir", str(self.root / "etcd-data"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"harness={peer}", "--log-level", "warn",
        ]  # fmt: skip

    def _wait_manager(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in ("manager", "storage-proxy", "agent"):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"the {name} exited:\n{self._tail(name)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.endpoint + "/", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the manager did not answer within {timeout} s:\n{self._tail('manager')}")

    def _wait_agent(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in ("manager", "storage-proxy", "agent"):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"the {name} exited:\n{self._tail(name)}")
            rows = self.sql("SELECT status, scaling_group FROM agents")
            if any(str(status) == "ALIVE" and group == SCALING_GROUP for status, group in rows):
                return
            time.sleep(0.3)
        raise RuntimeError(
            f"no ALIVE agent within {timeout} s:\n{self._tail('agent')}\n--- manager:\n{self._tail('manager')}"
        )

    def _tail(self, name: str, size: int = 3000) -> str:
        path = self.outputs.get(name, self.logs / f"{name}.log")
        return path.read_text(errors="replace")[-size:] if path.exists() else ""

    # -- configs -------------------------------------------------------------------------------

    def _write_configs(self) -> None:
        for folder in ("rpc", "ipc", "var", "scratches", "vfolders/volume1", "mounts", "commit"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        files = {
            "manager.toml": toml_text(self.manager_config()),
            "agent.toml": toml_text(self.agent_config()),
            "agent.dummy.toml": toml_text(self.dummy_config()),
            "storage-proxy.toml": toml_text(self.storage_config()),
            # what `schema oneshot` reads: where the schema's migrations are (for the version stamp), the database
            "alembic.ini": "[alembic]\nscript_location = ai.backend.manager.models:alembic\n"
            f"sqlalchemy.url = {self.postgres.url_for('postgresql+asyncpg')}\n",
        }  # fmt: skip
        for name, text in files.items():
            path = self.root / name
            path.write_text(text)
            path.chmod(0o600)

    def _write_fixture(self) -> None:
        data = fixture_data(self.keypairs)
        presets = json.loads((self.root / "fixtures" / "manager" / "example-role-presets.json").read_text())
        data.update({table: rows for table, rows in presets.items() if not table.startswith("__")})
        path = self.root / "fixture.json"
        path.write_text(json.dumps(data, indent=1))
        path.chmod(0o600)

    def _etcd_section(self) -> dict[str, Any]:
        return {"namespace": "local", "addr": _addr(self.ports["etcd"]), "user": "", "password": ""}

    def manager_config(self) -> dict[str, Any]:
        return {
            "etcd": self._etcd_section(),
            "db": {
                "type": "postgresql",
                "addr": _addr(self.postgres.port),
                "name": self.postgres.database,
                "user": self.postgres.user,
                "password": self.postgres.password,
            },
            "manager": {
                "num-proc": 1,
                "service-addr": _addr(self.ports["manager"]),
                "internal-addr": _addr(self.ports["manager-internal"]),
                "ssl-enabled": False,
                "heartbeat-timeout": 40.0,
                "pid-file": str(self.root / "manager.pid"),
                "ipc-base-path": str(self.root / "ipc" / "manager"),
                "rpc-auth-manager-keypair": str(self.root / "rpc" / "manager.key_secret"),
                "aiomonitor-termui-port": self.ports["manager-termui"],
                "aiomonitor-webui-port": self.ports["manager-webui"],
                "disabled-plugins": [],
                "hide-agents": False,
            },
            "docker-registry": {"ssl-verify": False},
            "logging": _logging(),
            "debug": {"enabled": False},
            "otel": {"enabled": False},
            "pyroscope": {"enabled": False},
        }

    def agent_config(self) -> dict[str, Any]:
        return {
            "etcd": self._etcd_section(),
            "agent": {
                "backend": "dummy",
                "rpc-listen-addr": _addr(self.ports["agent-rpc"]),
                "service-addr": _addr(self.ports["agent-service"]),
                "ssl-enabled": False,
                "agent-sock-port": self.ports["agent-sock"],
                "initial-resource-group-name": SCALING_GROUP,
                "pid-file": str(self.root / "agent.pid"),
                "ipc-base-path": str(self.root / "ipc" / "agent"),
                "var-base-path": str(self.root / "var"),
                "image-commit-path": str(self.root / "commit"),
                "mount-path": str(self.root / "mounts"),
                "aiomonitor-termui-port": self.ports["agent-termui"],
                "aiomonitor-webui-port": self.ports["agent-webui"],
                "metadata-server-port": self.ports["agent-metadata"],
                "event-loop": "asyncio",
            },
            "container": {
                "port-range": [30000, 31000],
                "bind-host": "127.0.0.1",
                "sandbox-type": "docker",
                "scratch-type": "hostdir",
                "scratch-root": str(self.root / "scratches"),
                "scratch-size": "1G",
            },
            "resource": {"reserved-cpu": 0, "reserved-mem": "0", "reserved-disk": "0"},
            "logging": _logging(),
            "debug": {"enabled": False},
            "otel": {"enabled": False},
            "pyroscope": {"enabled": False},
        }

    def dummy_config(self) -> dict[str, Any]:
        """``agent.dummy.toml``: short delays, fake hardware, every image present."""
        short = 0.05
        return {
            "agent": {
                "delay": {
                    key: short
                    for key in (
                        "scan-image",
                        "pull-image",
                        "push-image",
                        "purge-images",
                        "destroy-kernel",
                        "clean-kernel",
                        "create-network",
                        "destroy-network",
                    )
                },  # fmt: skip
                "image": {"already-have": list(IMAGES), "need-to-pull": [], "missing": []},
                "resource": {"cpu": {"num-core": AGENT_CPUS}, "memory": {"size": AGENT_MEMORY}},
            },
            "kernel-creation-ctx": {
                "delay": {
                    key: short
                    for key in ("prepare-scratch", "prepare-ssh", "spawn", "start-container", "mount-krunner")
                }
            },
            "kernel": {
                "use-fake-code-runner": True,
                "delay": {
                    key: short
                    for key in (
                        "check-status",
                        "get-completions",
                        "get-logs",
                        "interrupt-kernel",
                        "start-service",
                        "start-model-service",
                        "shutdown-service",
                        "commit",
                        "get-service-apps",
                        "accept-file",
                        "download-file",
                        "download-single",
                        "list-files",
                    )
                },  # fmt: skip
            },
            "batch": {"default-seconds": self.batch_default_seconds},
        }

    def storage_config(self) -> dict[str, Any]:
        return {
            "etcd": self._etcd_section(),
            "storage-proxy": {
                "node-id": "i-storage-proxy-local",
                "num-proc": 1,
                "event-loop": "asyncio",
                "pid-file": str(self.root / "storage-proxy.pid"),
                "ipc-base-path": str(self.root / "ipc" / "storage"),
                "aiomonitor-termui-port": self.ports["storage-termui"],
                "aiomonitor-webui-port": self.ports["storage-webui"],
                "scandir-limit": 1000,
                "max-upload-size": "10g",
                "secret": self.storage_token_secret,
                "session-expire": "1d",
                "use-watcher": False,
            },
            "api": {
                "client": {"service-addr": _addr(self.ports["storage-client"]), "ssl-enabled": False},
                "manager": {
                    "service-addr": _addr(self.ports["storage-manager"]),
                    "internal-addr": _addr(self.ports["storage-internal"]),
                    "ssl-enabled": False,
                    "secret": self.storage_secret,
                },
            },
            "volume": {"volume1": {"backend": "vfs", "path": str(self.root / "vfolders" / "volume1")}},
            "logging": _logging(),
            "debug": {"enabled": False},
            "otel": {"enabled": False},
            "pyroscope": {"enabled": False},
        }

    @staticmethod
    def redis_helper_config() -> dict[str, float]:
        return {"socket_timeout": 5.0, "socket_connect_timeout": 2.0, "reconnect_poll_timeout": 0.3}

    def volumes_config(self) -> dict[str, Any]:
        return {
            "_types": {"group": "", "user": ""},
            "default_host": VOLUME_HOST,
            "proxies": {
                "local": {
                    "client_api": f"http://127.0.0.1:{self.ports['storage-client']}",
                    "manager_api": f"http://127.0.0.1:{self.ports['storage-manager']}",
                    "secret": self.storage_secret,
                    "ssl_verify": "false",
                }
            },
            "exposed_volume_info": "percentage",
        }


class _Database(PostgreSQL):
    """The manager's database ``backend``, owned by the superuser ``backend`` (the schema adds extensions)."""

    user = "backend"
    database = "backend"

    def url_for(self, driver: str) -> str:
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"


def _flatten(prefix: str, tree: dict[str, Any]) -> dict[str, Any]:
    """Nested keys joined with ``/``, each quoted (as Backend.AI's etcd client stores a tree)."""
    from urllib.parse import quote

    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}/{quote(key)}"
        flat.update(_flatten(path, value) if isinstance(value, dict) else {path: value})
    return flat


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log.stem} exited:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{log.stem} did not listen on {port} within {timeout} s")


def ensure_environment() -> None:
    """Install what the harness runs (``scripts/bai-manager-env``; a no-op when it is there)."""
    done = subprocess.run(["bash", str(ENV_SCRIPT)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise ManagerUnavailable(f"scripts/bai-manager-env failed:\n{done.stderr[-4000:]}")


@contextlib.contextmanager
def running_manager(workdir: Path) -> Iterator[ManagerHarness]:
    with ManagerHarness(workdir) as harness:
        yield harness


if __name__ == "__main__":  # a manual run: bring it up, print where, wait for Ctrl-C
    import tempfile

    with ManagerHarness(Path(tempfile.mkdtemp(prefix="bai-manager-"))) as up:
        print(
            f"manager at {up.endpoint}, up in {up.setup_seconds:.1f} s; files in {up.root}", file=sys.stderr
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    print(f"stopped in {up.teardown_seconds:.1f} s", file=sys.stderr)
