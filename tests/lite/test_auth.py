"""Version negotiation and keypair signing errors, over HTTP against a real server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from airflow_provider_fasttrack.lite.testing import LiteServer
from airflow_provider_fasttrack.signing import BackendAIAuth, authorization_header, format_date, sign


def _signed_headers(
    server: LiteServer,
    secret: str,
    *,
    access_key: str | None = None,
    date: str | None = None,
    version: str = "v9.20250722",
) -> dict[str, str]:
    date = date or format_date()
    host = server.url.removeprefix("http://")
    signature = sign(secret, "GET", "/folders", date, host, "application/json", version)
    return {
        "Date": date,
        "Content-Type": "application/json",
        "X-BackendAI-Version": version,
        "Authorization": authorization_header(access_key or server.access_key, signature),
    }


def test_version_negotiation_needs_no_auth(lite_server: LiteServer) -> None:
    answer = httpx.get(lite_server.url + "/")
    assert answer.status_code == 200
    assert answer.json()["version"] == "v9.20250722"
    assert answer.json()["manager"].startswith("26.9")


def test_older_versions_accepted_unknown_refused(lite_server: LiteServer) -> None:
    with httpx.Client(
        base_url=lite_server.url,
        auth=BackendAIAuth(lite_server.access_key, lite_server.secret_key, "v8.20240315"),
    ) as old:
        assert old.get("/folders").status_code == 200
    with httpx.Client(
        base_url=lite_server.url, auth=BackendAIAuth(lite_server.access_key, lite_server.secret_key, "v99.1")
    ) as bad:
        answer = bad.get("/folders")
    assert answer.status_code == 400
    assert answer.json()["type"] == "https://api.backend.ai/probs/generic-bad-request"
    assert answer.json()["msg"] == "Unsupported API version."


def test_correct_signature_accepted(lite_server: LiteServer) -> None:
    answer = httpx.get(
        lite_server.url + "/folders", headers=_signed_headers(lite_server, lite_server.secret_key)
    )
    assert answer.status_code == 200, answer.text


def test_bad_signature_is_auth_failed(lite_server: LiteServer) -> None:
    answer = httpx.get(
        lite_server.url + "/folders", headers=_signed_headers(lite_server, "not-the-secret-key")
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "https://api.backend.ai/probs/auth-failed"


def test_unknown_access_key_is_auth_failed(lite_server: LiteServer) -> None:
    headers = _signed_headers(lite_server, lite_server.secret_key, access_key="AKIANOSUCHKEY0000000")
    answer = httpx.get(lite_server.url + "/folders", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["type"] == "https://api.backend.ai/probs/auth-failed"


def test_skewed_date_is_invalid_auth_params(lite_server: LiteServer) -> None:
    skewed = format_date(datetime.now(UTC) - timedelta(minutes=16))
    answer = httpx.get(
        lite_server.url + "/folders",
        headers=_signed_headers(lite_server, lite_server.secret_key, date=skewed),
    )
    assert answer.status_code == 400
    assert answer.json()["type"] == "https://api.backend.ai/probs/invalid-auth-params"
    assert "sync" in answer.json()["msg"]
    within = format_date(datetime.now(UTC) - timedelta(minutes=14))
    ok = httpx.get(
        lite_server.url + "/folders",
        headers=_signed_headers(lite_server, lite_server.secret_key, date=within),
    )
    assert ok.status_code == 200


def test_missing_authorization(lite_server: LiteServer) -> None:
    answer = httpx.get(lite_server.url + "/folders", headers={"Date": format_date()})
    assert answer.status_code == 401
    assert answer.json()["type"] == "https://api.backend.ai/probs/auth-failed"
