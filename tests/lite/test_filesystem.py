"""VFolders over HTTP (create, tus upload, list, download) and what a session sees of them."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.lite.conftest import compute_session, create_session, session_logs, terminated, wait_for


def upload(http: httpx.Client, vfolder: str, path: str, data: bytes) -> None:
    """Upload one file the way the client SDK does: request-upload, then tus PATCH to the storage URL."""
    ticket = http.post(f"/folders/{vfolder}/request-upload", json={"path": path, "size": len(data)})
    assert ticket.status_code == 200, ticket.text
    url, token = ticket.json()["url"], ticket.json()["token"]
    head = httpx.head(url, params={"token": token}, headers={"Tus-Resumable": "1.0.0"})
    assert head.headers["Upload-Offset"] == "0"
    half = len(data) // 2
    for offset, chunk in ((0, data[:half]), (half, data[half:])):
        answer = httpx.patch(
            url,
            params={"token": token},
            content=chunk,
            headers={
                "Tus-Resumable": "1.0.0",
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert answer.status_code == 204, answer.text
    assert answer.headers["Upload-Offset"] == str(len(data))


def download(http: httpx.Client, vfolder: str, path: str) -> bytes:
    """request-download, then GET the storage URL."""
    ticket = http.post(f"/folders/{vfolder}/request-download", json={"path": path})
    assert ticket.status_code == 200, ticket.text
    answer = httpx.get(ticket.json()["url"], params={"token": ticket.json()["token"]})
    assert answer.status_code == 200
    return answer.content


def test_folder_endpoints(http: httpx.Client, lite_server: LiteServer) -> None:
    created = http.post("/folders", json={"name": "datasets"})
    assert created.status_code == 201 and created.json()["name"] == "datasets"
    again = http.post("/folders", json={"name": "datasets"})
    assert again.status_code == 400 and again.json()["type"].endswith("/vfolder-already-exists")
    assert "datasets" in [f["name"] for f in http.get("/folders").json()]
    upload(http, "datasets", "raw/train.jsonl", b'{"text": "hello"}\n' * 100)
    assert (lite_server.vfolder_path("datasets") / "raw" / "train.jsonl").read_bytes().startswith(b'{"text"')
    files = http.get("/folders/datasets/files", params={"path": "raw"}).json()["items"]
    assert [(f["name"], f["type"], f["size"]) for f in files] == [("train.jsonl", "FILE", 1800)]
    assert download(http, "datasets", "raw/train.jsonl") == b'{"text": "hello"}\n' * 100
    assert http.get("/folders/datasets").json()["numFiles"] == 1
    assert http.post("/folders/datasets/mkdir", json={"path": "models/base"}).status_code == 200
    assert (lite_server.vfolder_path("datasets") / "models" / "base").is_dir()
    ticket = http.post("/folders/datasets/request-download", json={"path": "raw", "archive": True}).json()
    archive = httpx.get(ticket["url"], params={"token": ticket["token"]})
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        assert zipped.namelist() == ["train.jsonl"]
    assert http.get("/folders/nope").status_code == 404
    escape = http.post("/folders/datasets/request-download", json={"path": "../../etc/passwd"})
    assert escape.status_code == 400


def test_namespace_mounts_aliases_and_read_only(
    http: httpx.Client, lite_server: LiteServer, has_namespaces: bool
) -> None:
    if not has_namespaces:
        pytest.skip("private mount namespaces are not available on this machine")
    assert http.post("/folders", json={"name": "pipeline-vf"}).status_code == 201
    assert http.post("/folders", json={"name": "work-data"}).status_code == 201
    upload(http, "pipeline-vf", "job1/prep/input.txt", b"from-upstream")
    command = "\n".join(
        [
            "set -u",
            'echo "pwd=$(pwd) home=$HOME"',
            "cat /pipeline/input1/input.txt; echo",
            "echo result > /pipeline/outputs/out.txt",
            "echo kept > /home/work/work-data/kept.txt",
            "echo scratch > /home/work/scratch.txt",
            "ls /pipeline/vfroot/job1",
            "if echo x > /pipeline/input1/forbidden.txt 2>/dev/null; then echo RO-BROKEN; else echo RO-OK; fi",
        ]
    )
    config = {
        "resources": {"cpu": 1},
        "mounts": ["pipeline-vf/job1/train", "pipeline-vf/job1/prep", "pipeline-vf", "work-data"],
        "mount_map": {
            "pipeline-vf/job1/train": "/pipeline/outputs",
            "pipeline-vf/job1/prep": "/pipeline/input1",
            "pipeline-vf": "/pipeline/vfroot",
        },
        "mount_options": {"pipeline-vf/job1/prep": {"permission": "ro"}},
    }
    sid = create_session(http, command, config=config)["sessionId"]
    wait_for(http, sid, terminated)
    logs = session_logs(http, sid)
    assert compute_session(http, sid)["result"] == "SUCCESS", logs
    assert "pwd=/home/work home=/home/work" in logs
    assert "from-upstream" in logs
    assert "RO-OK" in logs and "RO-BROKEN" not in logs
    assert "prep" in logs and "train" in logs  # the vfroot listing shows both task folders
    vf = lite_server.vfolder_path("pipeline-vf")
    assert (vf / "job1" / "train" / "out.txt").read_text() == "result\n"
    assert not (vf / "job1" / "prep" / "forbidden.txt").exists()
    assert (lite_server.vfolder_path("work-data") / "kept.txt").read_text() == "kept\n"
    assert not list(lite_server.data_dir.rglob("scratch.txt"))  # the scratch home went with the session
    assert download(http, "pipeline-vf", "job1/train/out.txt") == b"result\n"


def test_mount_of_unknown_vfolder_is_refused(http: httpx.Client) -> None:
    body = {
        "name": "no-vf",
        "image": "lite/x",
        "type": "batch",
        "startupCommand": "true",
        "enqueueOnly": True,
        "config": {"mounts": ["missing-vf"]},
    }
    answer = http.post("/session", json=body)
    assert answer.status_code == 404 and answer.json()["type"].endswith("/object-not-found")
