"""Run a real backendai-lite server for tests.

``LiteServer`` starts ``python -m airflow_provider_fasttrack.lite.cli serve`` as a subprocess on a free
loopback port with its own data dir and config, and stops it (and every session process) on exit::

    from airflow_provider_fasttrack.lite.testing import LiteServer

    with LiteServer(slots={"cpu": 4, "mem": "8g", "cuda.shares": 10}) as lite:
        lite.url, lite.access_key, lite.secret_key     # endpoint and the generated test keypair
        lite.data_dir, lite.config_path, lite.log_path  # server state, its YAML config, its stdout/stderr
        with lite.client() as http:                     # an httpx.Client that signs every request
            http.get("/folders")
        lite.vfolder_path("data")                       # where the files of vfolder "data" live
        lite.restart()                                  # same port, same data dir

Constructor (all keyword arguments, all optional):

- ``slots``: capacity of the ``default`` scaling group (default ``DEFAULT_SLOTS``);
  ``scaling_groups``: ``{name: {cpu: .., ...}}`` instead, for several groups.
- ``mock_gpu_shares``: served with ``--mock-gpu-shares N``: the default group declares N ``cuda.shares``.
- ``keypairs``: list of keypair dicts (``access_key``, ``secret_key``, optional ``total_resource_slots``,
  ``max_concurrent_sessions``); default: one freshly generated test keypair. The first is ``access_key``.
- ``faults``: the ``faults`` section (``error_rate``, ``error_statuses``, ``error_phase``, ``latency_rate``, ...).
- ``sandbox``: ``"auto"`` (default), ``"namespace"`` or ``"none"``.
- ``extra_config``: more top-level config keys (``images``, ``presets``, ``kill_grace_seconds``, ...).
- ``data_dir``: state directory (default: a new temporary directory, removed on exit).
- ``startup_timeout``: seconds to wait for ``GET /`` to answer (default 60).

As a pytest fixture::

    @pytest.fixture
    def lite(tmp_path):
        with LiteServer(data_dir=tmp_path / "lite") as server:
            yield server
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from airflow_provider_fasttrack.lite.auth import LATEST_API_VERSION
from airflow_provider_fasttrack.lite.config import generate_keypair
from airflow_provider_fasttrack.lite.runner import sweep_session
from airflow_provider_fasttrack.signing import BackendAIAuth

__all__ = ["DEFAULT_SLOTS", "SESSION_RUNTIME", "LiteServer", "session_runtime_config"]

DEFAULT_SLOTS: dict[str, Any] = {"cpu": 8, "mem": "32g", "cuda.shares": 10, "cuda.device": 2}
#: The session runtime that ``scripts/bootstrap`` builds in the checkout: training's requirements, no Airflow.
SESSION_RUNTIME = ".venv-session"
#: The images of the shipped pipelines.
PIPELINE_IMAGES = "cr.backend.ai/*"


def session_runtime_config(checkout: str | os.PathLike[str]) -> dict[str, Any]:
    """Config keys that run the pipelines' images in ``<checkout>/.venv-session`` and pass no ``PYTHONPATH`` on.

    A session then has training's requirements but neither Airflow nor the provider, and imports only the code
    staged into the vfolders it mounts (``fasttrack stage``), as on a cluster.
    """
    from airflow_provider_fasttrack.lite.config import LiteConfig

    runtime = Path(checkout).resolve() / SESSION_RUNTIME
    if not (runtime / "bin" / "python").exists():
        raise FileNotFoundError(f"{runtime}: no session runtime; scripts/bootstrap builds it")
    inherit = [name for name in LiteConfig().inherit_environment if name != "PYTHONPATH"]
    return {"images": [{"pattern": PIPELINE_IMAGES, "runtime": str(runtime)}], "inherit_environment": inherit}


class LiteServer:
    """A backendai-lite server in a subprocess (see the module docstring)."""

    def __init__(
        self,
        *,
        slots: dict[str, Any] | None = None,
        scaling_groups: dict[str, dict[str, Any]] | None = None,
        keypairs: list[dict[str, Any]] | None = None,
        faults: dict[str, Any] | None = None,
        sandbox: str = "auto",
        extra_config: dict[str, Any] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        mock_gpu_shares: int | str | None = None,
    ) -> None:
        self._own_dir = data_dir is None
        root = Path(tempfile.mkdtemp(prefix="backendai-lite-")) if data_dir is None else Path(data_dir)
        self.data_dir = root.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if keypairs is None:
            generated = generate_keypair()
            keypairs = [{"access_key": generated.access_key, "secret_key": generated.secret_key}]
        self.access_key: str = keypairs[0]["access_key"]
        self.secret_key: str = keypairs[0]["secret_key"]
        groups = scaling_groups or {"default": dict(slots or DEFAULT_SLOTS)}
        config: dict[str, Any] = {
            "keypairs": keypairs,
            "scaling_groups": {name: {"slots": group} for name, group in groups.items()},
            "sandbox": sandbox,
        }
        if faults:
            config["faults"] = faults
        config.update(extra_config or {})
        self.config_path = self.data_dir / "config.yaml"
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            yaml.safe_dump(config, out, sort_keys=False)
        self.log_path = self.data_dir / "server.log"
        self.startup_timeout = startup_timeout
        self.mock_gpu_shares = mock_gpu_shares
        self.url = ""
        self._port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return (
            f"LiteServer(url={self.url!r}, access_key={self.access_key!r}, data_dir={str(self.data_dir)!r})"
        )

    # lifecycle
    def start(self) -> LiteServer:
        """Start the server and wait until ``GET /`` answers."""
        if self._process is not None:
            raise RuntimeError("the server is already running")
        info = self.data_dir / "server.json"
        info.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "airflow_provider_fasttrack.lite.cli", "serve",
            "--host", "127.0.0.1", "--port", str(self._port),
            "--config", str(self.config_path), "--data-dir", str(self.data_dir),
        ]  # fmt: skip
        if self.mock_gpu_shares is not None:
            cmd += ["--mock-gpu-shares", str(self.mock_gpu_shares)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise RuntimeError(f"backendai-lite exited at startup; its log:\n{self.log_tail()}")
            if info.exists() and not self.url:
                with contextlib.suppress(ValueError):
                    data = json.loads(info.read_text())
                    self._port = int(data["port"])
                    self.url = str(data["url"])
            if self.url:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.url + "/", timeout=2).status_code == 200:
                        return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"backendai-lite did not answer within {self.startup_timeout}s; log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; then kill any session process left behind."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for session_id in self.session_ids():
            sweep_session(session_id)

    def restart(self) -> LiteServer:
        """Stop and start again on the same port with the same data dir."""
        url = self.url
        self.stop()
        self.url = ""
        self.start()
        if url and self.url != url:
            raise RuntimeError(f"restarted on {self.url}, not {url}")
        return self

    def __enter__(self) -> LiteServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # helpers
    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def client(self, timeout: float = 30.0, **kwargs: Any) -> httpx.Client:
        """An httpx client for this server that signs every request with the first keypair."""
        auth = BackendAIAuth(self.access_key, self.secret_key, LATEST_API_VERSION)
        return httpx.Client(base_url=self.url, auth=auth, timeout=timeout, **kwargs)

    def vfolder_path(self, name: str, access_key: str | None = None) -> Path:
        """The host directory holding a vfolder's files."""
        return self.data_dir / "vfolders" / (access_key or self.access_key) / name

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def session_ids(self) -> list[str]:
        """Ids of every session in the data dir's database."""
        db = self.data_dir / "lite.sqlite3"
        if not db.exists():
            return []
        with contextlib.closing(sqlite3.connect(db)) as conn:
            try:
                return [row[0] for row in conn.execute("SELECT id FROM sessions")]
            except sqlite3.Error:
                return []
