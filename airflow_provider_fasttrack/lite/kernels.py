"""What each kernel of a session runs: its cluster place, command, environment and launch spec."""

from __future__ import annotations

import fnmatch
import os
import shlex
from pathlib import Path
from typing import Any

from airflow_provider_fasttrack import slots as slotlib
from airflow_provider_fasttrack.lite import cluster_ssh
from airflow_provider_fasttrack.lite.config import LiteConfig
from airflow_provider_fasttrack.lite.runner import KernelLaunch
from airflow_provider_fasttrack.lite.sandbox import MountSpec

__all__ = [
    "cluster_layout",
    "kernel_command",
    "kernel_environment",
    "kernel_launch",
    "mount_row",
    "stored_mount",
]


def cluster_layout(size: int) -> list[tuple[str, int]]:
    """``(role, idx)`` per kernel: ``main1``, then ``sub1`` .. ``sub{size-1}``."""
    return [("main", 1)] + [("sub", i) for i in range(1, size)]


def kernel_command(config: LiteConfig, row: dict[str, Any], kernel: dict[str, Any]) -> str:
    """The bash script of a kernel: bootstrap, then the startup command (batch) or an idle wait.

    Every kernel of a multi-node session first starts its SSH server in the background (``cluster_ssh``).
    """
    parts = []
    if is_cluster(row):
        parts.append(f"{cluster_ssh.SERVER_NAME} &")
    if row["bootstrap_script"]:
        parts.append(f"/bin/bash -c {shlex.quote(row['bootstrap_script'])} || exit $?")
    idle_sub = kernel["cluster_role"] != "main" and config.multi_node_command == "main"
    if row["type"] in ("batch", "inference") and not idle_sub:  # an inference replica ends with its server
        parts.append(row["startup_command"])
    else:
        if row["startup_command"] and not idle_sub:
            parts.append(f"( {row['startup_command']} )")
        parts.append("exec sleep infinity")
    return "\n".join(parts)


def is_cluster(row: dict[str, Any]) -> bool:
    """Whether a session has several kernels, which reach one another over SSH."""
    return int(row["cluster_size"]) > 1


def kernel_environment(
    config: LiteConfig, row: dict[str, Any], kernel: dict[str, Any], kernels: list[dict[str, Any]]
) -> dict[str, str]:
    """Inherited server variables, ``config.environ``, then the ``BACKENDAI_*`` variables of a session."""
    patterns = config.inherit_environment
    env = {k: v for k, v in os.environ.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    lite = row["config"]["_lite"]
    env.update(lite["environ"])
    keypair = config.keypair(row["access_key"])
    roles: dict[str, int] = {}
    for k in kernels:
        roles[k["cluster_role"]] = roles.get(k["cluster_role"], 0) + 1
    env.update(
        {
            "BACKENDAI_SESSION_ID": row["id"],
            "BACKENDAI_SESSION_NAME": row["name"],
            "BACKENDAI_ACCESS_KEY": row["access_key"],
            "BACKENDAI_USER_UUID": keypair.user_uuid if keypair else "",
            "BACKENDAI_USER_EMAIL": keypair.user_email if keypair else "",
            "BACKENDAI_CLUSTER_SIZE": str(len(kernels)),
            "BACKENDAI_CLUSTER_REPLICAS": ",".join(f"{role}:{n}" for role, n in roles.items()),
            "BACKENDAI_CLUSTER_HOSTS": ",".join(k["hostname"] for k in kernels),
            "BACKENDAI_PREOPEN_PORTS": ",".join(str(p) for p in lite["preopen_ports"]),
            "BACKENDAI_KERNEL_ID": kernel["id"],
            "BACKENDAI_KERNEL_IMAGE": row["image"],
            "BACKENDAI_CLUSTER_ROLE": kernel["cluster_role"],
            "BACKENDAI_CLUSTER_IDX": str(kernel["cluster_idx"]),
            "BACKENDAI_CLUSTER_LOCAL_RANK": str(kernel["local_rank"]),
            "BACKENDAI_CLUSTER_HOST": kernel["hostname"],
            "LANG": env.get("LANG", "C.UTF-8"),
            "USER": "work",
            "LOGNAME": "work",
        }
    )
    return env


def kernel_launch(
    config: LiteConfig,
    row: dict[str, Any],
    kernel: dict[str, Any],
    kernels: list[dict[str, Any]],
    workdir: Path,
    use_namespace: bool,
    socket_dir: Path | None = None,
) -> KernelLaunch:
    """Everything the runner needs to start one kernel (``socket_dir``: the cluster's SSH sockets)."""
    lite = row["config"]["_lite"]
    return KernelLaunch(
        session_id=row["id"],
        kernel_id=kernel["id"],
        command=kernel_command(config, row, kernel),
        environ=kernel_environment(config, row, kernel, kernels),
        workdir=workdir,
        scratch=workdir / "home",
        log_path=Path(kernel["log_path"]),
        bin_dir=lite["bin_dir"],
        mounts=[stored_mount(entry) for entry in lite["mounts"]],
        hostnames=[k["hostname"] for k in kernels],
        use_namespace=use_namespace,
        notes=accelerator_notes(row),
        tools_dir=workdir / "bin" if is_cluster(row) else None,
        socket_dir=socket_dir if is_cluster(row) else None,
    )


def stored_mount(entry: list[Any]) -> MountSpec:
    """A mount as a session row stores it: ``[vfolder dir, subpath, destination, read-only, entry]``."""
    folder, subpath, destination, read_only, label = entry
    return MountSpec(Path(folder), subpath, destination, read_only, label)


def mount_row(mount: MountSpec) -> list[Any]:
    """What :func:`stored_mount` reads back."""
    return [str(mount.folder), mount.subpath, mount.destination, mount.read_only, mount.label]


def accelerator_notes(row: dict[str, Any]) -> list[str]:
    """A log line saying that requested accelerator slots are only accounted: no device is attached."""
    requested = slotlib.from_json(row["requested_slots"])
    accelerators = {slot: amount for slot, amount in requested.items() if "." in slot and amount}
    if not accelerators:
        return []
    shown = ", ".join(f"{slot}={amount}" for slot, amount in sorted(accelerators.items()))
    return [
        f"[backendai-lite] mock accelerator: {shown} accounted by the scheduler, but no device is attached; "
        "the session runs on the CPU"
    ]
