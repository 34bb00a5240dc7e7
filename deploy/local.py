"""The FastTrack deployment on one machine without Docker: PostgreSQL and Airflow's four components.

The topology of ``docker-compose.yaml`` as processes on this host: a PostgreSQL server from the distribution's
packages (its own data directory and a free port on 127.0.0.1), then what the compose file's ``airflow-init``
does (``airflow db migrate``, the admin user, ``fasttrack pools sync``), then ``airflow api-server``,
``scheduler``, ``dag-processor`` and ``triggerer`` as separate processes with the settings of
``deploy/airflow.env`` and the Airflow local settings of ``deploy/config``. The DAGs come from the git DAG bundle
of those settings: a repository in the deployment's home (``repository``) made from ``dags_folder`` unless it
exists. ``scripts/serve`` and the e2e tests both run it::

    with LocalDeployment(home, dags_folder=ROOT / "dags", connection=conn_json) as airflow:
        airflow.url, airflow.username, airflow.password   # the UI and its login
        airflow.cli("dags", "list")                       # the airflow CLI against this deployment

With ``executor="CeleryExecutor"`` it runs what the compose file's ``celery`` profile adds: a Redis server from the
distribution's packages as the broker (a free port on 127.0.0.1, a new password) and two ``airflow celery worker``
processes. Each worker reports its own hostname, an address of the loopback network (``CELERY_WORKERS``), as a
worker on its own machine would.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import psutil
from dotenv import dotenv_values
from git import Actor, Repo

__all__ = [
    "CELERY_SETTINGS",
    "CELERY_WORKERS",
    "COMPONENTS",
    "EXECUTORS",
    "PER_DEPLOYMENT",
    "SHARED_SETTINGS",
    "LOCAL_SETTINGS_DIR",
    "LocalDeployment",
    "PostgreSQL",
    "Redis",
    "dag_bundle",
    "pipelines_repository",
    "running",
    "shared_settings",
    "worker_hostname",
]

ROOT = Path(__file__).resolve().parent.parent
#: The settings every FastTrack deployment shares (docker-compose.yaml reads it as its env_file).
SHARED_SETTINGS = Path(__file__).resolve().with_name("airflow.env")
#: Settings that differ per deployment: addresses, secrets, the connection; docker-compose.yaml sets the same.
PER_DEPLOYMENT = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW_CONN_BACKENDAI_DEFAULT",
    "AIRFLOW_CONN_FASTTRACK_GIT",
    "AIRFLOW__CORE__DAGS_FOLDER",
)
#: CeleryExecutor's addresses: the broker (Redis) and the database that keeps the tasks' results.
CELERY_SETTINGS = ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND")
#: The folder of the deployment's ``airflow_local_settings`` (the Compose image has it in ``$AIRFLOW_HOME/config``).
LOCAL_SETTINGS_DIR = ROOT / "deploy" / "config"
#: Airflow's long-running components, one process each.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: The executors a deployment runs with: tasks as the scheduler's subprocesses, or on Celery workers.
EXECUTORS = ("LocalExecutor", "CeleryExecutor")
#: CeleryExecutor's workers, by the hostname each reports: 127.0.0.0/8 is all this host's loopback, so the
#: api-server reaches a running task's log server at any of them.
CELERY_WORKERS = ("127.0.0.2", "127.0.0.3")
#: Where a Celery worker of the local deployment reads its hostname (``worker_hostname``).
WORKER_HOSTNAME_VARIABLE = "FASTTRACK_WORKER_HOSTNAME"
#: The user that [core] simple_auth_manager_users makes an admin.
ADMIN_USER = "admin"
#: What the health endpoint reports on, all of it "healthy" once the deployment is up.
HEALTH_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
#: PostgreSQL refuses to run as root; as root it runs as this system user.
POSTGRES_OS_USER = "postgres"
#: The author of the first commit of a repository the deployment creates.
DEPLOYMENT_AUTHOR = Actor("FastTrack deployment", "deployment@fasttrack.invalid")


def shared_settings() -> dict[str, str]:
    """``deploy/airflow.env`` as a mapping, parsed as Compose parses an env_file."""
    return {key: value for key, value in dotenv_values(SHARED_SETTINGS).items() if value is not None}


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the local deployment's Celery workers: the hostname each was given."""
    return os.environ.get(WORKER_HOSTNAME_VARIABLE) or socket.getfqdn()


def dag_bundle() -> dict[str, Any]:
    """The DAG bundle of ``deploy/airflow.env`` (the one entry of ``[dag_processor] dag_bundle_config_list``)."""
    (bundle,) = json.loads(shared_settings()["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"])
    return dict(bundle)


def pipelines_repository(path: Path, source: Path) -> Path:
    """The git repository the DAG bundle tracks: ``path`` as it is when it already is one (its commits are kept),
    else a new repository there with one commit of ``source``'s files on the bundle's branch."""
    if (path / ".git").is_dir():
        return path
    if path.exists() and any(path.iterdir()):
        raise RuntimeError(f"{path} is not empty and not a git repository: the DAG bundle cannot use it")
    shutil.copytree(source, path, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    with Repo.init(path, initial_branch=dag_bundle()["kwargs"]["tracking_ref"]) as repo:
        repo.git.add("--all")
        repo.index.commit(f"Pipelines from {source}", author=DEPLOYMENT_AUTHOR, committer=DEPLOYMENT_AUTHOR)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin_dir() -> Path:
    """The newest PostgreSQL server installed from the distribution's packages (``/usr/lib/postgresql/N/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise RuntimeError(
            "no PostgreSQL server in /usr/lib/postgresql; scripts/bootstrap-system installs it"
        )
    return Path(found[-1]).parent


def running(pids: set[int] | list[int]) -> list[int]:
    """Those of ``pids`` that are still running (not exited, not zombies)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return sorted(alive)


def _stop_groups(processes: list[subprocess.Popen[bytes]], sig: int, timeout: float) -> None:
    """``sig`` to each process's group and everything it started, all at once; SIGKILL what outlives ``timeout``."""
    family: list[psutil.Process] = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            family += [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.send_signal(sig)
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=10)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PostgreSQL:
    """A throwaway PostgreSQL server: data in a new temporary directory, 127.0.0.1 on a free port."""

    user = "airflow"
    database = "airflow"

    def __init__(self, log_path: Path) -> None:
        self.bin_dir = postgres_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="fasttrack-postgres-"))
        self.log_path = log_path
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Airflow connects with."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", POSTGRES_OS_USER, "--", *command]
        return list(command)

    def _run(self, *command: str, env: dict[str, str] | None = None) -> None:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(command[0]).name} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> None:
        """initdb, start the server, create the database."""
        if os.geteuid() == 0:
            owner = pwd.getpwnam(POSTGRES_OS_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        password_file = self.root / "password"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.password)
        if os.geteuid() == 0:
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        data = self.root / "data"
        initdb = str(self.bin_dir / "initdb")
        self._run(
            *self._as_owner(initdb, "-D", str(data), "-U", self.user, f"--pwfile={password_file}"),
            *("--auth=scram-sha-256", "--encoding=UTF8", "--no-locale"),
        )
        password_file.unlink()
        server = [str(self.bin_dir / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.root)]
        # a throwaway database: no crash safety needed
        for setting in (
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
        ):
            server += ["-c", setting]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._as_owner(*server), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        ready = [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        while subprocess.run(ready).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        client_env = {**os.environ, "PGPASSWORD": self.password}
        createdb = str(self.bin_dir / "createdb")
        self._run(
            createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database, env=client_env
        )

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then remove the data directory."""
        process, self.process = self.process, None
        if process is not None:
            _stop_groups([process], signal.SIGINT, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


class Redis:
    """A throwaway Redis server (CeleryExecutor's broker): no persistence, 127.0.0.1 on a free port, a password."""

    def __init__(self, log_path: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("no redis-server on PATH; scripts/system-packages installs it")
        self.executable = executable
        self.root = Path(tempfile.mkdtemp(prefix="fasttrack-redis-"))
        self.log_path = log_path
        self.port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker URL Celery connects with."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (its settings on standard input, so that the password is in no command line)."""
        settings = (
            f"bind 127.0.0.1\nport {self.port}\ndir {self.root}\nsave ''\nappendonly no\n"
            f"requirepass {self.password}\n"
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.executable, "-"], stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        assert self.process.stdin is not None
        self.process.stdin.write(settings.encode())
        self.process.stdin.close()
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Redis did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=2).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            _stop_groups([process], signal.SIGTERM, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


class LocalDeployment:
    """PostgreSQL plus Airflow's api-server, scheduler, dag-processor and triggerer (see the module docstring)."""

    def __init__(
        self,
        home: Path,
        *,
        dags_folder: Path,
        connection: str,
        admin_password: str | None = None,
        port: int | None = None,
        settings: dict[str, str] | None = None,
        executor: str = "LocalExecutor",
    ) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor {executor!r}: one of {', '.join(EXECUTORS)}")
        self.executor = executor
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags_folder = Path(dags_folder)
        #: The git repository of the deployment's DAG bundle (made from ``dags_folder`` at start unless it exists).
        self.repository = self.home / "pipelines"
        self.postgres = PostgreSQL(self.home / "postgres.log")
        self.redis = Redis(self.home / "redis.log") if executor == "CeleryExecutor" else None
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.username = ADMIN_USER
        self.password = admin_password or secrets.token_urlsafe(12)
        self.secrets = {
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        }
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        }
        per_deployment = {
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            **self.secrets,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW_CONN_BACKENDAI_DEFAULT": connection,
            "AIRFLOW_CONN_FASTTRACK_GIT": json.dumps({"conn_type": "git", "host": str(self.repository)}),
            # not parsed (the DAG bundle is): where the fasttrack CLI looks a DAG id's pipeline file up
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.repository),
        }
        assert set(per_deployment) == set(PER_DEPLOYMENT)
        if self.redis is not None:
            per_deployment["AIRFLOW__CELERY__BROKER_URL"] = self.redis.url
            per_deployment["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+{self.postgres.url}"
        self.env: dict[str, str] = {
            **inherited,
            **shared_settings(),
            **per_deployment,
            # where this host's processes listen: loopback only, free ports (several deployments may run)
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_HOME": str(self.home),
            # the bundle's clones: per deployment, as several deployments on one host have the same bundle name
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.home / "dag_bundles"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            # the repository (deploy, tests' DAG modules) and the deployment's airflow_local_settings
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT), str(LOCAL_SETTINGS_DIR), os.environ.get("PYTHONPATH")])
            ),
            **(settings or {}),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    # lifecycle
    def start(self) -> LocalDeployment:
        """The pipelines' repository, PostgreSQL, the init steps, then the four components; returns once every
        one reports healthy."""
        try:
            pipelines_repository(self.repository, self.dags_folder)
            self.postgres.start()
            self.cli("db", "migrate", timeout=600)
            self._write_password()
            self._run("fasttrack", [sys.executable, "-m", "airflow_provider_fasttrack.cli", "pools", "sync"])
            for component in COMPONENTS:
                log = self.log_path(component).open("ab")
                self._logs.append(log)
                self.processes[component] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", component],
                    env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
            if self.redis is not None:
                self.redis.start()
                for number, hostname in enumerate(CELERY_WORKERS, 1):
                    self._start_worker(number, hostname)
            self._wait_healthy(timeout=240)
            if self.redis is not None:
                self._wait_workers(timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the components and everything they started (task processes too), then PostgreSQL."""
        processes, self.processes = self.processes, {}
        _stop_groups(list(processes.values()), signal.SIGTERM, timeout=30)
        if self.redis is not None:
            self.redis.stop()
        self.postgres.stop()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The api-server's process."""
        return self.processes.get("api-server")

    def pids(self) -> set[int]:
        """Every process of this deployment now: the components, PostgreSQL, and all that they started."""
        roots = [p.pid for p in self.processes.values()]
        for server in (self.postgres, self.redis):
            if server is not None and server.process is not None:
                roots.append(server.process.pid)
        found: set[int] = set()
        for pid in roots:
            try:
                process = psutil.Process(pid)
                found.update([pid, *(child.pid for child in process.children(recursive=True))])
            except psutil.NoSuchProcess:
                continue
        return found

    def worker_names(self) -> dict[str, str]:
        """CeleryExecutor's workers: the hostname each reports -> its component name (``celery-worker-N``)."""
        if self.redis is None:
            return {}
        return {hostname: f"celery-worker-{number}" for number, hostname in enumerate(CELERY_WORKERS, 1)}

    def components(self) -> list[str]:
        """The names of this deployment's long-running Airflow processes."""
        return [*COMPONENTS, *self.worker_names().values()]

    def _start_worker(self, number: int, hostname: str) -> None:
        """``airflow celery worker`` with its own hostname and Celery node name. The first serves the task logs
        of the host (they share one folder) on the deployment's worker log server port."""
        name = f"celery-worker-{number}"
        env = {
            **self.env,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
            WORKER_HOSTNAME_VARIABLE: hostname,
        }
        command = [sys.executable, "-m", "airflow", "celery", "worker", "--celery-hostname", f"{name}@%h"]
        if number > 1:
            command.append("--skip-serve-logs")
        log = self.log_path(name).open("ab")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def _wait_workers(self, timeout: float) -> None:
        """Until every Celery worker answers a ping through the broker."""
        app = "airflow.providers.celery.executors.celery_executor.app"
        ping = [sys.executable, "-m", "celery", "--app", app, "inspect", "ping", "--timeout", "5"]
        deadline = time.monotonic() + timeout
        while True:
            for name in self.worker_names().values():
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"airflow {name} exited:\n{self.log_tail()}")
            answer = subprocess.run(ping, env=self.env, capture_output=True, text=True, timeout=120).stdout
            if all(f"{name}@" in answer for name in self.worker_names().values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Celery workers did not answer within {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(2)

    def _write_password(self) -> None:
        """The admin's password, in the simple auth manager's passwords file (mode 0600)."""
        path = Path(self.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({self.username: self.password}, out)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for component, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"airflow {component} exited:\n{self.log_tail()}")
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                if all((health.get(part) or {}).get("status") == "healthy" for part in HEALTH_PARTS):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the deployment was not healthy within {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(2)

    # using it
    def login(self) -> str:
        """An API access token for the admin (the UI's login form posts the same)."""
        answer = httpx.post(
            f"{self.url}/auth/token", json={"username": self.username, "password": self.password}, timeout=30
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])

    def _run(self, name: str, command: list[str], timeout: float = 120) -> str:
        result = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(
                f"{name} {' '.join(command[3:])} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        return result.stdout

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        """``airflow ARGS`` against this deployment; its standard output."""
        command = [sys.executable, "-m", "airflow", *args]
        if check:
            return self._run("airflow", command, timeout=timeout)
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout).stdout

    def cli_json(self, *args: str) -> Any:
        """``airflow ... -o json`` output (warnings printed before it are skipped)."""
        lines = [line for line in self.cli(*args).splitlines() if line.startswith(("[", "{"))]
        return json.loads(lines[-1]) if lines else []

    def run_dag(self, dag_id: str, timeout: float = 240) -> dict[str, Any]:
        """Unpause, trigger and wait for one run of ``dag_id``; returns the run as ``list-runs`` shows it."""
        deadline = time.monotonic() + 120
        while dag_id not in self.cli("dags", "list", "-o", "json", check=False):
            assert time.monotonic() < deadline, f"{dag_id} was never parsed:\n{self.log_tail()}"
            time.sleep(3)
        self.cli("dags", "unpause", dag_id)
        self.cli("dags", "trigger", dag_id)
        deadline = time.monotonic() + timeout
        while True:
            runs = self.cli_json("dags", "list-runs", dag_id, "-o", "json")
            if runs and runs[0]["state"] in {"success", "failed"}:
                return dict(runs[0])
            assert time.monotonic() < deadline, f"{dag_id} did not finish:\n{self.log_tail()}"
            time.sleep(3)

    def log_path(self, component: str) -> Path:
        """Where a component's output goes (``postgres`` for the database server)."""
        return self.home / f"{component}.log"

    def log_files(self) -> list[Path]:
        """Every log this deployment writes outside its task logs."""
        servers = ["postgres", "redis"] if self.redis is not None else ["postgres"]
        return [self.log_path(name) for name in (*servers, *self.components())] + [
            self.home / "logs" / name for name in ("scheduler", "dag_processor")
        ]

    def log_tail(self, chars: int = 6000) -> str:
        """The end of each component's log."""
        parts = []
        components = self.components()
        for component in components:
            path = self.log_path(component)
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {component} ---\n{text[-(chars // len(components)) :]}")
        return "\n".join(parts)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()
