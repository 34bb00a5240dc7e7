"""Malformed and hostile request bodies get a 400 (or 413) problem document, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.lite.conftest import IMAGE

BODY_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[LiteServer]:
    with LiteServer(sandbox="none", extra_config={"max_request_body_bytes": BODY_LIMIT}) as lite:
        with lite.client() as http:
            assert http.post("/folders", json={"name": "data"}).status_code == 201
        yield lite
        assert "Traceback" not in lite.log_tail(10**9)


@pytest.fixture
def http(server: LiteServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def post_raw(http: httpx.Client, path: str, text: str) -> httpx.Response:
    return http.post(path, content=text.encode("utf-8"), headers={"Content-Type": "application/json"})


def assert_problem(answer: httpx.Response, status: int = 400) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["msg"]


def session_body(**fields: Any) -> dict[str, Any]:
    body = {
        "name": "bad-input",
        "image": IMAGE,
        "type": "batch",
        "startupCommand": "true",
        "enqueueOnly": True,
    }
    return {**body, **fields}


@pytest.mark.parametrize("session_type", [0, "", None, ["batch"]])
def test_a_session_type_that_names_no_type_is_refused(http: httpx.Client, session_type: object) -> None:
    """Only an absent ``type`` defaults to interactive (a session that would hold its slots until destroyed)."""
    assert_problem(http.post("/session", json=session_body(type=session_type)))


@pytest.mark.parametrize("callback", [{"url": "http://x"}, ["http://x"], 1e30])
def test_callback_url_must_be_a_string(http: httpx.Client, callback: object) -> None:
    assert_problem(http.post("/session", json=session_body(callback_url=callback)))


@pytest.mark.parametrize("path", ["/session", "/folders", "/folders/data/request-upload", "/admin/gql"])
def test_deeply_nested_body(http: httpx.Client, path: str) -> None:
    assert_problem(post_raw(http, path, "[" * 50_000))


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_max_wait_is_refused_before_anything_is_created(http: httpx.Client, value: str) -> None:
    text = json.dumps(session_body(name=f"nan-wait-{len(value)}", enqueueOnly=False))
    answer = post_raw(http, "/session", text[:-1] + f', "maxWaitSeconds": {value}}}')
    assert_problem(answer)
    names = [item["name"] for item in http.get("/lite/sessions").json()["sessions"]]
    assert f"nan-wait-{len(value)}" not in names


def test_unpaired_surrogate_and_huge_integer(http: httpx.Client) -> None:
    assert_problem(post_raw(http, "/session", json.dumps(session_body(tag="\ud800"))))
    assert_problem(post_raw(http, "/session", json.dumps(session_body(maxWaitSeconds=10**400))))
    assert_problem(post_raw(http, "/session", json.dumps(session_body(batchTimeout=10**100))))


BAD_PATHS = {
    "nul": "a\0b",
    "long name": "x" * 300,
    "deep": "/".join(["d"] * 2000),
    "surrogate": "a\ud800",
    "not a string": 7,
}


@pytest.mark.parametrize("path", BAD_PATHS.values(), ids=BAD_PATHS.keys())
def test_bad_paths(http: httpx.Client, path: object) -> None:
    body = json.dumps({"path": path, "size": 1})
    assert_problem(post_raw(http, "/folders/data/request-upload", body))
    assert_problem(post_raw(http, "/folders/data/request-download", body))
    assert_problem(post_raw(http, "/folders/data/mkdir", body))
    if isinstance(path, str) and "\ud800" not in path:
        assert_problem(http.get("/folders/data/files", params={"path": path}))


def test_body_size_limit_is_413_but_not_for_uploads(http: httpx.Client) -> None:
    padding = "x" * BODY_LIMIT
    assert_problem(http.post("/folders", json={"name": "big", "padding": padding}), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body arrives
        yield b'{"name": "big", "padding": "'
        yield padding.encode()
        yield b'"}'

    answer = http.post("/folders", content=chunks(), headers={"Content-Type": "application/json"})
    assert_problem(answer, 413)
    assert answer.json()["type"].endswith("/request-too-large")
    assert http.post("/folders", json={"name": "small"}).status_code == 201

    data = b"y" * (4 * BODY_LIMIT)
    ticket = http.post("/folders/data/request-upload", json={"path": "large.bin", "size": len(data)}).json()
    headers = {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
    answer = httpx.patch(ticket["url"], params={"token": ticket["token"]}, content=data, headers=headers)
    assert answer.status_code == 204, answer.text
