"""backendai-lite as the Backend.AI manager of the offline demo and ``scripts/serve``.

Its default scaling group has a mock accelerator (``--mock-gpu-shares``): the pipelines' fGPU tasks are
scheduled against it and run on the CPU. The pipelines' images run in the checkout's ``.venv-session``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_provider_fasttrack.lite.testing import LiteServer, session_runtime_config

__all__ = ["MOCK_GPU_SHARES", "OFFLINE_SLOTS", "connection", "mock_accelerator_line", "offline_lite", "stage"]

ROOT = Path(__file__).resolve().parent.parent
#: CPU and memory the default scaling group declares (sessions are processes on this host)
OFFLINE_SLOTS = {"cpu": 8, "mem": "32g"}
#: fGPU of the mock accelerator: room for the trade-QA pipeline's 5-share tasks
MOCK_GPU_SHARES = 10


def offline_lite(data_dir: Path) -> LiteServer:
    """backendai-lite with the offline slots and mock accelerator, data in ``data_dir`` (start it with ``with``)."""
    return LiteServer(
        data_dir=data_dir,
        slots=OFFLINE_SLOTS,
        mock_gpu_shares=MOCK_GPU_SHARES,
        extra_config=session_runtime_config(ROOT),
    )


def connection(lite: LiteServer) -> str:
    """``AIRFLOW_CONN_BACKENDAI_DEFAULT`` for a running ``lite``."""
    return json.dumps(
        {"conn_type": "backendai", "host": lite.url, "login": lite.access_key, "password": lite.secret_key}
    )


def mock_accelerator_line(lite: LiteServer) -> str:
    """What the server said at start about its mock accelerator."""
    lines = [line for line in lite.log_tail(10**6).splitlines() if "mock accelerator" in line]
    return lines[0] if lines else "backendai-lite: no mock accelerator"


def stage(lite: LiteServer) -> str:
    """The trade-QA code and English sample into vfolder ``trade-qa``; the model-type vfolder ``trade-qa-models``.

    Returns the staging summary line; raises ``RuntimeError`` with ``fasttrack stage``'s output if it fails.
    """
    command = [
        *(sys.executable, "-m", "airflow_provider_fasttrack.cli", "stage", "trade-qa"),
        *("--code", str(ROOT / "training"), "--data", str(ROOT / "training" / "samples" / "en")),
        *("--create-model", "trade-qa-models"),
    ]
    env = {**os.environ, "AIRFLOW_CONN_BACKENDAI_DEFAULT": connection(lite)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return done.stdout.splitlines()[-1]
