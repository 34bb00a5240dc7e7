"""Fuzzing session creation and the folder endpoints over signed HTTP: no input gets a 500 or a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.lite.conftest import IMAGE

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

odd_text = st.sampled_from(
    ["", " ", "\0", "a\0b", "\ud800", "..", "../..", "a/../b", "/", "//x//", "x" * 300, "é" * 200,
     "/".join(["d"] * 2000), "main1", "16gb", "1e400", "NaN", "-1", "{{ x }}", "data\n", "ro", "rw", "*"]
)  # fmt: skip
text = st.text(max_size=20) | odd_text | st.text(st.sampled_from("ab/.\0\ud800 -_"), max_size=12)
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0, -1, 1e30, 1e300, 2**63, 10**400])
)
scalars = st.none() | st.booleans() | numbers | text
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
#: what a session may run: never text drawn at random (that would be a random shell script)
commands = (
    st.sampled_from(["true", "exit 3", "echo fuzz", ""]) | st.none() | numbers | st.lists(scalars, max_size=2)
)

SESSION_FIELDS = [
    "name", "image", "architecture", "type", "group", "domain", "clusterMode", "clusterSize", "tag",
    "maxWaitSeconds", "reuseIfExists", "batchTimeout", "dependencies", "callback_url", "priority",
    "scalingGroup", "config", "sessionName", "clientSessionToken", "lang",
]  # fmt: skip
CONFIG_FIELDS = [
    "resources", "resource_opts", "mounts", "mount_map", "mount_options", "environ", "scalingGroup",
    "preopen_ports",
]  # fmt: skip
CONFIG_VALUES = {
    "resources": st.dictionaries(st.sampled_from(["cpu", "mem", "cuda.shares", "cuda.device", "x"]), values),
    "mounts": st.lists(st.sampled_from(["fz", "fz/sub", "nope", "fz/../x"]) | text, max_size=3),
    "mount_map": st.dictionaries(st.sampled_from(["fz", "fz/sub"]) | text, values, max_size=2),
    "mount_options": st.dictionaries(st.sampled_from(["fz", "fz/sub"]) | text, values, max_size=2),
}


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[httpx.Client, LogWatch]]:
    slots = {"cpu": 2, "mem": "4g", "cuda.shares": 2}
    with LiteServer(sandbox="none", slots=slots) as lite, lite.client() as http:
        assert http.post("/folders", json={"name": "fz"}).status_code == 201
        (lite.vfolder_path("fz") / "dir").mkdir()
        (lite.vfolder_path("fz") / "dir" / "f.txt").write_text("f")
        (lite.vfolder_path("fz") / "out").symlink_to("/etc")
        yield http, LogWatch(lite)


class LogWatch:
    """Reads what the server logged since the last look."""

    def __init__(self, server: LiteServer) -> None:
        self.path = server.log_path
        self.offset = self.path.stat().st_size

    def new(self) -> str:
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        self.offset += len(text.encode(errors="replace"))
        return text


def send(fuzzed: tuple[httpx.Client, LogWatch], method: str, path: str, body: Any = None, **kw: Any) -> None:
    """One request; it must not be answered with a 5xx, nor log a traceback."""
    http, watch = fuzzed
    if body is not None:
        kw["content"] = json.dumps(body).encode("utf-8", "surrogatepass")
        kw["headers"] = {"Content-Type": "application/json"}
    answer = http.request(method, path, **kw)
    logged = watch.new()
    assert answer.status_code < 500, (method, path, body, answer.text)
    assert "Traceback" not in logged, logged[-3000:]


@st.composite
def session_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "fz-" + draw(st.text("abc123", min_size=1, max_size=8)),
        "image": IMAGE,
        "type": draw(st.sampled_from(["batch", "interactive"])),
        "config": {"resources": {"cpu": 1, "mem": "64m"}, "mounts": ["fz"]},
    }
    for key in draw(st.lists(st.sampled_from(SESSION_FIELDS), max_size=4, unique=True)):
        body[key] = draw(values)
    if isinstance(body.get("config"), dict):
        for key in draw(st.lists(st.sampled_from(CONFIG_FIELDS), max_size=3, unique=True)):
            body["config"][key] = draw(CONFIG_VALUES.get(key, values))
    body["startupCommand"] = draw(commands)
    body["bootstrap_script"] = draw(st.none() | commands)
    body["enqueueOnly"] = True  # a session that can never start would otherwise hold the request open
    return body


@FUZZ
@given(body=session_bodies())
def test_session_create_never_500(fuzzed: tuple[httpx.Client, LogWatch], body: dict[str, Any]) -> None:
    send(fuzzed, "POST", "/session", body)


paths = text | st.lists(text, max_size=3) | values
query_paths = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20) | st.sampled_from(
    ["dir", "dir/f.txt", "out", "out/passwd", "..", "x" * 300, "/".join(["d"] * 2000)]
)


@FUZZ
@given(
    endpoint=st.sampled_from(["request-upload", "request-download", "mkdir"]),
    path=st.sampled_from(["dir", "dir/f.txt", "out", "out/passwd", "", "new/file"]) | paths,
    extra=st.dictionaries(st.sampled_from(["size", "archive", "parents", "exist_ok"]), values, max_size=3),
    name=st.sampled_from(["fz"]) | st.text("fz.-_x", min_size=1, max_size=6),
)
def test_folder_endpoints_never_500(
    fuzzed: tuple[httpx.Client, LogWatch], endpoint: str, path: Any, extra: dict[str, Any], name: str
) -> None:
    body = {"path": path, **extra}
    send(fuzzed, "POST", f"/folders/{name}/{endpoint}", body)
    send(fuzzed, "POST", f"/folders/{name}/{endpoint}", [body])


@FUZZ
@given(path=query_paths, raw=st.binary(max_size=64), folder=values)
def test_files_listing_and_raw_bodies_never_500(
    fuzzed: tuple[httpx.Client, LogWatch], path: str, raw: bytes, folder: Any
) -> None:
    send(fuzzed, "GET", "/folders/fz/files", params={"path": path})
    send(fuzzed, "POST", "/folders", {"name": folder, "permission": folder})
    send(fuzzed, "POST", "/folders/fz/request-download", content=raw)
    send(fuzzed, "POST", "/session", content=raw)
