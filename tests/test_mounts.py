"""FastTrack mount strings and the session request fields they become."""

from __future__ import annotations

import pytest

from airflow_provider_fasttrack.mounts import Mount, mounts_to_request


@pytest.mark.parametrize(
    ("text", "destination", "in_session"),
    [
        ("data", None, "/home/work/data"),
        ("data:datasets", "datasets", "/home/work/datasets"),
        ("data:/mnt/data", "/mnt/data", "/mnt/data"),
        ("  models.v2:weights/base  ", "weights/base", "/home/work/weights/base"),
    ],
)
def test_parse(text: str, destination: str | None, in_session: str) -> None:
    mount = Mount.parse(text)
    assert mount.destination == destination
    assert mount.path_in_session == in_session
    assert str(Mount.parse(str(mount))) == str(mount)  # round trip


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "non-empty string"),
        ("bad name", "is not a mount"),
        ("-data", "is not a mount"),
        ("d" * 65, "is not a mount"),
        ("data:", "alias after ':' is empty"),
        ("data:../etc", "is not a mount alias"),
        ("data:a/../../etc", "is not a mount alias"),
        ("data:a:b", "is not a mount alias"),
        ("data:with space", "is not a mount alias"),
        ("data:a\nb", "is not a mount alias"),
    ],
)
def test_parse_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Mount.parse(text)


def test_request_fields() -> None:
    mounts = [
        Mount.parse("data:datasets"),
        Mount("pipeline", subpath="job/a/outputs", destination="/pipeline/outputs"),
        Mount("pipeline", subpath="job/b/outputs", destination="/pipeline/input1", read_only=True),
        Mount.parse("plain"),
    ]
    assert mounts_to_request(mounts) == {
        "mounts": ["data", "pipeline/job/a/outputs", "pipeline/job/b/outputs", "plain"],
        "mount_map": {
            "data": "datasets",
            "pipeline/job/a/outputs": "/pipeline/outputs",
            "pipeline/job/b/outputs": "/pipeline/input1",
        },
        "mount_options": {"pipeline/job/b/outputs": {"permission": "ro"}},
    }
    assert mounts_to_request([Mount.parse("plain")]) == {"mounts": ["plain"]}


def test_the_same_vfolder_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="mounted twice"):
        mounts_to_request([Mount.parse("data"), Mount.parse("data:other")])
