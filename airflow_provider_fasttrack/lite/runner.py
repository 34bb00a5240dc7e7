"""Kernel processes: start one per kernel in its own process group, wait, and kill whole groups."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_fasttrack.lite import cluster_ssh
from airflow_provider_fasttrack.lite.sandbox import (
    MountSpec,
    death_signal_prefix,
    namespace_command,
    open_mount_source,
    prepare_fallback,
)

__all__ = [
    "KernelLaunch",
    "kill_group",
    "processes_of_session",
    "processes_of_sessions",
    "start_kernel",
    "sweep_session",
    "sweep_sessions",
]

#: PATH tail after the runtime's bin dir
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class KernelLaunch:
    """Everything needed to start one kernel's process."""

    session_id: str
    kernel_id: str
    command: str
    environ: dict[str, str]
    workdir: Path
    scratch: Path
    log_path: Path
    bin_dir: str
    mounts: list[MountSpec] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    use_namespace: bool = True
    #: lines written at the top of the kernel's log (what differs from a real agent)
    notes: list[str] = field(default_factory=list)
    #: a folder put first on PATH with the cluster tools (``ssh``, ``backendai-lite-sshd``); multi-node only
    tools_dir: Path | None = None
    #: the session's private directory of cluster SSH sockets, bound into its kernels only; multi-node only
    socket_dir: Path | None = None


async def start_kernel(launch: KernelLaunch) -> asyncio.subprocess.Process:
    """Start the kernel's command with bash in a new process group; output goes to its log file.

    Its first process gets SIGKILL when the server dies (where ``setpriv`` exists); in namespace mode that
    process roots a PID namespace, so the whole session tree dies with the server.
    """
    launch.workdir.mkdir(parents=True, exist_ok=True)
    launch.scratch.mkdir(parents=True, exist_ok=True)
    env = dict(launch.environ)
    env["PATH"] = f"{launch.bin_dir}:{SYSTEM_PATH}"
    if launch.tools_dir is not None and launch.socket_dir is not None:
        cluster_ssh.install(launch.tools_dir, launch.socket_dir)
        env["PATH"] = f"{launch.tools_dir}:{env['PATH']}"
    notes = list(launch.notes)
    for mount in launch.mounts:  # refused here with a clear message; the namespace binds it the same way
        os.close(open_mount_source(mount))
    tool_paths = [str(path) for path in (launch.tools_dir, launch.socket_dir) if path is not None]
    if launch.use_namespace:
        argv, extra = namespace_command(
            launch.workdir, launch.scratch, launch.mounts, launch.hostnames, launch.bin_dir, tool_paths
        )
        env.update(extra)
        env["HOME"] = "/home/work"
        env["LITE_COMMAND"] = launch.command
        cwd = launch.workdir
    else:
        extra, fallback_notes = prepare_fallback(launch.scratch, launch.mounts)
        notes += fallback_notes
        env.update(extra)
        env["HOME"] = str(launch.scratch)
        argv = [*death_signal_prefix(), "/bin/bash", "-c", launch.command]
        cwd = launch.scratch
    with launch.log_path.open("ab") as log:
        for line in notes:
            log.write(line.encode() + b"\n")
        log.flush()
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the whole process group led by ``pid`` (no error when it is gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def processes_of_sessions(session_ids: Collection[str]) -> dict[str, list[int]]:
    """Pids whose environment carries ``BACKENDAI_SESSION_ID=<one of session_ids>``, per session (Linux
    ``/proc``): one pass over every process of the host, however many sessions are asked for."""
    wanted = {f"BACKENDAI_SESSION_ID={session_id}".encode(): session_id for session_id in session_ids}
    found: dict[str, list[int]] = {session_id: [] for session_id in session_ids}
    proc = Path("/proc")
    if not wanted or not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"BACKENDAI_SESSION_ID=" not in environ:
            continue
        for variable in environ.split(b"\0"):
            if variable in wanted:
                found[wanted[variable]].append(int(entry.name))
    return found


def processes_of_session(session_id: str) -> list[int]:
    """Pids whose environment carries ``BACKENDAI_SESSION_ID=<session_id>`` (Linux ``/proc``)."""
    return processes_of_sessions([session_id])[session_id]


def sweep_sessions(session_ids: Collection[str]) -> int:
    """SIGKILL every process left over from these sessions (also ones that left their group), in one pass over
    ``/proc``; returns the count."""
    count = 0
    for pids in processes_of_sessions(session_ids).values():
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                count += 1
    return count


def sweep_session(session_id: str) -> int:
    """SIGKILL every process left over from a session (also ones that left its group); returns the count."""
    return sweep_sessions([session_id])
