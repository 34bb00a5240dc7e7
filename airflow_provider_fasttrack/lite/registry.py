"""Session lifecycle: create, schedule, run, finish, destroy, and recover after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow_provider_fasttrack import slots as slotlib
from airflow_provider_fasttrack.lite.config import KeypairConfig, LiteConfig
from airflow_provider_fasttrack.lite.errors import LiteError
from airflow_provider_fasttrack.lite.events import EventHub
from airflow_provider_fasttrack.lite.kernels import cluster_layout, is_cluster, kernel_launch, mount_row
from airflow_provider_fasttrack.lite.runner import KernelLaunch, kill_group, start_kernel, sweep_session
from airflow_provider_fasttrack.lite.sandbox import MountSpec, SandboxError, open_mount_source
from airflow_provider_fasttrack.lite.scheduler import OCCUPYING_STATUSES, decide, never_fits, usage
from airflow_provider_fasttrack.lite.session_spec import SessionSpec
from airflow_provider_fasttrack.lite.stats import KernelStats
from airflow_provider_fasttrack.lite.store import DEAD_STATUSES, Store
from airflow_provider_fasttrack.lite.vfolders import VFolders

__all__ = ["SessionRegistry"]

log = logging.getLogger("backendai_lite.registry")

TIMEOUT_EXIT_CODE = -2
#: seconds between two samples of a running kernel's processes (CPU time, resident memory)
STAT_INTERVAL = 1.0


def now_iso() -> str:
    """The current UTC time in ISO-8601."""
    return datetime.now(UTC).isoformat()


def _exit_status(returncode: int) -> int:
    """A container-style exit code: a signal N becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


class SessionRegistry:
    """Owns sessions and their processes; the only writer of session rows."""

    def __init__(
        self,
        config: LiteConfig,
        store: Store,
        hub: EventHub,
        vfolders: VFolders,
        data_dir: Path,
        use_namespace: bool,
    ) -> None:
        self.config = config
        self.store = store
        self.hub = hub
        self.vfolders = vfolders
        self.data_dir = data_dir
        self.use_namespace = use_namespace
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._procs: dict[str, dict[str, asyncio.subprocess.Process]] = {}
        self._destroying: dict[str, bool] = {}
        #: per kernel id: the samples of its processes while it runs
        self._stats: dict[str, KernelStats] = {}
        self._sampled_at = 0.0
        self._loop_task: asyncio.Task[None] | None = None
        self._socket_root: Path | None = None

    # lifecycle of the registry itself
    def recover(self) -> None:
        """After a restart: sessions that were running are recorded as failed; pending ones wait on."""
        for row in self.store.sessions():
            if row["status"] in DEAD_STATUSES or row["status"] == "PENDING":
                continue
            self._record_interrupted(row, "backendai-lite stopped while the session was running")

    def start(self) -> None:
        """Start the scheduling loop."""
        self._loop_task = asyncio.create_task(self._schedule_loop(), name="backendai-lite-scheduler")

    async def stop(self) -> None:
        """Stop scheduling, kill running sessions and record them as failed."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for session_id, task in list(self._tasks.items()):
            self._kill_processes(session_id, signal.SIGKILL)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            row = self.store.session(session_id)
            if row is not None and row["status"] not in DEAD_STATUSES:
                self._record_interrupted(row, "backendai-lite was stopped while the session was running")
        if self._socket_root is not None:
            shutil.rmtree(self._socket_root, ignore_errors=True)
        self.hub.close()

    def _record_interrupted(self, row: dict[str, Any], reason: str) -> None:
        sweep_session(row["id"])
        note = f"\n[backendai-lite] {reason}\n"
        for kernel in self.store.kernels(row["id"]):
            logs = self._read_log(kernel) + note
            self.store.update_kernel(
                kernel["id"],
                status="TERMINATED",
                status_info="agent-lost",
                logs=logs,
                terminated_at=now_iso(),
            )
        self.store.update_session(
            row["id"],
            status="TERMINATED",
            status_info="server-stopped",
            result="FAILURE",
            terminated_at=now_iso(),
            status_data={
                "error": {"src": "other", "name": "ServerStopped", "repr": reason},
                "kernel": {"exit_code": None},
                "session": {"status": "terminated"},
            },
        )
        self._cleanup_dirs(row["id"])

    # lookups
    def live_session(self, key: str, access_key: str) -> dict[str, Any]:
        """A live session by UUID or name; terminated/cancelled ones answer 404 like the manager."""
        row = None
        with contextlib.suppress(ValueError):
            row = self.store.session(str(uuid.UUID(key)))
        if row is None:
            row = self.store.live_session_by_name(key, access_key)
        if row is None or row["status"] in DEAD_STATUSES or row["access_key"] != access_key:
            raise LiteError("session-not-found", f"No such session: {key}")
        return row

    def owns_session(self, session_id: str, access_key: str) -> bool:
        """Whether the session of this UUID exists, in any status, and is the keypair's."""
        row = self.store.session(str(uuid.UUID(session_id)))
        return row is not None and row["access_key"] == access_key

    def any_session(self, key: str, access_key: str) -> dict[str, Any]:
        """A session by UUID in any status (falls back to a live one by name)."""
        with contextlib.suppress(ValueError):
            row = self.store.session(str(uuid.UUID(key)))
            if row is not None and row["access_key"] == access_key:
                return row
        return self.live_session(key, access_key)

    # creation
    async def create(self, keypair: KeypairConfig, spec: SessionSpec) -> tuple[dict[str, Any], bool]:
        """Create (or reuse) a session; returns the row and whether it was created."""
        existing = self.store.live_session_by_name(spec.name, keypair.access_key)
        if existing is not None:
            if spec.reuse_if_exists and existing["image"] == spec.image:
                return existing, False
            raise LiteError(
                "session-already-exists",
                f"A session named {spec.name!r} already exists.",
                data={"existingSessionId": existing["id"]},
            )
        reason = never_fits(self.config, keypair.access_key, spec.scaling_group, spec.requested_slots)
        if reason is not None:
            raise LiteError("quota-exceeded", reason)
        for dep in spec.dependencies:
            dep_row = self.store.session(dep)
            if dep_row is None or dep_row["access_key"] != keypair.access_key:
                raise LiteError("invalid-api-params", f"Unknown session ID in dependencies: {dep}")
        mounts = self._resolve_mounts(keypair, spec)
        session_id = str(uuid.uuid4())
        config = dict(spec.raw_config)
        config["_lite"] = {
            "mounts": [mount_row(m) for m in mounts],
            "environ": spec.environ,
            "preopen_ports": spec.preopen_ports,
            "bin_dir": spec.image_mapping.bin_dir(),
            "resource_opts": spec.resource_opts,
        }
        row = {
            "id": session_id,
            "name": spec.name,
            "access_key": keypair.access_key,
            "image": spec.image,
            "architecture": spec.architecture,
            "type": spec.type,
            "status": "PENDING",
            "status_info": None,
            "status_data": {},
            "result": "UNDEFINED",
            "tag": spec.tag,
            "priority": spec.priority,
            "cluster_mode": spec.cluster_mode,
            "cluster_size": spec.cluster_size,
            "scaling_group": spec.scaling_group,
            "group_name": spec.group,
            "domain_name": spec.domain,
            "requested_slots": slotlib.to_json(spec.requested_slots),
            "kernel_slots": slotlib.to_json(spec.kernel_slots),
            "config": config,
            "startup_command": spec.startup_command,
            "bootstrap_script": spec.bootstrap_script,
            "batch_timeout": spec.batch_timeout,
            "dependencies": spec.dependencies,
            "callback_url": spec.callback_url,
            "created_at": now_iso(),
        }
        self.store.insert_session(row)
        for rank, (role, idx) in enumerate(cluster_layout(spec.cluster_size)):
            kernel_id = str(uuid.uuid4())
            kdir = self._kernel_dir(session_id, kernel_id)
            kdir.mkdir(parents=True, exist_ok=True)
            self.store.insert_kernel(
                {
                    "id": kernel_id,
                    "session_id": session_id,
                    "cluster_role": role,
                    "cluster_idx": idx,
                    "local_rank": rank,
                    "hostname": f"{role}{idx}",
                    "status": "PENDING",
                    "status_data": {},
                    "log_path": str(kdir / "output.log"),
                    "created_at": row["created_at"],
                }
            )
        stored = self.store.session(session_id)
        assert stored is not None
        self.hub.session_event("session_enqueued", stored, "")
        self._wake.set()
        if not spec.enqueue_only:
            stored = await self._wait_until_running(session_id, spec.max_wait_seconds or None)
        return stored, True

    def _resolve_mounts(self, keypair: KeypairConfig, spec: SessionSpec) -> list[MountSpec]:
        mounts = []
        for request in spec.mounts:
            row = self.vfolders.get(keypair.access_key, request.vfolder)
            source = self.vfolders.resolve(row, request.subpath)
            if source.exists() and not source.is_dir():
                raise LiteError("invalid-api-params", f"{request.entry!r} is a file, not a folder")
            read_only = request.read_only or row["permission"] == "ro"
            mount = MountSpec(
                self.vfolders.path(row), request.subpath, request.destination, read_only, request.entry
            )
            try:  # makes the missing folders; checked again when each kernel binds it
                os.close(open_mount_source(mount))
            except SandboxError as exc:
                raise LiteError("invalid-api-params", str(exc)) from None
            mounts.append(mount)
        return mounts

    async def _wait_until_running(self, session_id: str, timeout: float | None) -> dict[str, Any]:
        async def reached() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: self._status(session_id) not in {"PENDING", *_STARTING})

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reached(), timeout)
        row = self.store.session(session_id)
        assert row is not None
        return row

    def _status(self, session_id: str) -> str:
        row = self.store.session(session_id)
        return row["status"] if row else "TERMINATED"

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _set_status(self, row: dict[str, Any], status: str, **values: Any) -> dict[str, Any]:
        self.store.update_session(row["id"], status=status, **values)
        updated = self.store.session(row["id"])
        assert updated is not None
        return updated

    # scheduling
    async def _schedule_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)
            self._wake.clear()
            try:
                self._schedule_once()
            except Exception:
                log.exception("scheduling round failed")
            if time.monotonic() - self._sampled_at >= STAT_INTERVAL:
                self._sampled_at = time.monotonic()
                try:
                    self._sample_stats()
                except Exception:
                    log.exception("sampling the kernels' processes failed")

    def _sample_stats(self) -> None:
        """One sample of every running kernel's processes, stored as the kernel's ``last_stat``."""
        for procs in list(self._procs.values()):
            for kernel_id, proc in list(procs.items()):
                if proc.returncode is None:
                    self._sample_kernel(kernel_id, proc.pid)

    def _sample_kernel(self, kernel_id: str, pid: int) -> None:
        stats = self._stats.setdefault(kernel_id, KernelStats())
        if stats.sample(pid):
            self.store.update_kernel(kernel_id, last_stat=stats.as_stat())

    def _schedule_once(self) -> None:
        sessions = self.store.sessions(LIVE_STATUSES)
        known = {row["id"] for row in sessions}
        for dep_id in {
            dep for row in sessions if row["status"] == "PENDING" for dep in row["dependencies"]
        } - known:
            dep_row = self.store.session(dep_id)
            if dep_row is not None:
                sessions.append(dep_row)
        decision = decide(self.config, sessions)
        for session_id, failed in decision.waiting.items():
            row = next(r for r in sessions if r["id"] == session_id)
            data = {"scheduler": {"failed_predicates": failed, "retries": 0}}
            if row["status_data"].get("scheduler", {}).get("failed_predicates") != failed:
                self.store.update_session(session_id, status_data=data, status_info=failed[0]["name"])
        for row in decision.start:
            row = self._set_status(
                row, "SCHEDULED", status_info="scheduled", scheduled_at=now_iso(), status_data={}
            )
            self.hub.session_event("session_scheduled", row, "")
            self._destroying.pop(row["id"], None)
            self._tasks[row["id"]] = asyncio.create_task(self._run(row), name=f"session-{row['id']}")

    # running
    async def _run(self, row: dict[str, Any]) -> None:
        session_id = row["id"]
        try:
            await self._run_session(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("session %s failed to run", session_id)
            current = self.store.session(session_id)
            if current is not None and current["status"] not in DEAD_STATUSES:
                self._kill_processes(session_id, signal.SIGKILL)
                self._finish_failed_start(current, f"{type(exc).__name__}: {exc}")
        finally:
            self._tasks.pop(session_id, None)
            for kernel_id in self._procs.pop(session_id, {}):
                self._stats.pop(kernel_id, None)
            self._wake.set()
            await self._notify()

    async def _run_session(self, row: dict[str, Any]) -> None:
        session_id = row["id"]
        row = self._set_status(row, "PREPARING", status_info=None)
        self.hub.session_event("session_preparing", row, "")
        kernels = self.store.kernels(session_id)
        for kernel in kernels:
            self.store.update_kernel(kernel["id"], status="PREPARING")
            self.hub.session_event("kernel_preparing", row, "", kernel=kernel)
        await self._notify()
        launches = [self._launch_for(row, kernel, kernels) for kernel in kernels]
        procs: dict[str, asyncio.subprocess.Process] = {}
        self._procs[session_id] = procs
        for kernel, launch in zip(kernels, launches, strict=True):
            if self._destroying.get(session_id) is not None:
                break
            self.store.update_kernel(kernel["id"], status="CREATING")
            self.hub.session_event("kernel_creating", row, "", kernel=kernel)
            try:
                proc = await start_kernel(launch)
            except (SandboxError, OSError) as exc:
                self._kill_processes(session_id, signal.SIGKILL)
                with Path(kernel["log_path"]).open("a") as out:
                    out.write(f"[backendai-lite] failed to start: {exc}\n")
                self._finish_failed_start(row, str(exc))
                return
            procs[kernel["id"]] = proc
            self.store.update_kernel(
                kernel["id"], status="RUNNING", pid=proc.pid, occupied_slots=row["kernel_slots"]
            )
            # a first sample now: a session shorter than the sampling interval has statistics too
            self._sample_kernel(kernel["id"], proc.pid)
            self.hub.session_event("kernel_started", row, "", kernel=kernel)
        if self._destroying.get(session_id) is None:
            row = self._set_status(
                row,
                "RUNNING",
                status_info=None,
                started_at=now_iso(),
                occupied_slots=row["requested_slots"],
            )
            self.hub.session_event("session_started", row, "")
            await self._notify()
        main = procs.get(kernels[0]["id"])
        every_kernel = row["type"] == "batch" and self.config.multi_node_command == "all"
        awaited = list(procs.values()) if every_kernel else [main] if main is not None else []
        timed_out = False
        if awaited:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(proc.wait() for proc in awaited)),
                    row["batch_timeout"] if row["type"] == "batch" else None,
                )
            except TimeoutError:
                timed_out = True
                self._kill_processes(session_id, signal.SIGKILL)
        self._kill_processes(session_id, signal.SIGKILL)
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
        sweep_session(session_id)
        self._finish(row, kernels, procs, timed_out)

    def _launch_for(
        self, row: dict[str, Any], kernel: dict[str, Any], kernels: list[dict[str, Any]]
    ) -> KernelLaunch:
        kdir = self._kernel_dir(row["id"], kernel["id"])
        socket_dir = self._socket_dir(row["id"]) if is_cluster(row) else None
        return kernel_launch(self.config, row, kernel, kernels, kdir, self.use_namespace, socket_dir)

    def _socket_dir(self, session_id: str) -> Path:
        """The session's directory of cluster SSH sockets (mode 0700), made on first use.

        It lies under the host's ``/tmp`` (not ``$TMPDIR``, not the data dir) because a namespace kernel has a
        private ``/tmp``: only the kernels it is bound into, those of this session, can reach it.
        """
        if self._socket_root is None:
            self._socket_root = Path(tempfile.mkdtemp(prefix="backendai-lite-ssh-", dir="/tmp"))
        path = self._socket_root / session_id
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def _finish(
        self,
        row: dict[str, Any],
        kernels: list[dict[str, Any]],
        procs: dict[str, asyncio.subprocess.Process],
        timed_out: bool,
    ) -> None:
        session_id = row["id"]
        forced = self._destroying.pop(session_id, None)
        destroyed = forced is not None
        main_proc = procs.get(kernels[0]["id"])
        exit_code: int | None = None
        if main_proc is not None and main_proc.returncode is not None:
            exit_code = _exit_status(main_proc.returncode)
        if exit_code == 0 and self.config.multi_node_command == "all":
            # every kernel ran the command: the first failing kernel's code fails the session
            codes = [_exit_status(p.returncode) for p in procs.values() if p.returncode is not None]
            exit_code = next((code for code in codes if code != 0), 0)
        result = "UNDEFINED"
        reason = ("force-terminated" if forced else "user-requested") if destroyed else "self-terminated"
        if timed_out:
            exit_code, result, reason = TIMEOUT_EXIT_CODE, "FAILURE", "task-timeout"
        elif not destroyed and row["type"] == "batch" and exit_code is not None:
            result = "SUCCESS" if exit_code == 0 else "FAILURE"
            reason = "task-finished" if exit_code == 0 else "task-failed"
        current = self.store.session(session_id) or row
        if result != "UNDEFINED":
            self.store.update_session(session_id, result=result)
            current = self.store.session(session_id) or row
            self.hub.session_event(
                "session_success" if result == "SUCCESS" else "session_failure", current, reason
            )
        if current["status"] != "TERMINATING":
            current = self._set_status(current, "TERMINATING", status_info=reason)
            self.hub.session_event("session_terminating", current, reason)
        for kernel in kernels:
            self.hub.session_event("kernel_terminating", current, reason, kernel=kernel)
        for kernel in kernels:
            proc = procs.get(kernel["id"])
            kcode = (
                exit_code
                if kernel["local_rank"] == 0
                else (
                    _exit_status(proc.returncode)
                    if proc is not None and proc.returncode is not None
                    else None
                )
            )
            self.store.update_kernel(
                kernel["id"],
                status="TERMINATED",
                status_info=reason,
                exit_code=kcode,
                status_data={"kernel": {"exit_code": kcode}},
                logs=self._read_log(kernel),
                terminated_at=now_iso(),
            )
            self.hub.session_event("kernel_terminated", current, reason, kernel=kernel)
        current = self._set_status(
            current,
            "TERMINATED",
            status_info=reason,
            terminated_at=now_iso(),
            status_data={"kernel": {"exit_code": exit_code}, "session": {"status": "terminated"}},
        )
        self.hub.session_event("session_terminated", current, reason)
        self._cleanup_dirs(session_id)

    def _finish_failed_start(self, row: dict[str, Any], message: str) -> None:
        for kernel in self.store.kernels(row["id"]):
            self.store.update_kernel(
                kernel["id"], status="CANCELLED", status_info="failed-to-start", logs=self._read_log(kernel)
            )
        current = self._set_status(
            row,
            "CANCELLED",
            status_info="failed-to-start",
            result="FAILURE",
            terminated_at=now_iso(),
            status_data={"error": {"src": "agent", "name": "KernelCreationFailed", "repr": message}},
        )
        self.hub.session_event("session_cancelled", current, "failed-to-start")
        self._cleanup_dirs(row["id"])

    # destruction
    async def destroy(self, row: dict[str, Any], *, forced: bool, recursive: bool) -> str:
        """Cancel a pending session or terminate a running one; returns the final status word."""
        if recursive:
            for dependent in self._dependents(row["id"]):
                if dependent["status"] not in DEAD_STATUSES:
                    await self.destroy(dependent, forced=forced, recursive=False)
        row = self.store.session(row["id"]) or row
        if row["status"] in DEAD_STATUSES:
            return row["status"].lower()
        # as on the manager, the reason says whether the destroy was forced, pending or running
        reason = "force-terminated" if forced else "user-requested"
        if row["status"] == "PENDING":
            for kernel in self.store.kernels(row["id"]):
                self.store.update_kernel(kernel["id"], status="CANCELLED", status_info=reason)
            current = self._set_status(row, "CANCELLED", status_info=reason, terminated_at=now_iso())
            self.hub.session_event("session_cancelled", current, reason)
            self._cleanup_dirs(row["id"])
            self._wake.set()
            await self._notify()
            return "cancelled"
        self._destroying[row["id"]] = forced
        current = self._set_status(row, "TERMINATING", status_info=reason)
        self.hub.session_event("session_terminating", current, reason)
        task = self._tasks.get(row["id"])
        if forced:
            self._kill_processes(row["id"], signal.SIGKILL)
        else:
            self._kill_processes(row["id"], signal.SIGTERM)
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=self.config.kill_grace_seconds)
            if not done:
                self._kill_processes(row["id"], signal.SIGKILL)
                await asyncio.wait({task}, timeout=10)
        elif row["status"] not in DEAD_STATUSES:
            self._record_interrupted(row, "terminated without a running process")
        return "terminated"

    def _dependents(self, session_id: str) -> list[dict[str, Any]]:
        """Sessions depending on this one, directly or through others."""
        found: list[dict[str, Any]] = []
        queue = [session_id]
        seen = {session_id}
        while queue:
            current = queue.pop()
            for dependent in self.store.dependents(current):
                if dependent["id"] not in seen and current in dependent["dependencies"]:
                    seen.add(dependent["id"])
                    found.append(dependent)
                    queue.append(dependent["id"])
        return found

    def _kill_processes(self, session_id: str, sig: int) -> None:
        for proc in self._procs.get(session_id, {}).values():
            if proc.returncode is None:
                kill_group(proc.pid, sig)
        if sig == signal.SIGKILL:
            sweep_session(session_id)

    # logs and files
    def logs(self, row: dict[str, Any], kernel_id: str | None) -> str:
        """A kernel's output (the main kernel's by default)."""
        kernels = self.store.kernels(row["id"])
        kernel = next((k for k in kernels if k["id"] == kernel_id), None) if kernel_id else kernels[0]
        if kernel is None:
            raise LiteError("object-not-found", f"No such kernel in this session: {kernel_id}")
        if kernel["logs"] is not None:
            return str(kernel["logs"])
        return self._read_log(kernel)

    @staticmethod
    def _read_log(kernel: dict[str, Any]) -> str:
        try:
            return Path(kernel["log_path"]).read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return str(kernel.get("logs") or "")

    def _session_dir(self, session_id: str) -> Path:
        return self.data_dir / "sessions" / session_id

    def _kernel_dir(self, session_id: str, kernel_id: str) -> Path:
        return self._session_dir(session_id) / "kernels" / kernel_id

    def _cleanup_dirs(self, session_id: str) -> None:
        """Remove the scratch homes and SSH sockets (like a container's removal); the logs stay."""
        if self._socket_root is not None:
            shutil.rmtree(self._socket_root / session_id, ignore_errors=True)
        kernels_dir = self._session_dir(session_id) / "kernels"
        if not kernels_dir.is_dir():
            return
        for kdir in kernels_dir.iterdir():
            for name in ("home", "root"):
                path = kdir / name
                if path.is_dir() and not os.path.ismount(path):
                    shutil.rmtree(path, ignore_errors=True)

    def occupancy(self) -> tuple[dict[str, slotlib.Slots], dict[str, slotlib.Slots]]:
        """Slots in use per scaling group and per access key."""
        sessions = self.store.sessions(OCCUPYING_STATUSES)
        return usage(sessions, "scaling_group"), usage(sessions, "access_key")


#: every status but the dead ones
LIVE_STATUSES = frozenset(
    {
        "PENDING", "DEPRIORITIZING", "RESERVED", "SCHEDULED", "PREPARING", "PULLING", "PREPARED", "CREATING",
        "RUNNING", "RESTARTING", "RUNNING_DEGRADED", "PREEMPTED", "RESCHEDULING", "TERMINATING", "ERROR",
    }
)  # fmt: skip

_STARTING = frozenset({"SCHEDULED", "PREPARING", "PULLING", "PREPARED", "CREATING"})
