"""A real Airflow deployment (``airflow standalone``: api-server, scheduler, dag-processor, triggerer)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.helpers import LOG_FILES, connection_env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowDeployment:
    """An ``airflow standalone`` with its own AIRFLOW_HOME on SQLite; ``cli()`` runs ``airflow`` against it."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        return result.stdout

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

    def log_tail(self, chars: int = 6000) -> str:
        return (self.home / "standalone.log").read_text(errors="replace")[-chars:]


@pytest.fixture(scope="session")
def airflow_deployment(lite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowDeployment]:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("airflow-standalone")
    port = _free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "tests" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW_CONN_BACKENDAI_DEFAULT": connection_env(lite),
        "PYTHONPATH": str(ROOT),
    }
    deployment = AirflowDeployment(home, env)
    LOG_FILES.append(home / "standalone.log")
    LOG_FILES.extend(home / "logs" / name for name in ("scheduler", "dag_processor"))
    log = (home / "standalone.log").open("wb")
    deployment.process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "standalone"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://localhost:{port}/api/v2/version", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            assert deployment.process.poll() is None, deployment.log_tail()
            assert time.monotonic() < deadline, (
                f"airflow standalone did not come up:\n{deployment.log_tail()}"
            )
            time.sleep(2)
        yield deployment
    finally:
        import signal

        os.killpg(deployment.process.pid, signal.SIGTERM)
        try:
            deployment.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(deployment.process.pid, signal.SIGKILL)
        log.close()
