"""What Backend.AI's own client relies on, checked over plain HTTP: signing without a Content-Type, who sees
whose sessions and keypairs in GraphQL, and vfolders addressed by id."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.lite.config import generate_keypair
from airflow_provider_fasttrack.lite.testing import LiteServer
from airflow_provider_fasttrack.signing import BackendAIAuth, authorization_header, format_date, sign
from tests.lite.conftest import create_session, terminated, wait_for

SESSIONS = (
    "query($access_key: String, $order: String) { compute_session_list(limit: 20, offset: 0, "
    "access_key: $access_key, order: $order) { total_count items { name access_key user_email } } }"
)
KEYPAIR = "query($access_key: String) { keypair(access_key: $access_key) { access_key is_admin user_id } }"


def _get_without_content_type(server: LiteServer, signed_content_type: str) -> httpx.Response:
    date = format_date()
    host = server.url.removeprefix("http://")
    signature = sign(server.secret_key, "GET", "/folders", date, host, signed_content_type, "v9.20250722")
    headers = {
        "Date": date,
        "X-BackendAI-Version": "v9.20250722",
        "Authorization": authorization_header(server.access_key, signature),
    }
    return httpx.get(server.url + "/folders", headers=headers)


def test_a_request_without_content_type_is_signed_as_octet_stream(lite_server: LiteServer) -> None:
    assert _get_without_content_type(lite_server, "application/octet-stream").status_code == 200
    refused = _get_without_content_type(lite_server, "")
    assert refused.status_code == 401 and refused.json()["msg"] == "Signature mismatch"


@pytest.fixture(scope="module")
def two_owners() -> Iterator[tuple[LiteServer, dict[str, Any], dict[str, Any]]]:
    """A server with an admin keypair and a user keypair."""
    admin = {**generate_keypair().model_dump(), "user_email": "admin@lite.local", "is_admin": True}
    user = {**generate_keypair().model_dump(), "user_email": "user@example.com", "is_admin": False}
    with LiteServer(keypairs=[admin, user], sandbox="none") as server:
        yield server, admin, user


def _client(server: LiteServer, keypair: dict[str, Any]) -> httpx.Client:
    auth = BackendAIAuth(keypair["access_key"], keypair["secret_key"], "v9.20250722")
    return httpx.Client(base_url=server.url, auth=auth, timeout=30)


def _gql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    answer = http.post("/admin/gql", json={"query": query, "variables": variables})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_session_list_and_keypair_scopes(
    two_owners: tuple[LiteServer, dict[str, Any], dict[str, Any]],
) -> None:
    server, admin, user = two_owners
    suffix = time.monotonic_ns()
    with _client(server, admin) as as_admin, _client(server, user) as as_user:
        for http, name in ((as_admin, f"admin-{suffix}"), (as_user, f"user-{suffix}")):
            wait_for(http, create_session(http, "true", name=name)["sessionId"], terminated)

        everyone = _gql(as_admin, SESSIONS, order="name")["data"]["compute_session_list"]
        assert [item["name"] for item in everyone["items"]] == [f"admin-{suffix}", f"user-{suffix}"]
        assert [item["user_email"] for item in everyone["items"]] == ["admin@lite.local", "user@example.com"]
        one_owner = _gql(as_admin, SESSIONS, access_key=user["access_key"])["data"]["compute_session_list"]
        assert [item["access_key"] for item in one_owner["items"]] == [user["access_key"]]
        own = _gql(as_user, SESSIONS)["data"]["compute_session_list"]
        assert own["total_count"] == 1 and own["items"][0]["name"] == f"user-{suffix}"
        forbidden = _gql(as_user, SESSIONS, access_key=admin["access_key"])
        assert forbidden["data"] == {"compute_session_list": None}
        assert forbidden["errors"][0]["message"].startswith("Forbidden operation")
        bad_order = _gql(as_admin, SESSIONS, order="-colour")
        assert "Unknown or unsupported order key '-colour'" in bad_order["errors"][0]["message"]

        assert _gql(as_user, KEYPAIR)["data"]["keypair"] == {
            "access_key": user["access_key"],
            "is_admin": False,
            "user_id": "user@example.com",
        }
        assert _gql(as_admin, KEYPAIR, access_key=user["access_key"])["data"]["keypair"]["is_admin"] is False
        assert _gql(as_admin, KEYPAIR, access_key="AKIAUNKNOWN000000000")["data"] == {"keypair": None}
        assert _gql(as_user, KEYPAIR, access_key=admin["access_key"])["data"] == {"keypair": None}


def test_vfolders_by_id(two_owners: tuple[LiteServer, dict[str, Any], dict[str, Any]]) -> None:
    server, admin, user = two_owners
    with _client(server, admin) as as_admin, _client(server, user) as as_user:
        created = as_admin.post("/folders", json={"name": "by-id"}).json()
        found = as_admin.request("GET", "/folders/_/id", content=json.dumps({"name": "by-id"}))
        assert found.status_code == 200 and found.json() == {"id": created["id"], "name": "by-id"}
        hex_id = uuid.UUID(created["id"]).hex
        assert as_admin.get(f"/folders/{hex_id}").json()["name"] == "by-id"
        assert as_admin.get(f"/folders/{hex_id}/files", params={"path": ""}).json()["items"] == []
        assert as_user.get(f"/folders/{hex_id}").status_code == 404  # another owner's id
        assert (
            as_user.request("GET", "/folders/_/id", content=json.dumps({"name": "by-id"})).status_code == 404
        )
        named_like_an_id = as_admin.post("/folders", json={"name": uuid.uuid4().hex})
        assert named_like_an_id.status_code == 400 and "must not be a UUID" in named_like_an_id.json()["msg"]

        made = as_admin.post(f"/folders/{hex_id}/mkdir", json={"path": ["a/b", "a/b"], "parents": True})
        assert made.status_code == 207
        assert made.json()["results"]["success"] == [{"item": "a/b", "msg": None}]
        assert [item["item"] for item in made.json()["results"]["failed"]] == ["a/b"]
        assert as_admin.post(f"/folders/{hex_id}/mkdir", json={"path": "a/b"}).status_code == 422
        kept = as_admin.request("DELETE", f"/folders/{hex_id}/delete-files", json={"files": ["a"]})
        assert kept.status_code == 400 and "recursive" in kept.json()["msg"]
        removed = as_admin.request(
            "DELETE", f"/folders/{hex_id}/delete-files", json={"files": ["a"], "recursive": True}
        )
        assert removed.status_code == 200 and not (server.vfolder_path("by-id") / "a").exists()

        assert as_user.request("DELETE", "/folders", json={"id": hex_id}).status_code == 404
        assert as_admin.request("DELETE", "/folders", json={"id": "by-id"}).status_code == 400
        assert as_admin.request("DELETE", "/folders", json={"id": hex_id}).status_code == 204
        assert as_admin.get("/folders/by-id").status_code == 404
        assert not server.vfolder_path("by-id").exists()
        as_admin.post("/folders", json={"name": "by-name"})
        assert as_admin.delete("/folders/by-name").status_code == 204
        assert as_admin.post("/folders", json={"name": "by-name"}).status_code == 201


def test_the_hook_finds_only_its_own_sessions_of_a_name(two_owners, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An admin keypair's name lookup (the lost-answer path of create_session) skips other owners' sessions."""
    from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
    from tests.helpers import connection_env

    server, admin, user = two_owners
    name = f"same-name-{uuid.uuid4().hex[:8]}"
    with _client(server, user) as http:
        theirs = create_session(http, "true", name=name)
    monkeypatch.setenv(
        "AIRFLOW_CONN_BACKENDAI_ADMIN",
        connection_env(server, access_key=admin["access_key"], secret_key=admin["secret_key"]),
    )
    hook = BackendAIHook("backendai_admin")
    assert [item["id"] for item in hook.find_sessions(name)] == []
    with _client(server, admin) as http:  # the admin does see the session without the owner filter
        everyone = _gql(http, SESSIONS)["data"]["compute_session_list"]["items"]
    assert theirs["sessionId"] and name in [item["name"] for item in everyone]
