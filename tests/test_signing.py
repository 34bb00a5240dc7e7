from __future__ import annotations

import pytest

from airflow_provider_fasttrack.signing import (
    authorization_header,
    parse_authorization,
    sign,
    string_to_sign,
)

VECTOR_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_reference_test_vector() -> None:
    signature = sign(
        VECTOR_SECRET,
        "POST",
        "/session?owner_access_key=X",
        "2026-01-02T03:04:05+00:00",
        "127.0.0.1:8091",
        "application/json",
        "v9.20250722",
    )
    assert signature == "6bc7b7525c001adb8bf2426c5ce1f4171973b78eccc7cdd44c72bda8925f3ea4"


def test_content_type_parameters_are_not_signed() -> None:
    args = ("GET", "/", "2026-01-02T03:04:05+00:00", "h:1")
    with_charset = sign(VECTOR_SECRET, *args, "application/json; charset=utf-8", "v9.20250722")
    assert with_charset == sign(VECTOR_SECRET, *args, "application/json", "v9.20250722")


def test_string_to_sign_ends_with_empty_body_hash() -> None:
    text = string_to_sign("get", "/a?b=1", "D", "h:1", "application/json", "v9")
    assert text.splitlines() == [
        "GET",
        "/a?b=1",
        "D",
        "host:h:1",
        "content-type:application/json",
        "x-backendai-version:v9",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ]


def test_authorization_header_round_trip() -> None:
    header = authorization_header("AKEY", "abc123")
    assert parse_authorization(header) == ("HMAC-SHA256", "AKEY", "abc123")


@pytest.mark.parametrize("bad", ["Bearer x", "BackendAI", "BackendAI signMethod=HMAC-SHA256", "BackendAI a"])
def test_malformed_authorization_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_authorization(bad)
