"""Sweeping the processes left over from ended sessions: one pass over /proc for all of them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from airflow_provider_fasttrack.lite import runner
from tests.helpers import wait_for


def leftover(session_id: str) -> subprocess.Popen[bytes]:
    """A process of the session that left its process group (as a daemon would)."""
    env = {**os.environ, "BACKENDAI_SESSION_ID": session_id}
    return subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)


def test_one_pass_over_proc_sweeps_several_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    ended = [leftover("sweep-a"), leftover("sweep-b"), leftover("sweep-b")]
    other = leftover("sweep-c")
    scans: list[int] = []
    iterdir = Path.iterdir

    def counted(path: Path):  # type: ignore[no-untyped-def]
        if path == Path("/proc"):
            scans.append(1)
        return iterdir(path)

    monkeypatch.setattr(Path, "iterdir", counted)
    try:
        assert runner.sweep_sessions({"sweep-a", "sweep-b"}) == 3
        assert len(scans) == 1
        for proc in ended:
            wait_for(lambda proc=proc: proc.poll() is not None, timeout=10)
        assert other.poll() is None
    finally:
        for proc in (*ended, other):
            proc.kill()
            proc.wait()
