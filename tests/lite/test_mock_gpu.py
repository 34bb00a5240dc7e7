"""``backendai-lite serve --mock-gpu-shares N``: a no-config server whose default group has fGPU to schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from airflow_provider_fasttrack.lite.auth import LATEST_API_VERSION
from airflow_provider_fasttrack.lite.cli import main
from airflow_provider_fasttrack.lite.config import LiteConfig
from airflow_provider_fasttrack.signing import BackendAIAuth
from tests.helpers import wait_for
from tests.lite.conftest import create_session, session_logs, terminated
from tests.lite.conftest import wait_for as wait_for_session


@pytest.fixture
def no_config_server(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    """``backendai-lite serve --port 0 --mock-gpu-shares 3`` with no config file; a client with its dev keypair."""
    data = tmp_path / "lite"
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "airflow_provider_fasttrack.lite.cli", "serve", "--port", "0"]
    command += ["--data-dir", str(data), "--mock-gpu-shares", "3"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        info = wait_for(lambda: _server_info(data / "server.json"))
        keys = json.loads((data / "dev-keypair.json").read_text())
        auth = BackendAIAuth(keys["access_key"], keys["secret_key"], LATEST_API_VERSION)
        with httpx.Client(base_url=info["url"], auth=auth, timeout=30) as http:
            wait_for(lambda: _answers(http))
            yield http, log_path
    finally:
        process.terminate()
        process.wait(timeout=30)


def _server_info(path: Path) -> dict[str, object] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/").status_code == 200
    except httpx.HTTPError:
        return False


def test_no_config_default_group_schedules_mock_fgpu(no_config_server: tuple[httpx.Client, Path]) -> None:
    http, log_path = no_config_server
    banner = log_path.read_text()
    assert (
        "backendai-lite: mock accelerator: scaling group 'default' declares cuda.shares=3 for the scheduler "
        "to account; no GPU is attached" in banner
    )
    presets = http.post("/resource/check-presets", json={"scaling_group": "default"}).json()
    available = presets["scaling_groups"]["default"]["available"]
    assert Decimal(available["cuda.shares"]) == 3
    assert Decimal(available["cpu"]) == os.cpu_count()  # the rest is still the host's own capacity

    created = create_session(
        http, "echo trained", config={"resources": {"cpu": 1, "mem": "256m", "cuda.shares": "2"}}
    )
    assert wait_for_session(http, created["sessionId"], terminated)["result"] == "SUCCESS"
    log = session_logs(http, created["sessionId"])
    assert log.startswith("[backendai-lite] mock accelerator: cuda.shares=2 accounted by the scheduler")

    too_much = {"resources": {"cpu": 1, "mem": "256m", "cuda.shares": "4"}}
    answer = http.post(
        "/session",
        json={"name": "too-much", "image": "lite/python", "type": "batch", "enqueueOnly": True,
              "startupCommand": "true", "config": too_much},
    )  # fmt: skip
    assert answer.status_code >= 400 and "cuda.shares" in answer.text  # more than the declared 3 never fits


def test_without_the_flag_no_mock_accelerator() -> None:
    config = LiteConfig()
    assert "cuda.shares" not in config.scaling_groups["default"].slots
    assert config.mock_accelerator_banner() is None


def test_mock_gpu_shares_in_a_config_applies_to_its_default_group() -> None:
    config = LiteConfig.model_validate(
        {"scaling_groups": {"gpu": {"slots": {"cpu": 4, "mem": "8g"}}}, "mock_gpu_shares": "2.5"}
    )
    assert config.scaling_groups["gpu"].capacity()["cuda.shares"] == Decimal("2.5")
    assert "scaling group 'gpu' declares cuda.shares=2.5" in (config.mock_accelerator_banner() or "")


@pytest.mark.parametrize("value", ["0", "-1", "lots", "nan"])
def test_bad_share_count_is_a_one_line_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--mock-gpu-shares", value])
    assert exited.value.code == 2
    assert f"--mock-gpu-shares: {value!r}: give a positive number of fGPU shares" in capsys.readouterr().err
