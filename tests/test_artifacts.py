"""Pipeline artifacts: the mounts, paths and variables a task gets, and the ``latest`` pointer round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from airflow_provider_fasttrack.artifacts import OUTPUTS, VFROOT, PipelineArtifacts, as_artifacts, input_path
from airflow_provider_fasttrack.mounts import Mount, mounts_to_request

ARTIFACTS = PipelineArtifacts("fasttrack-speech-asr", upstream=("adapt-one-node", "adapt-two-nodes"))


def test_paths_in_the_vfolder() -> None:
    assert ARTIFACTS.output_dir("job-7", "score") == "job-7/score"
    assert ARTIFACTS.latest_pointer("score") == "latest/score.json"
    assert [input_path(i) for i in (1, 2, 10)] == [
        "/pipeline/input1",
        "/pipeline/input2",
        "/pipeline/input10",
    ]


def test_mounts_give_outputs_vfroot_and_inputs_in_dependency_order() -> None:
    mounts = ARTIFACTS.mounts("job-7", "score", upstream_jobs={})
    assert mounts == [
        Mount("fasttrack-speech-asr", subpath="job-7/score", destination=OUTPUTS),
        Mount("fasttrack-speech-asr", destination=VFROOT),
        Mount(
            "fasttrack-speech-asr",
            subpath="job-7/adapt-one-node",
            destination="/pipeline/input1",
            read_only=True,
        ),
        Mount(
            "fasttrack-speech-asr",
            subpath="job-7/adapt-two-nodes",
            destination="/pipeline/input2",
            read_only=True,
        ),
    ]
    assert [m.path_in_session for m in mounts] == [
        "/pipeline/outputs",
        "/pipeline/vfroot",
        "/pipeline/input1",
        "/pipeline/input2",
    ]


def test_a_skipped_upstream_is_read_from_its_last_job() -> None:
    mounts = ARTIFACTS.mounts("job-7", "score", upstream_jobs={"adapt-two-nodes": "job-3"})
    assert [m.key for m in mounts] == [
        "fasttrack-speech-asr/job-7/score",
        "fasttrack-speech-asr",
        "fasttrack-speech-asr/job-7/adapt-one-node",
        "fasttrack-speech-asr/job-3/adapt-two-nodes",
    ]


def test_mounts_become_one_session_request() -> None:
    request = mounts_to_request(ARTIFACTS.mounts("job-7", "score", upstream_jobs={}))
    assert request == {
        "mounts": [
            "fasttrack-speech-asr/job-7/score",
            "fasttrack-speech-asr",
            "fasttrack-speech-asr/job-7/adapt-one-node",
            "fasttrack-speech-asr/job-7/adapt-two-nodes",
        ],
        "mount_map": {
            "fasttrack-speech-asr/job-7/score": OUTPUTS,
            "fasttrack-speech-asr": VFROOT,
            "fasttrack-speech-asr/job-7/adapt-one-node": "/pipeline/input1",
            "fasttrack-speech-asr/job-7/adapt-two-nodes": "/pipeline/input2",
        },
        "mount_options": {
            "fasttrack-speech-asr/job-7/adapt-one-node": {"permission": "ro"},
            "fasttrack-speech-asr/job-7/adapt-two-nodes": {"permission": "ro"},
        },
    }


def test_a_first_task_mounts_only_its_outputs_and_the_root() -> None:
    first = PipelineArtifacts("fasttrack-speech-asr")
    assert [m.destination for m in first.mounts("job-7", "fetch-audio", {})] == [OUTPUTS, VFROOT]
    assert first.environ() == {
        "BACKENDAI_PIPELINE_OUTPUTS": "/pipeline/outputs",
        "BACKENDAI_PIPELINE_VFROOT": "/pipeline/vfroot",
    }


def test_environment_names_the_same_paths_as_the_mounts() -> None:
    env = ARTIFACTS.environ()
    assert env == {
        "BACKENDAI_PIPELINE_OUTPUTS": "/pipeline/outputs",
        "BACKENDAI_PIPELINE_VFROOT": "/pipeline/vfroot",
        "BACKENDAI_PIPELINE_INPUT1": "/pipeline/input1",
        "BACKENDAI_PIPELINE_INPUT2": "/pipeline/input2",
    }
    mounted = {m.path_in_session for m in ARTIFACTS.mounts("job-7", "score", {})}
    assert set(env.values()) == mounted


def test_pointer_round_trip() -> None:
    content = PipelineArtifacts.pointer_content("2f0c6a3e-job")
    assert json.loads(content) == {"job_id": "2f0c6a3e-job"}
    assert PipelineArtifacts.parse_pointer(content) == "2f0c6a3e-job"


@pytest.mark.parametrize(
    "content",
    [b"", b"not json", b"[1, 2]", b'"job"', b"{}", b'{"job_id": ""}', b'{"job_id": null}', b"\xff\xfe"],
)
def test_an_unreadable_pointer_is_no_pointer(content: bytes) -> None:
    assert PipelineArtifacts.parse_pointer(content) is None


def test_as_artifacts_accepts_the_serialised_form() -> None:
    assert as_artifacts(ARTIFACTS) is ARTIFACTS
    assert as_artifacts(None) is None
    assert as_artifacts(dataclasses.asdict(ARTIFACTS)) == ARTIFACTS
    through_json = json.loads(json.dumps(dataclasses.asdict(ARTIFACTS)))  # the tuple comes back as a list
    assert through_json["upstream"] == ["adapt-one-node", "adapt-two-nodes"]
    assert as_artifacts(through_json) == ARTIFACTS
    assert as_artifacts({"vfolder": "v", "upstream": None}) == PipelineArtifacts("v")
