"""``POST /admin/gql`` against a real server: ``compute_session_list`` filters and paging, scalar errors."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.lite.conftest import create_session, terminated, wait_for

LIST_QUERY = (
    "query($filter: String, $status: String, $limit: Int!, $offset: Int!) { "
    "compute_session_list(limit: $limit, offset: $offset, filter: $filter, status: $status) "
    "{ total_count items { id name status result type occupied_slots } } }"
)


def gql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    """The GraphQL answer (always HTTP 200, errors in the envelope)."""
    response = http.post("/admin/gql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_session_list_by_name_status_and_page(http: httpx.Client) -> None:
    name = f"gql-list-{time.monotonic_ns()}"
    ids = []
    for code in (0, 1):  # a name is reusable once its session has ended
        ids.append(create_session(http, f"exit {code}", name=name)["sessionId"])
        wait_for(http, ids[-1], terminated)
    assert len(set(ids)) == 2
    by_name = gql(http, LIST_QUERY, filter=f"name == {json.dumps(name)}", limit=10, offset=0)
    listing = by_name["data"]["compute_session_list"]
    assert "errors" not in by_name and listing["total_count"] == 2
    assert sorted(item["id"] for item in listing["items"]) == sorted(ids)
    assert {item["result"] for item in listing["items"]} == {"SUCCESS", "FAILURE"}
    assert {item["type"] for item in listing["items"]} == {"BATCH"}
    assert all(isinstance(json.loads(item["occupied_slots"]), dict) for item in listing["items"])
    page = gql(http, LIST_QUERY, filter=f"name == {json.dumps(name)}", limit=1, offset=1)
    assert page["data"]["compute_session_list"]["total_count"] == 2
    assert len(page["data"]["compute_session_list"]["items"]) == 1
    terminated_only = gql(
        http, LIST_QUERY, filter=f"name == {json.dumps(name)}", status="terminated", limit=10, offset=0
    )
    assert terminated_only["data"]["compute_session_list"]["total_count"] == 2
    running = gql(
        http, LIST_QUERY, filter=f"name == {json.dumps(name)}", status="RUNNING,PENDING", limit=10, offset=0
    )
    assert running["data"]["compute_session_list"] == {"total_count": 0, "items": []}


def test_session_list_other_filters_are_an_error(http: httpx.Client) -> None:
    answer = gql(http, LIST_QUERY, filter='status == "RUNNING"', limit=10, offset=0)
    assert answer["data"] == {"compute_session_list": None}
    [error] = answer["errors"]
    assert error["message"] == 'backendai-lite supports only filters of the form name == "<session name>".'
    assert error["path"] == ["compute_session_list"]


def test_session_list_needs_limit_and_offset(http: httpx.Client) -> None:
    answer = gql(http, "{ compute_session_list { total_count } }")
    assert answer["data"] is None
    assert [error["message"] for error in answer["errors"]] == [
        "Field 'compute_session_list' argument 'limit' of type 'Int!' is required, but it was not provided.",
        "Field 'compute_session_list' argument 'offset' of type 'Int!' is required, but it was not provided.",
    ]


def test_invalid_uuid_and_syntax_errors(http: httpx.Client) -> None:
    query = "query($id: UUID!) { compute_session(id: $id) { status } }"
    bad_id = gql(http, query, id="not-a-uuid")
    assert bad_id["data"] is None
    assert bad_id["errors"][0]["message"] == (
        "Variable '$id' got invalid value 'not-a-uuid'; UUID cannot represent value: 'not-a-uuid'"
    )
    broken = gql(http, "{ compute_session(id: ")
    assert broken == {
        "data": None,
        "errors": [{"message": "Syntax Error: Unexpected <EOF>.", "locations": [{"line": 1, "column": 23}]}],
    }
    mutation = gql(http, "mutation { compute_session }")
    assert mutation["errors"][0]["message"] == "Schema is not configured to execute mutation operation."
