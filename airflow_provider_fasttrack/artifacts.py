"""Pipeline artifacts as FastTrack provides them: ``/pipeline/outputs``, ``/pipeline/input1..N``, ``/pipeline/vfroot``.

All of a pipeline's artifacts live in one vfolder. Each DAG run (pipeline job) has a folder named by its job id,
with one folder per task inside::

    <vfolder>/<job id>/<task id>/...        what the task wrote to /pipeline/outputs
    <vfolder>/latest/<task id>.json         {"job_id": ...} of the task's last successful run

A task mounts its own folder at ``/pipeline/outputs`` and its upstream tasks' folders, read-only, at
``/pipeline/input1..N`` in dependency order. An upstream that was skipped in this run is replaced by its last
successful output, so that skipping a step reuses what it produced before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_fasttrack.mounts import Mount

__all__ = ["ARTIFACTS_XCOM_KEY", "OUTPUTS", "VFROOT", "PipelineArtifacts", "as_artifacts", "input_path"]

#: the XCom key a session task pushes its output folder under: ``{"conn_id", "vfolder", "folder"}``
ARTIFACTS_XCOM_KEY = "backendai_artifacts"
OUTPUTS = "/pipeline/outputs"
VFROOT = "/pipeline/vfroot"
RESULT_FILE = "result.json"


def input_path(index: int) -> str:
    """``/pipeline/input<index>`` (1-based)."""
    return f"/pipeline/input{index}"


@dataclass(frozen=True)
class PipelineArtifacts:
    """A task's place in its pipeline's vfolder: the vfolder's name and the upstream task ids, in order."""

    vfolder: str
    upstream: tuple[str, ...] = field(default_factory=tuple)

    def output_dir(self, job_id: str, task_id: str) -> str:
        return f"{job_id}/{task_id}"

    def location(self, conn_id: str, job_id: str, task_id: str) -> dict[str, str]:
        """What a task pushes under :data:`ARTIFACTS_XCOM_KEY`: where its outputs are, for the FastTrack view."""
        return {"conn_id": conn_id, "vfolder": self.vfolder, "folder": self.output_dir(job_id, task_id)}

    def latest_pointer(self, task_id: str) -> str:
        return f"latest/{task_id}.json"

    def own_mounts(self, job_id: str, task_id: str) -> list[Mount]:
        """The task's own output folder at :data:`OUTPUTS` and the whole vfolder at :data:`VFROOT`."""
        return [
            Mount(self.vfolder, subpath=self.output_dir(job_id, task_id), destination=OUTPUTS),
            Mount(self.vfolder, destination=VFROOT),
        ]

    def mounts(self, job_id: str, task_id: str, upstream_jobs: Mapping[str, str]) -> list[Mount]:
        """The session's mounts; ``upstream_jobs`` maps each upstream task to the job whose output it reads."""
        mounts = self.own_mounts(job_id, task_id)
        for index, upstream in enumerate(self.upstream, start=1):
            source_job = upstream_jobs.get(upstream, job_id)
            mounts.append(
                Mount(
                    self.vfolder,
                    subpath=self.output_dir(source_job, upstream),
                    destination=input_path(index),
                    read_only=True,
                )
            )
        return mounts

    def environ(self) -> dict[str, str]:
        """The same paths as environment variables, for code that prefers them."""
        env = {"BACKENDAI_PIPELINE_OUTPUTS": OUTPUTS, "BACKENDAI_PIPELINE_VFROOT": VFROOT}
        for index in range(1, len(self.upstream) + 1):
            env[f"BACKENDAI_PIPELINE_INPUT{index}"] = input_path(index)
        return env

    @staticmethod
    def pointer_content(job_id: str) -> bytes:
        return json.dumps({"job_id": job_id}).encode()

    @staticmethod
    def parse_pointer(content: bytes) -> str | None:
        try:
            job = json.loads(content).get("job_id")
        except (ValueError, AttributeError):
            return None
        return str(job) if job else None


def as_artifacts(value: PipelineArtifacts | Mapping[str, Any] | None) -> PipelineArtifacts | None:
    """Accept a ``PipelineArtifacts`` or its dict form (as it comes back from serialisation)."""
    if value is None or isinstance(value, PipelineArtifacts):
        return value
    upstream: Sequence[Any] = value.get("upstream") or ()
    return PipelineArtifacts(vfolder=str(value["vfolder"]), upstream=tuple(str(u) for u in upstream))
