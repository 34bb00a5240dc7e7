"""backendai-lite's model services over HTTP: replicas from a model definition, the endpoint, scaling, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.lite.testing import LiteServer
from tests.helpers import session_processes
from tests.helpers import wait_for as wait_until
from tests.lite.conftest import IMAGE
from tests.model_service import MODEL_DEFINITION, write_echo_model

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "What is CIF?"}]}


def create(http: httpx.Client, name: str, **fields: Any) -> dict[str, Any]:
    config = {
        "model": fields.pop("model", "svc-model"),
        "resources": {"cpu": 1, "mem": "256m"},
        "scaling_group": "default",
    }
    body = {"name": name, "image": IMAGE, "replicas": fields.pop("replicas", 1), "config": config, **fields}
    answer = http.post("/services", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def ready(http: httpx.Client, service_id: str, replicas: int) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        info = dict(http.get(f"/services/{service_id}").json())
        return info if info["service_endpoint"] and len(info["active_routes"]) == replicas else None

    return wait_until(check, timeout=60)  # type: ignore[no-any-return]


@pytest.fixture
def model(lite_server: LiteServer) -> str:
    write_echo_model(lite_server, "svc-model", greeting="From svc-model:")
    return "svc-model"


def test_a_service_answers_through_its_endpoint_with_a_token(http, model) -> None:  # type: ignore[no-untyped-def]
    service_id = create(http, "answering")["endpoint_id"]
    info = ready(http, service_id, 1)
    url = info["service_endpoint"] + "/v1/chat/completions"
    assert httpx.post(url, json=CHAT).status_code == 401
    assert httpx.post(url, json=CHAT, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    token = http.post(f"/services/{service_id}/token", json={"duration": 60}).json()["token"]
    for scheme in ("BackendAI", "Bearer"):
        answer = httpx.post(url, json=CHAT, headers={"Authorization": f"{scheme} {token}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "From svc-model: What is CIF?"
    assert http.delete(f"/services/{service_id}").json() == {"success": True}
    assert http.get(f"/services/{service_id}").status_code == 404
    assert httpx.post(url, json=CHAT, headers={"Authorization": f"Bearer {token}"}).status_code == 404


def test_a_public_service_needs_no_token_and_scaling_changes_the_replicas(http, model) -> None:  # type: ignore[no-untyped-def]
    service_id = create(http, "public-scaled", open_to_public=True, replicas=2)["endpoint_id"]
    info = ready(http, service_id, 2)
    assert httpx.post(info["service_endpoint"] + "/v1/chat/completions", json=CHAT).status_code == 200
    sessions = [route["session_id"] for route in info["active_routes"]]
    assert http.post(f"/services/{service_id}/scale", json={"to": 1}).json()["target_count"] == 1
    ready(http, service_id, 1)
    assert http.post(f"/services/{service_id}/scale", json={"to": 3}).status_code == 200
    info = ready(http, service_id, 3)
    sessions += [route["session_id"] for route in info["active_routes"]]
    http.delete(f"/services/{service_id}")
    for session_id in set(sessions):  # the replicas die with the service
        wait_until(lambda s=session_id: not session_processes(s), timeout=15)


def test_a_failing_start_command_is_reported_in_errors(http, lite_server) -> None:  # type: ignore[no-untyped-def]
    broken = MODEL_DEFINITION.replace('"{model_path}/server.py"', '"{model_path}/missing.py"')
    write_echo_model(lite_server, "broken-model", definition=broken)
    service_id = create(http, "broken-svc", model="broken-model")["endpoint_id"]
    errors = wait_until(
        lambda: (e := http.get(f"/services/{service_id}/errors").json())["retries"] >= 2 and e
    )
    assert "missing.py" in errors["errors"][0]["error"]["logs"]
    assert http.get(f"/services/{service_id}").json()["service_endpoint"] is None
    http.delete(f"/services/{service_id}")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "-bad-"}, "is not a service name"),
        ({"runtime_variant": "tensorrt"}, "runtime_variant 'tensorrt' is not one of custom, vllm"),
        ({"config": {"model": "no-such-folder"}}, "No such virtual folder"),
        (
            {
                "config": {"model": "svc-model", "model_mount_destination": "/elsewhere"},
                "runtime_variant": "vllm",
            },
            "must be /models for vllm",
        ),
        ({"config": {"model": "svc-model", "model_definition_path": "nope.yaml"}}, "has no nope.yaml"),
    ],
)
def test_bad_service_requests_are_refused(http, model, change, message) -> None:  # type: ignore[no-untyped-def]
    body = {"name": "refused", "image": IMAGE, "config": {"model": model}, **change}
    answer = http.post("/services", json=body)
    assert answer.status_code in (400, 404), answer.text
    assert message in answer.json()["msg"]


def test_a_duplicate_name_is_refused(http, model) -> None:  # type: ignore[no-untyped-def]
    service_id = create(http, "only-once")["endpoint_id"]
    answer = http.post(
        "/services",
        json={"name": "only-once", "image": IMAGE, "config": {"model": model, "scaling_group": "default"}},
    )
    assert answer.status_code == 400 and "same name" in answer.json()["msg"]
    http.delete(f"/services/{service_id}")
