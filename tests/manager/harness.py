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
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psycopg2

from deploy.local import PostgreSQL, _stop_groups, free_port
from tests.manager.fixture import (
    AGENT_CPUS,
    AGENT_MEMORY,
    IMAGES,
    SCALING_GROUP,
    VOLUME_HOST,
    KeypairSpec,
    admin_setup,
    fixture_data,
    superadmin_keypair,
)

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-bai-client"
ENV_SCRIPT = ROOT / "scripts" / "bai-manager-env"
DUMMY_AGENT = Path(__file__).resolve().with_name("dummy_agent.py")
PRELOADED_MANAGER = Path(__file__).resolve().with_name("preloaded_manager.py")

#: The API version the harness signs its own admin calls with.
API_VERSION = "v9.20250722"
#: Seconds a batch session takes when its command has no ``sleep N`` (``dummy_agent.py``).
BATCH_DEFAULT_SECONDS = 1.0
#: Seconds between the scheduler stages' looks for work (the manager's own 2 s; ``preloaded_manager.py``).
SCHEDULER_SHORT_INTERVAL = 0.5


class ManagerUnavailable(RuntimeError):
    """The manager cannot run here (its environment or a server binary is missing)."""


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
        #: the superadmin's from the start; the users' once the admin API made them (``start``)
        self.keypairs: dict[str, KeypairSpec] = {"superadmin": superadmin_keypair()}
        #: the password of the users the admin API makes
        self.password = secrets.token_urlsafe(24)
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
            self.storage_token_secret,
            self.password,
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
            env={**env, "BAI_SCHEDULER_SHORT_INTERVAL": str(SCHEDULER_SHORT_INTERVAL)},
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
        self._finish(*keypair)
        go.touch()
        # meanwhile each domain, project and user gets the roles of the presets: then users may act in their project
        self._finish(*self._spawn_cli("roles", "permissions", "provision"))
        self._mark("roles")
        self._wait_manager()
        self._mark("manager")
        self._admin_setup()
        self._mark("admin set-up")
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
                _stop_groups(group, signal.SIGTERM, timeout=5)
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

    def _admin_setup(self) -> None:
        """What a cluster's admin makes through the API (``fixture.admin_setup``), as the superadmin: the
        manager's write paths add the rows its permission checks read (the scaling group's node and roles, the
        domain's and project's reach into it), which rows written into the database directly would lack."""
        from airflow_provider_fasttrack.signing import BackendAIAuth

        keypair = self.keypairs["superadmin"]
        auth = BackendAIAuth(keypair.access_key, keypair.secret_key, API_VERSION)
        with httpx.Client(base_url=self.endpoint, auth=auth, timeout=60) as client:
            for keypair_name, query, variables in admin_setup(self.password):
                answer = client.post("/admin/gql", json={"query": query, "variables": variables})
                data = answer.json() if answer.status_code == 200 else {}
                (result,) = (data.get("data") or {None: None}).values()
                if data.get("errors") or not result or not result.get("ok"):
                    raise RuntimeError(
                        f"the admin set-up failed: {query} -> {answer.status_code} {answer.text}"
                    )
                if keypair_name is not None:
                    owner = variables.get("email") or variables["owner"]
                    made = result["keypair"]
                    self.keypairs[keypair_name] = KeypairSpec(made["access_key"], made["secret_key"], owner)

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
        data = fixture_data(self.keypairs["superadmin"])
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
            # a heartbeat that comes before the admin set-up makes the scaling group is dropped: the next is soon
            "debug": {"enabled": False, "heartbeat-interval": 3.0},
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


if __name__ == "__main__":  # a manual run: bring it up, print where, wait for Ctrl-C
    import tempfile

    with ManagerHarness(Path(tempfile.mkdtemp(prefix="bai-manager-"))) as up:
        print(
            f"manager at {up.endpoint}, up in {up.setup_seconds:.1f} s; files in {up.root}", file=sys.stderr
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    print(f"stopped in {up.teardown_seconds:.1f} s", file=sys.stderr)
