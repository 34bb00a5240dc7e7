"""Bind a session's vfolder mounts from directories reached without following a symlink.

A mount is a vfolder's directory and a subpath inside it. Its session is checked when it is created, but a
session of the same keypair can swap a folder of that subpath for a symlink before the kernel starts (while it
waits for its dependencies or for room). So the bind itself never resolves a path: :func:`open_mount_source`
opens each name of the subpath beneath the one before with ``O_NOFOLLOW`` and ``mount --bind`` is given the
opened directory (``/proc/self/fd/N``, not canonicalized), so exactly the checked directory is mounted, or the
mount is refused. Its destination in the kernel's root is reached the same way (it may lie inside an earlier
mount, whose folders the session controls). A bind must be made in the mount namespace the descriptor was opened in, so the namespace
script runs this file as a script (``python -I -S``, stdlib only) before it chroots; the server uses the same
function to check (and make) the subpath when a session is created and again before each kernel starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
from pathlib import PurePosixPath

__all__ = ["MountSourceError", "bind_all", "open_mount_source", "open_mount_target"]

_DIRECTORY_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class MountSourceError(RuntimeError):
    """A mount's directory is not a real directory inside its vfolder."""


def open_mount_source(folder: str, subpath: str, label: str) -> int:
    """An ``O_PATH`` descriptor of ``folder/subpath``, made of real directories only (missing ones are made).

    Refused with :class:`MountSourceError` naming the mount (``label``) and the part of the subpath that is a
    symlink, not a directory, or ``..``.
    """
    return _open_beneath(folder, subpath, label, "in the vfolder")


def open_mount_target(root: str, destination: str, label: str) -> int:
    """The destination directory under a kernel's ``root``, made where missing, reached the same way.

    A destination inside an earlier mount (``/home/work/vf/sub``) passes through that vfolder's folders, which
    a session controls: a symlink there would otherwise make directories, or the mount, land on the host.
    """
    return _open_beneath(root, destination.lstrip("/"), label, "of its destination")


def _open_beneath(start: str, relative: str, label: str, place: str) -> int:
    try:
        fd = os.open(start, _DIRECTORY_FLAGS)
    except OSError as exc:
        raise MountSourceError(f"cannot mount {label!r}: {start} cannot be opened ({exc.strerror})") from None
    walked: list[str] = []
    try:
        for name in PurePosixPath(relative).parts:
            walked.append(name)
            shown = "/".join(walked)
            if name in ("/", ".", ".."):
                raise MountSourceError(f"cannot mount {label!r}: {shown!r} {place} is not a plain path")
            fd = _open_child(fd, name, f"cannot mount {label!r}: {shown!r} {place}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child(parent: int, name: str, what: str) -> int:
    """Open (making it if missing) the directory ``name`` beneath ``parent``; closes ``parent`` on success."""
    with contextlib.suppress(OSError):  # it exists, or the open below says why it cannot be made
        os.mkdir(name, 0o755, dir_fd=parent)  # mkdirat never follows a symlink in the last place
    problem = "is not a directory"
    try:
        child = os.open(name, _DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as exc:
        problem = f"cannot be opened ({exc.strerror})"
    else:
        if stat.S_ISDIR(os.fstat(child).st_mode):
            os.close(parent)
            return child
        os.close(child)
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            problem = "is a symlink"
    raise MountSourceError(f"{what} {problem}; a mount is made only of real directories")


def _mount(options: list[str], *fds: int) -> None:
    """Run ``mount`` on descriptors (``/proc/self/fd/N``, taken as they are: never resolved to a path again)."""
    paths = [f"/proc/self/fd/{fd}" for fd in fds]
    subprocess.run(["mount", "--no-canonicalize", *options, *paths], pass_fds=fds, check=True)


def bind_all(mounts_file: str, root: str) -> None:
    """Bind every mount of ``mounts_file`` (JSON list, shallowest destination first) under ``root``."""
    with open(mounts_file, encoding="utf-8") as file:
        mounts = json.load(file)
    for mount in mounts:
        label, destination = mount["label"], mount["destination"]
        source = open_mount_source(mount["folder"], mount["subpath"], label)
        try:
            target = open_mount_target(root, destination, label)
            try:
                _mount(["--bind"], source, target)
            finally:
                os.close(target)
        finally:
            os.close(source)
        if mount["read_only"]:
            bound = open_mount_target(root, destination, label)  # now the root of the new mount
            try:
                _mount(["-o", "remount,bind,ro"], bound)
            finally:
                os.close(bound)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: bind_mount.py MOUNTS_JSON ROOT", file=sys.stderr)
        return 2
    try:
        bind_all(argv[0], argv[1])
    except MountSourceError as exc:
        print(f"[backendai-lite] {exc}", file=sys.stderr)
        return 1
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"[backendai-lite] a mount failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
