"""Deterministic names: a session per (DAG, run, task, map index), and a job id per DAG run; telling an id from a
name.

The same task instance always gets the same session name, so a retry or a restarted worker finds the live
session (the manager returns it instead of starting a second one) rather than enqueueing a duplicate.
"""

from __future__ import annotations

import hashlib
import re
import uuid

__all__ = ["is_uuid", "pipeline_job_id", "run_service_name", "session_name"]

_JOB_NAMESPACE = uuid.UUID("6f1d8c52-4b0e-4d5e-9a57-2f3f1e0b7c11")
_UNSAFE = re.compile(r"[^a-z0-9]+")
MAX_NAME = 64


def pipeline_job_id(dag_id: str, run_id: str) -> str:
    """A stable id of one DAG run (``BACKENDAI_PIPELINE_JOB_ID``): a UUID derived from dag id and run id."""
    return str(uuid.uuid5(_JOB_NAMESPACE, f"{dag_id}\n{run_id}"))


def session_name(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """``ft-<task>-<digest>``: valid for Backend.AI (4–64 characters of ``[a-z0-9-]``) and unique per task run."""
    digest = hashlib.sha256(f"{dag_id}\n{run_id}\n{task_id}\n{map_index}".encode()).hexdigest()[:16]
    readable = _UNSAFE.sub("-", task_id.lower()).strip("-") or "task"
    room = MAX_NAME - len("ft--") - len(digest)
    return f"ft-{readable[:room].rstrip('-')}-{digest}"


def run_service_name(name: str, dag_id: str, run_id: str) -> str:
    """``<name>-<digest>``: an ephemeral service's name, one per DAG run (a retry finds the same service)."""
    digest = hashlib.sha256(f"{dag_id}\n{run_id}\n{name}".encode()).hexdigest()[:12]
    return f"{name[: MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def is_uuid(text: object) -> bool:
    """Whether ``text`` is a UUID (Backend.AI takes a session or vfolder by its id or by its name)."""
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True
