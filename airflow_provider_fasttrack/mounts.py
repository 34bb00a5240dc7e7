"""VFolder mounts: FastTrack's ``"vf"`` / ``"vf:alias"`` strings and the session request fields they become."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["MOUNT_ALIAS", "VFOLDER_NAME", "Mount", "mounts_to_request"]

#: A vfolder name: letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit, at most 64 characters.
VFOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: A mount alias: a path relative to ``/home/work`` or absolute, of letters, digits, ``_``, ``.``, ``/``, ``-``.
MOUNT_ALIAS = re.compile(r"[A-Za-z0-9_./-]+")


@dataclass(frozen=True)
class Mount:
    """One vfolder mounted into a session.

    ``subpath`` mounts a folder inside the vfolder; ``destination`` is an alias (relative: under
    ``/home/work``) or an absolute path; without one the vfolder appears at ``/home/work/<name>``.
    """

    name: str
    subpath: str = ""
    destination: str | None = None
    read_only: bool = False

    @classmethod
    def parse(cls, text: str) -> Mount:
        """Parse FastTrack's ``"vf"`` or ``"vf:alias"``; raises ``ValueError`` with the reason.

        The alias is where the vfolder appears, as Backend.AI's ``mount_map`` takes it: relative (under
        ``/home/work``) or absolute, without ``..`` components, spaces or a second ``:``.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("a mount must be a non-empty string 'vfolder' or 'vfolder:alias'")
        name, sep, alias = text.strip().partition(":")
        if not VFOLDER_NAME.fullmatch(name):
            raise ValueError(
                f"{text!r} is not a mount: use 'vfolder' or 'vfolder:alias' "
                "(vfolder names: letters, digits, '.', '_', '-'; at most 64)"
            )
        if sep and not alias:
            raise ValueError(f"{text!r}: the alias after ':' is empty")
        if alias and (not MOUNT_ALIAS.fullmatch(alias) or ".." in alias.split("/")):
            raise ValueError(
                f"{text!r}: {alias!r} is not a mount alias "
                "(a path under /home/work or an absolute path, without '..', ':' or spaces)"
            )
        return cls(name=name, destination=alias or None)

    @property
    def key(self) -> str:
        """The entry in the request's ``mounts`` list (``vf`` or ``vf/subpath``)."""
        return f"{self.name}/{self.subpath.strip('/')}" if self.subpath.strip("/") else self.name

    @property
    def path_in_session(self) -> str:
        if self.destination is None:
            return f"/home/work/{self.name}"
        if self.destination.startswith("/"):
            return self.destination
        return f"/home/work/{self.destination}"

    def __str__(self) -> str:
        return f"{self.key}:{self.destination}" if self.destination else self.key


def mounts_to_request(mounts: Iterable[Mount]) -> dict[str, Any]:
    """The ``config`` fields of a session request for these mounts: ``mounts``, ``mount_map``, ``mount_options``."""
    keys: list[str] = []
    mount_map: dict[str, str] = {}
    options: dict[str, dict[str, str]] = {}
    for mount in mounts:
        if mount.key in keys:
            raise ValueError(f"vfolder {mount.key!r} is mounted twice")
        keys.append(mount.key)
        if mount.destination:
            mount_map[mount.key] = mount.destination
        if mount.read_only:
            options[mount.key] = {"permission": "ro"}
    request: dict[str, Any] = {"mounts": keys}
    if mount_map:
        request["mount_map"] = mount_map
    if options:
        request["mount_options"] = options
    return request
