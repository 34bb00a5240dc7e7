"""The session filesystem: a private mount namespace with ``/home/work`` and vfolder mounts, or a fallback."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from airflow_provider_fasttrack.lite import bind_mount

__all__ = [
    "MountSpec",
    "SandboxError",
    "death_signal_prefix",
    "namespace_command",
    "namespaces_available",
    "open_mount_source",
    "pid_namespaces_available",
    "prepare_fallback",
]

#: top-level directories a session gets fresh (not the host's)
PRIVATE_TOP_DIRS = frozenset({"home", "tmp"})


class SandboxError(RuntimeError):
    """The session filesystem cannot be set up as requested."""


@dataclass(frozen=True)
class MountSpec:
    """One vfolder (or a subfolder of it: ``subpath``, relative, without ``..``) mounted into a session."""

    folder: Path
    subpath: str
    destination: str
    read_only: bool
    label: str

    @property
    def source(self) -> Path:
        """The mounted directory's path (to show or link; binds go through :func:`open_mount_source`)."""
        return self.folder / self.subpath if self.subpath else self.folder


def open_mount_source(mount: MountSpec) -> int:
    """The mount's directory, opened without following a symlink (see :mod:`.bind_mount`); the caller closes it."""
    try:
        return bind_mount.open_mount_source(str(mount.folder), mount.subpath, mount.label)
    except bind_mount.MountSourceError as exc:
        raise SandboxError(str(exc)) from None


# Runs inside `unshare --mount --propagation private` (and, where allowed, `--pid --fork --kill-child
# --mount-proc`, which makes this script PID 1 of the session's own PID namespace: when it exits or is killed,
# the kernel kills every process of the namespace, and it is killed when the server dies). It builds a root on a tmpfs from the host's top-level
# directories (except /home and /tmp, which are private), binds the scratch home and the mounts (bind_mount.py:
# each from its directory opened without following a symlink), and runs the
# command chrooted there as a child (not exec: PID 1 ignores signals it has no handler for, its children do not). Inputs come through LITE_* variables, which are removed before the command starts.
# In a user namespace (a server that is not root) the command runs without capabilities (LITE_DROP_CAPS names
# setpriv): root of its own namespace could otherwise leave the chroot (chroot needs CAP_SYS_CHROOT only there)
# or unmount what hides the host, and reach every file of the server's user, other sessions' included.
_NAMESPACE_SCRIPT = r"""
set -eu
root="$LITE_ROOT"
mount -t tmpfs -o mode=755 backendai-lite "$root"
for entry in /*; do
  name="${entry#/}"
  case "$name" in home|tmp) continue ;; esac
  if [ -L "$entry" ]; then cp -P "$entry" "$root/$name"
  elif [ -d "$entry" ]; then mkdir "$root/$name"; mount --rbind "$entry" "$root/$name"
  elif [ -f "$entry" ]; then touch "$root/$name"; mount --bind "$entry" "$root/$name"
  fi
done
mkdir -p "$root/home/work" "$root/tmp"
chmod 1777 "$root/tmp"
mount --bind "$LITE_SCRATCH" "$root/home/work"
while IFS= read -r path; do
  [ -n "$path" ] || continue
  mkdir -p "$root$path"; mount --bind "$path" "$root$path"
done < "$LITE_EXTRA_BINDS"
"$LITE_PYTHON" -I -S "$LITE_BIND_MOUNT" "$LITE_MOUNTS" "$root"
if [ -f "$LITE_HOSTS" ] && [ -e "$root/etc/hosts" ]; then mount --bind "$LITE_HOSTS" "$root/etc/hosts"; fi
drop_caps="${LITE_DROP_CAPS:-}"
unset LITE_ROOT LITE_SCRATCH LITE_EXTRA_BINDS LITE_MOUNTS LITE_HOSTS LITE_PYTHON LITE_BIND_MOUNT LITE_DROP_CAPS
status=0
chroot "$root" ${drop_caps:+"$drop_caps" --bounding-set=-all --inh-caps=-all} /bin/bash -c 'cd /home/work && lite_command="$LITE_COMMAND" && unset LITE_COMMAND && exec /bin/bash -c "$lite_command"' || status=$?
exit "$status"
"""


def namespaces_available() -> tuple[bool, str]:
    """Probe whether a private mount namespace with tmpfs and bind mounts can be made here."""
    unshare = shutil.which("unshare")
    if unshare is None or shutil.which("chroot") is None:
        return False, "the unshare or chroot command is not installed"
    with tempfile.TemporaryDirectory(prefix="backendai-lite-probe-") as probe:
        cmd = [*_unshare_prefix(unshare, pid=False), "mount", "-t", "tmpfs", "backendai-lite-probe", probe]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"unshare failed: {exc}"
    if done.returncode != 0:
        return False, f"unshare --mount failed: {done.stderr.strip() or done.returncode}"
    if pid_namespaces_available():
        return True, "private mount and PID namespaces (unshare --mount --pid)"
    return True, "private mount namespaces (unshare --mount; no PID namespace here)"


@functools.cache
def pid_namespaces_available() -> bool:
    """Whether sessions can also get their own PID namespace (with a fresh ``/proc``); probed once."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    cmd = [*_unshare_prefix(unshare, pid=False), *_PID_FLAGS, "true"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


#: a PID namespace whose PID 1 (the namespace script) is killed when unshare dies, with a /proc of its own
_PID_FLAGS = ("--pid", "--fork", "--kill-child", "--mount-proc")


def _unshare_prefix(unshare: str, *, pid: bool) -> list[str]:
    prefix = [unshare, "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    if pid:
        prefix.extend(_PID_FLAGS)
    return prefix


def death_signal_prefix() -> list[str]:
    """``setpriv --pdeathsig KILL`` where available: the kernel's first process dies with the server.

    The signal reaches only that process; in a PID namespace it is the namespace's root (through unshare's
    ``--kill-child``), which takes the whole session with it.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


def check_destination(destination: str) -> None:
    """Refuse a mount destination that would need a new directory on the host's own filesystem."""
    path = PurePosixPath(destination)
    if not path.is_absolute() or ".." in path.parts:
        raise SandboxError(f"mount destination {destination!r} must be an absolute path without '..'")
    if len(path.parts) < 2:
        raise SandboxError("cannot mount over '/'")
    top = path.parts[1]
    host = Path("/", top)
    if top in PRIVATE_TOP_DIRS or not host.exists():
        return
    if not Path(destination).is_dir():
        raise SandboxError(
            f"mount destination {destination!r} lies in the host directory /{top}, where it does not exist; "
            "use a destination under /home/work, /tmp or a new top-level directory such as /pipeline"
        )


def _extra_binds(bin_dir: str, tool_paths: list[str]) -> list[str]:
    """Host paths of the runtime and of lite's own tools that live under the private top-level directories."""
    candidates = {
        str(Path(bin_dir).parent),
        sys.prefix,
        sys.base_prefix,
        str(Path(sys.executable).resolve().parent),
        *tool_paths,
    }
    wanted = []
    for path in sorted(candidates):
        parts = PurePosixPath(path).parts
        if len(parts) > 1 and parts[1] in PRIVATE_TOP_DIRS and Path(path).is_dir():
            wanted.append(path)
    return wanted


def namespace_command(
    workdir: Path,
    scratch: Path,
    mounts: list[MountSpec],
    hostnames: list[str],
    bin_dir: str,
    tool_paths: list[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv and extra environment that run ``LITE_COMMAND`` inside a private mount namespace."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SandboxError("the unshare command is not installed")
    for mount in mounts:
        check_destination(mount.destination)
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    mounts_file = workdir / "mounts.json"
    ordered = sorted(mounts, key=lambda m: len(PurePosixPath(m.destination).parts))
    entries = [
        {
            "folder": str(m.folder),
            "subpath": m.subpath,
            "destination": m.destination,
            "read_only": m.read_only,
            "label": m.label,
        }
        for m in ordered
    ]
    mounts_file.write_text(json.dumps(entries))
    binds_file = workdir / "extra-binds.txt"
    binds_file.write_text("".join(f"{path}\n" for path in _extra_binds(bin_dir, tool_paths or [])))
    hosts_file = workdir / "hosts"
    hosts_file.write_text(
        "127.0.0.1\tlocalhost " + " ".join(hostnames) + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    script = workdir / "enter-namespace.sh"
    script.write_text(_NAMESPACE_SCRIPT)
    env = {
        "LITE_ROOT": str(root),
        "LITE_SCRATCH": str(scratch),
        "LITE_MOUNTS": str(mounts_file),
        "LITE_EXTRA_BINDS": str(binds_file),
        "LITE_HOSTS": str(hosts_file),
        "LITE_PYTHON": sys.executable,
        "LITE_BIND_MOUNT": bind_mount.__file__,
    }
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 and setpriv is not None:
        env["LITE_DROP_CAPS"] = setpriv
    prefix = _unshare_prefix(unshare, pid=pid_namespaces_available())
    return [*death_signal_prefix(), *prefix, "/bin/bash", str(script)], env


def prepare_fallback(scratch: Path, mounts: list[MountSpec]) -> tuple[dict[str, str], list[str]]:
    """Without namespaces: link mounts under the scratch home where possible; say what differs.

    Returns the environment that gives the real paths and the notice lines for the session log.
    """
    notes = ["[backendai-lite] mount namespaces are not available: running without a private filesystem."]
    notes.append(
        f"[backendai-lite] /home/work is {scratch}; vfolders are linked or listed in BACKENDAI_LITE_MOUNTS."
    )
    mapping: dict[str, str] = {}
    for mount in mounts:
        mapping[mount.destination] = str(mount.source)
        dest = PurePosixPath(mount.destination)
        if dest.is_relative_to("/home/work") and dest != PurePosixPath("/home/work"):
            link = scratch / dest.relative_to("/home/work")
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists() and not link.is_symlink():
                link.symlink_to(mount.source, target_is_directory=True)
        else:
            notes.append(
                f"[backendai-lite] {mount.destination} is not mounted; its files are at {mount.source}"
            )
        if mount.read_only:
            notes.append(f"[backendai-lite] {mount.destination} should be read-only; this is not enforced")
    env = {"BACKENDAI_LITE_HOME": str(scratch), "BACKENDAI_LITE_MOUNTS": json.dumps(mapping, sort_keys=True)}
    return env, notes
