"""Backend.AI's official client (the ``backend.ai`` CLI and the ``backend.ai-client`` SDK) against backendai-lite.

The client runs from its own Python 3.13 environment (``scripts/bai-client-env``, pinned in
``scripts/bai-client-requirements.txt``), as a user's would, over real HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.lite.conftest import IMAGE, create_session, lite_session, terminated, wait_for

REPO = Path(__file__).resolve().parents[2]
CLIENT_TIMEOUT = 120


@pytest.fixture(scope="session")
def bai_client_venv() -> Path:
    """``.venv-bai-client``, created on first use (about a minute), then reused."""
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "bai-client-env")], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/bai-client-env failed:\n{done.stderr[-4000:]}", pytrace=False)
    print(f"official client environment ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return REPO / ".venv-bai-client"


@pytest.fixture
def client_env(lite_server: LiteServer, tmp_path: Path) -> dict[str, str]:
    """The client's configuration as a user sets it: endpoint and keypair in ``BACKEND_*`` variables."""
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        HOME=str(home),
        BACKEND_ENDPOINT=lite_server.url,
        BACKEND_ENDPOINT_TYPE="api",
        BACKEND_ACCESS_KEY=lite_server.access_key,
        BACKEND_SECRET_KEY=lite_server.secret_key,
    )
    return env


class Client:
    """Runs the official CLI and SDK of ``venv`` with ``env``."""

    def __init__(self, venv: Path, env: dict[str, str]) -> None:
        self.venv = venv
        self.env = env

    def cli(self, *args: str, cwd: Path | None = None, stdin: str = "", check: bool = True) -> str:
        """``backend.ai ARGS``; fails the test when it exits non-zero (with ``check``). Returns stdout and stderr."""
        done = subprocess.run(
            [str(self.venv / "bin" / "backend.ai"), *args],
            cwd=cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0 or not check, (
            f"backend.ai {' '.join(args)} exited {done.returncode}:\n{output}"
        )
        return output

    def sdk_process(self, script: str, *args: str) -> subprocess.Popen[str]:
        """Start ``script`` (Python source using ``ai.backend.client``) in the client's interpreter."""
        return subprocess.Popen(
            [str(self.venv / "bin" / "python"), "-c", textwrap.dedent(script), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def sdk(self, script: str, *args: str) -> Any:
        """Run ``script``; it prints one JSON document on its last line, which is returned."""
        process = self.sdk_process(script, *args)
        stdout, stderr = process.communicate(timeout=CLIENT_TIMEOUT)
        assert process.returncode == 0, f"SDK script failed ({process.returncode}):\n{stdout}\n{stderr}"
        return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture
def client(bai_client_venv: Path, client_env: dict[str, str]) -> Client:
    """The official client configured for the shared backendai-lite server."""
    return Client(bai_client_venv, client_env)


def unique(prefix: str) -> str:
    """A name no other test on the shared server uses."""
    return f"{prefix}-{time.monotonic_ns()}"


def test_cli_vfolder_round_trip_by_name(client: Client, lite_server: LiteServer, tmp_path: Path) -> None:
    name = unique("bai-cli")
    src = tmp_path / "src"
    (src / "code" / "pkg").mkdir(parents=True)
    payload = os.urandom(300_000)
    (src / "data.bin").write_bytes(payload)
    (src / "code" / "pkg" / "main.py").write_text("print('hello from a vfolder')\n")
    client.cli("vfolder", "create", name)

    client.cli("vfolder", "upload", "-r", name, "data.bin", "code", cwd=src)
    client.cli("vfolder", "mkdir", "-p", name, "outputs/run-1")
    assert (lite_server.vfolder_path(name) / "outputs" / "run-1").is_dir()

    info = client.cli("vfolder", "info", name)
    with lite_server.client() as http:
        [row] = [item for item in http.get("/folders").json() if item["name"] == name]
    assert f'Virtual folder "{name}" (ID: {row["id"]})' in info
    assert "Number of files: 2" in info
    listing = client.cli("vfolder", "ls", name)
    assert (
        "data.bin" in listing and str(len(payload)) in listing and "code" in listing and "outputs" in listing
    )
    assert "main.py" in client.cli("vfolder", "ls", name, "code/pkg")

    dst = tmp_path / "dst"
    (dst / "code" / "pkg").mkdir(parents=True)
    client.cli("vfolder", "download", name, "data.bin", "code/pkg/main.py", cwd=dst)
    assert (dst / "data.bin").read_bytes() == payload
    assert (dst / "code" / "pkg" / "main.py").read_text() == "print('hello from a vfolder')\n"

    client.cli("vfolder", "rm", "-r", name, "data.bin", "code", stdin="y\n")
    assert sorted(p.name for p in lite_server.vfolder_path(name).iterdir()) == ["outputs"]

    client.cli("vfolder", "delete", name)
    with lite_server.client() as http:
        assert name not in [item["name"] for item in http.get("/folders").json()]
        assert http.get(f"/folders/{name}").status_code == 404


def test_sdk_vfolder_by_name_resolves_the_id(client: Client, lite_server: LiteServer, tmp_path: Path) -> None:
    name = unique("bai-sdk")
    (tmp_path / "train.jsonl").write_text('{"q": "FOB?", "a": "Free on board."}\n')
    out = tmp_path / "out"
    out.mkdir()
    script = """
        import json, sys
        from ai.backend.client.session import Session
        name, base, out = sys.argv[1:]
        with Session() as api:
            api.VFolder.create(name)
            folder = api.VFolder(name)
            folder.mkdir(["data"], parents=True, exist_ok=True)
            folder.upload(["train.jsonl"], basedir=base)
            folder.download(["train.jsonl"], basedir=out)
            files = sorted(item["name"] for item in folder.list_files(".")["items"])
            answer = {"id": api.VFolder(name).get_id().hex, "info": folder.info(), "files": files}
            folder.delete_files(["train.jsonl"])
            answer["after_delete"] = [item["name"] for item in folder.list_files(".")["items"]]
            print(json.dumps(answer))
    """
    answer = client.sdk(script, name, str(tmp_path), str(out))
    with lite_server.client() as http:
        [row] = [item for item in http.get("/folders").json() if item["name"] == name]
        by_id = http.get(f"/folders/{answer['id']}")
    assert answer["id"] == row["id"].replace("-", "")
    assert answer["info"]["name"] == name and answer["info"]["numFiles"] == 1
    assert by_id.status_code == 200 and by_id.json()["name"] == name
    assert answer["files"] == ["data", "train.jsonl"]
    assert answer["after_delete"] == ["data"]
    assert (out / "train.jsonl").read_text() == '{"q": "FOB?", "a": "Free on board."}\n'


LISTEN_SCRIPT = """
    import asyncio, json, sys
    from ai.backend.client.session import AsyncSession

    async def main(name):
        async with AsyncSession() as api:
            async with api.ComputeSession(name).listen_events(scope="session") as events:
                print("listening", flush=True)
                async for event in events:
                    print(json.dumps({"event": event.event, "data": json.loads(event.data)}), flush=True)
                    if event.event in ("session_terminated", "session_cancelled"):
                        return

    asyncio.run(main(sys.argv[1]))
"""


def test_sdk_listen_events_sees_the_session_lifecycle(client: Client, http: httpx.Client) -> None:
    name = unique("bai-events")
    # a name is looked up when the stream opens (as by the manager): the session waits PENDING behind a dependency
    blocker = create_session(http, "sleep 6")["sessionId"]
    session_id = create_session(http, "echo done", name=name, dependencies=[blocker])["sessionId"]
    listener = client.sdk_process(LISTEN_SCRIPT, name)
    try:
        assert listener.stdout is not None
        first = listener.stdout.readline()
        if first.strip() != "listening":
            _, stderr = listener.communicate(timeout=CLIENT_TIMEOUT)
            pytest.fail(f"listen_events did not open: {first}{stderr}", pytrace=False)
        stdout, stderr = listener.communicate(timeout=CLIENT_TIMEOUT)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    assert listener.returncode == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    names = [event["event"] for event in events]
    assert names == [  # session_enqueued came before the stream could name the session
        "session_scheduled",
        "session_preparing",
        "session_started",
        "session_success",
        "session_terminating",
        "session_terminated",
    ]
    assert {(event["data"]["sessionId"], event["data"]["sessionName"]) for event in events} == {
        (session_id, name)
    }


@pytest.fixture
def running_session(http: httpx.Client) -> Iterator[dict[str, Any]]:
    """An interactive session that stays RUNNING until the test destroys it."""
    name = unique("bai-ps")
    body = {"name": name, "image": IMAGE, "type": "interactive", "enqueueOnly": False}
    response = http.post("/session", json={**body, "config": {"resources": {"cpu": 1, "mem": "256m"}}})
    assert response.status_code == 201, response.text
    session_id = response.json()["sessionId"]
    yield {"id": session_id, "name": name}
    http.delete(f"/session/{session_id}", params={"forced": "true"})


def test_cli_ps_lists_the_session(
    client: Client, http: httpx.Client, lite_server: LiteServer, running_session: dict[str, Any]
) -> None:
    name, session_id = running_session["name"], running_session["id"]
    active = client.cli("ps", "--format", "name,session_id,status,access_key,image,type")
    [line] = [line for line in active.splitlines() if name in line]
    assert session_id in line and "RUNNING" in line and lite_server.access_key in line and IMAGE in line
    assert "INTERACTIVE" in line
    assert name in client.cli("ps", "--detail")
    assert name not in client.cli("ps", "--dead")
    # the test keypair is a user (the default): another keypair's sessions are refused, as by the manager
    refused = client.cli("ps", "--access-key", "AKIANOBODYELSE00000", check=False)
    assert "Forbidden operation" in refused and name not in refused

    http.delete(f"/session/{session_id}", params={"forced": "true"})
    wait_for(http, session_id, terminated)
    dead = client.cli("ps", "--dead", "--format", "name,status,result")
    [line] = [line for line in dead.splitlines() if name in line]
    assert lite_session(http, session_id)["status"] in line


def test_sdk_session_list_order_status_and_paging(client: Client, http: httpx.Client) -> None:
    name = unique("bai-list")
    ids = []
    for code in (0, 1):
        ids.append(create_session(http, f"exit {code}", name=name)["sessionId"])
        wait_for(http, ids[-1], terminated)
    script = """
        import json, sys
        from ai.backend.client.output.fields import session_fields
        from ai.backend.client.session import Session
        name, access_key = sys.argv[1:]
        fields = [session_fields[key] for key in ("id", "name", "result", "status_changed", "occupying_slots")]
        with Session() as api:
            def page(**kwargs):
                result = api.ComputeSession.paginated_list(
                    fields=fields, filter=f'name == "{name}"', **kwargs
                )
                return {"total": result.total_count, "items": result.items}
            print(json.dumps({
                "newest_first": page(status="TERMINATED"),
                "oldest_first": page(status="TERMINATED", order="+created_at"),
                "own_key": page(status="TERMINATED", access_key=access_key, page_size=1, page_offset=1),
                "running": page(status="RUNNING"),
            }))
    """
    answer = client.sdk(script, name, client.env["BACKEND_ACCESS_KEY"])
    assert [item["id"] for item in answer["newest_first"]["items"]] == ids[::-1]
    assert [item["id"] for item in answer["oldest_first"]["items"]] == ids
    assert [item["result"] for item in answer["oldest_first"]["items"]] == ["SUCCESS", "FAILURE"]
    assert answer["own_key"]["total"] == 2 and [item["id"] for item in answer["own_key"]["items"]] == ids[:1]
    assert answer["running"] == {"total": 0, "items": []}
    for item in answer["newest_first"]["items"]:
        assert item["status_changed"] == lite_session(http, item["id"])["terminated_at"]
        assert isinstance(json.loads(item["occupying_slots"]), dict)


def test_keypair_query(client: Client, lite_server: LiteServer) -> None:
    script = """
        import json
        from ai.backend.client.session import Session
        with Session() as api:
            print(json.dumps(api.KeyPair(api.config.access_key).info()))
    """
    info = client.sdk(script)
    assert info["access_key"] == lite_server.access_key
    assert info["secret_key"] == lite_server.secret_key
    assert info["is_active"] is True and info["is_admin"] is False  # configured keypairs are users
    assert info["user_id"] == "user@lite.local"
    shown = client.cli("admin", "keypair", "info")
    assert lite_server.access_key in shown and "user@lite.local" in shown
