"""``request_stats: true``: requests per route and GraphQL kind, and client connections, at ``GET /lite/requests``."""

from __future__ import annotations

import httpx

from airflow_provider_fasttrack.hooks.backendai import COMPUTE_SESSION_QUERY
from airflow_provider_fasttrack.lite.request_stats import graphql_kind
from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.helpers import wait_for
from tests.lite.conftest import create_session

USAGE_QUERY = (
    "query($id: UUID!) { compute_session(id: $id) { status status_history containers { last_stat } } }"
)


def test_request_counts_are_off_by_default(http: httpx.Client) -> None:
    response = http.get("/lite/requests")
    assert response.status_code == 404
    assert response.json()["type"].endswith("/object-not-found")


def test_graphql_kind() -> None:
    assert graphql_kind(COMPUTE_SESSION_QUERY) == "compute_session"
    assert graphql_kind(USAGE_QUERY) == "compute_session (usage)"
    assert graphql_kind("query { compute_session_list(limit: 1) { items { id } } }") == "compute_session_list"
    assert graphql_kind("not a query") == "unparsed"


def test_requests_counted_per_route_kind_and_connection() -> None:
    with (
        LiteServer(sandbox="none", extra_config={"request_stats": True}) as server,
        server.client() as http,
        server.client() as other,
    ):
        http.get("/lite/requests")  # an answer counts once it starts: the next one includes this connection
        before = http.get("/lite/requests").json()
        session_id = create_session(http, "sleep 60", image="python:3.11")["sessionId"]
        for _ in range(3):
            assert http.get(f"/session/{session_id}").status_code == 200
        assert other.get(f"/session/{session_id}/logs").status_code == 200
        for query in (COMPUTE_SESSION_QUERY, COMPUTE_SESSION_QUERY, USAGE_QUERY):
            answer = http.post("/admin/gql", json={"query": query, "variables": {"id": session_id}})
            assert answer.status_code == 200, answer.text
        with other.stream("GET", "/events/session", params={"sessionName": "*"}) as stream:
            assert stream.status_code == 200
            during = http.get("/lite/requests").json()
        after = wait_for(  # the server sees the closed stream at its next check (each second)
            lambda: (
                counts
                if "GET /events/session" not in (counts := http.get("/lite/requests").json())["in_flight"]
                else None
            )
        )
        http.delete(f"/session/{session_id}", params={"forced": "true"})

    assert during["requests"]["GET /session/{session_ref}"] == 3
    assert during["requests"]["GET /session/{session_ref}/logs"] == 1
    assert during["requests"]["POST /admin/gql"] == 3
    assert during["requests"]["POST /session"] == 1
    assert during["graphql"] == {"compute_session": 2, "compute_session (usage)": 1}
    assert during["in_flight"]["GET /events/session"] == 1
    assert during["connections"] == before["connections"] + 1  # the other client's one kept connection
    assert after["requests"]["GET /events/session"] == 1
