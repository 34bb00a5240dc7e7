"""``scripts/serve`` (``python -m deploy.serve``) comes up as a new user meets it and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil
import pytest
from git import Repo

from deploy.local import running
from tests.conftest import ROOT
from tests.helpers import SECRETS, wait_for

READY = re.compile(r"^Airflow UI: (?P<url>http://\S+)  login: (?P<user>\S+) / (?P<password>\S+)$")


def test_serve_comes_up_with_login_and_pools_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    assert "-m deploy.serve" in (ROOT / "scripts" / "serve").read_text()  # what scripts/serve runs
    process = subprocess.Popen(
        [sys.executable, "-m", "deploy.serve", "--port", "0", "--work-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        # started as a script's background job is (SIGINT ignored): Ctrl-C must still stop it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    family: set[int] = {process.pid}
    try:
        ready = wait_for(
            lambda: (
                next(filter(None, (READY.match(line.rstrip()) for line in lines)), None)
                or process.poll() is not None
            ),
            timeout=420,
            interval=1,
        )
        assert process.poll() is None and ready is not True, "".join(lines)
        SECRETS.add(ready["password"])
        url = ready["url"]
        output = "".join(lines)
        assert "mock accelerator: scaling group 'default' declares cuda.shares=10" in output
        assert "pool backendai-gpu-default: 100 slots" in output
        repository = tmp_path / "airflow" / "pipelines"  # the DAG bundle's repository, from dags/
        assert f"pipelines: git repository {repository}, branch main" in output
        family |= {*(child.pid for child in psutil.Process(process.pid).children(recursive=True))}

        assert httpx.get(f"{url}/", timeout=30).status_code == 200  # the UI's page
        assert httpx.get(f"{url}/api/v2/dags", timeout=30).status_code == 401  # nothing without logging in
        wrong = httpx.post(
            f"{url}/auth/token", json={"username": ready["user"], "password": "wrong"}, timeout=30
        )
        assert wrong.status_code == 401
        token = httpx.post(
            f"{url}/auth/token", json={"username": ready["user"], "password": ready["password"]}, timeout=30
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def shipped_dags() -> set[str]:
            dags = httpx.get(f"{url}/api/v2/dags", headers=headers, timeout=30).json()["dags"]
            return {dag["dag_id"] for dag in dags}

        assert "trade-qa-finetune" in wait_for(shipped_dags, timeout=180, interval=3)
        versions = httpx.get(
            f"{url}/api/v2/dags/trade-qa-finetune/dagVersions", headers=headers, timeout=30
        ).json()["dag_versions"]
        with Repo(repository) as repo:
            head = repo.head.commit.hexsha
        assert [(v["bundle_name"], v["bundle_version"]) for v in versions] == [("fasttrack", head)]
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        try:
            returncode = process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            for pid in running(family):  # the components run in process groups of their own
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
            shown = [line for line in lines if "login:" not in line]  # the generated admin password stays out
            pytest.fail("scripts/serve did not stop within 120 s of Ctrl-C:\n" + "".join(shown))
        reader.join(timeout=10)
    assert returncode == 0, "".join(lines)
    assert lines[-1].strip() == "stopped"
    assert running(family) == [], "".join(lines)
