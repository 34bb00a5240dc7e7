"""backendai-lite's service endpoint under a hostile user: isolation between services, what reaches a replica.

Two users, each with a model service of their own echo server (``tests/model_service.py``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from airflow_provider_fasttrack.lite.auth import LATEST_API_VERSION
from airflow_provider_fasttrack.lite.config import ServicesConfig
from airflow_provider_fasttrack.lite.testing import LiteServer
from airflow_provider_fasttrack.signing import BackendAIAuth
from tests.helpers import wait_for
from tests.lite.conftest import IMAGE
from tests.model_service import MODEL_DEFINITION, write_echo_model

USER_A = {"access_key": "AKIASERVICEUSERA0001", "secret_key": "service-user-a-secret-0123456789abcdef"}
USER_B = {"access_key": "AKIASERVICEUSERB0001", "secret_key": "service-user-b-secret-0123456789abcdef"}
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "Still there?"}]}
CONFIG = {"images": [{"pattern": "cr.backend.ai/*"}], "kill_grace_seconds": 1}


@pytest.fixture(scope="module")
def server() -> Iterator[LiteServer]:
    with LiteServer(keypairs=[USER_A, USER_B], extra_config=CONFIG) as lite:
        yield lite


def client(server: LiteServer, keypair: dict[str, Any]) -> httpx.Client:
    auth = BackendAIAuth(keypair["access_key"], keypair["secret_key"], LATEST_API_VERSION)
    return httpx.Client(base_url=server.url, auth=auth, timeout=30)


def start_service(server: LiteServer, http: httpx.Client, name: str, **fields: Any) -> str:
    """A one-replica service of ``http``'s own echo model; its endpoint once the replica is healthy."""
    write_echo_model(server, f"{name}-model", greeting=f"{name}:", owner=http)
    config = {"model": f"{name}-model", "resources": {"cpu": 1, "mem": "256m"}, "scaling_group": "default"}
    answer = http.post("/services", json={"name": name, "image": IMAGE, "config": config, **fields})
    assert answer.status_code == 201, answer.text
    service_id = answer.json()["endpoint_id"]

    def healthy() -> str | None:
        info = http.get(f"/services/{service_id}").json()
        return str(info["service_endpoint"]) if info["service_endpoint"] and info["active_routes"] else None

    return str(wait_for(healthy, timeout=60))


def delete_services(http: httpx.Client) -> None:
    for service in http.get("/services").json():
        http.delete(f"/services/{service['id']}")


# -- one service's traffic cannot starve another service's requests or health checks --------------------

#: more held requests than every service's connections together once were
FLOOD = 110
HOLD_SECONDS = 20


def test_a_flooded_service_leaves_other_services_healthy_and_answering(server: LiteServer) -> None:
    with client(server, USER_A) as http_a, client(server, USER_B) as http_b:
        steady = start_service(server, http_a, "steady", open_to_public=True)
        flooded = start_service(server, http_b, "flooded", open_to_public=True)
        steady_id = steady.rsplit("/", 1)[-1]

        async def flood() -> tuple[list[httpx.Response], list[httpx.Response | BaseException]]:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
            async with httpx.AsyncClient(limits=limits, timeout=90) as caller:
                held = [
                    asyncio.create_task(caller.get(f"{flooded}/hold/{HOLD_SECONDS}")) for _ in range(FLOOD)
                ]
                await asyncio.sleep(3)  # the held requests reach backendai-lite and the replica
                answers = []
                for _ in range(3):
                    answers.append(await caller.post(f"{steady}/v1/chat/completions", json=CHAT, timeout=8))
                    await asyncio.sleep(1)
                return answers, await asyncio.gather(*held, return_exceptions=True)

        try:
            answers, held = asyncio.run(flood())
            assert [a.status_code for a in answers] == [200, 200, 200]
            assert answers[0].json()["choices"][0]["message"]["content"] == "steady: Still there?"
            info = http_a.get(f"/services/{steady_id}").json()
            assert len(info["active_routes"]) == 1
            assert http_a.get(f"/services/{steady_id}/errors").json()["retries"] == 0
            # the flooded service got as many connections as its limit, the others a 503 once they waited
            statuses = sorted(a.status_code if isinstance(a, httpx.Response) else 0 for a in held)
            limit = ServicesConfig().max_connections
            assert statuses == [200] * limit + [503] * (FLOOD - limit), statuses
        finally:
            delete_services(http_a)
            delete_services(http_b)


def test_a_held_request_ends_after_the_read_timeout() -> None:
    config = {**CONFIG, "services": {"read_timeout": 1.5, "max_connections": 2, "pool_timeout": 1}}
    with LiteServer(keypairs=[USER_A], extra_config=config) as lite, lite.client() as http:
        endpoint = start_service(lite, http, "held", open_to_public=True)
        started = time.monotonic()
        answer = httpx.get(f"{endpoint}/hold/30", timeout=20)
        assert answer.status_code == 503
        assert "did not answer" in answer.json()["msg"]
        assert time.monotonic() - started < 10
        assert httpx.get(f"{endpoint}/hold/0.1", timeout=20).status_code == 200
        delete_services(http)
        assert "Traceback" not in lite.log_tail(10**9)


# -- the health check probes the replica's own port --------------------------------------------------------


class _Decoy(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.mark.parametrize("path", ["@127.0.0.1:{port}/health", "//127.0.0.1:{port}/health", "health"])
def test_a_health_check_path_naming_another_host_is_refused(server: LiteServer, path: str) -> None:
    decoy = ThreadingHTTPServer(("127.0.0.1", 0), _Decoy)
    _Decoy.requests = []
    threading.Thread(target=decoy.serve_forever, daemon=True).start()
    try:
        rendered = path.format(port=decoy.server_address[1])
        definition = MODEL_DEFINITION.replace(
            'start_command: ["python", "{model_path}/server.py", "--port", "8000", "--model", "{model_path}"]',
            'start_command: ["sleep", "60"]',  # a replica that listens on nothing
        ).replace("path: /health", f"path: {json.dumps(rendered)}")
        assert f"path: {json.dumps(rendered)}" in definition
        with client(server, USER_A) as http:
            write_echo_model(server, "elsewhere-model", definition=definition, owner=http)
            body = {
                "name": "elsewhere",
                "image": IMAGE,
                "config": {"model": "elsewhere-model", "scaling_group": "default"},
            }
            answer = http.post("/services", json=body)
            try:
                assert answer.status_code == 400, answer.text
                assert answer.json()["msg"].startswith("elsewhere-model:/model-definition.yaml:10:"), (
                    answer.json()["msg"]
                )
                assert "models[0].service.health_check.path" in answer.json()["msg"]
                assert "must start with '/'" in answer.json()["msg"]
            finally:
                delete_services(http)
        time.sleep(1)
        assert _Decoy.requests == []
    finally:
        decoy.shutdown()
        decoy.server_close()


# -- what reaches the replica, and what comes back ----------------------------------------------------------


def test_the_replica_sees_the_proxy_s_forwarding_headers_and_the_path_as_sent(server: LiteServer) -> None:
    with client(server, USER_A) as http:
        endpoint = start_service(server, http, "inspected", open_to_public=True)
        try:
            spoofed = {
                "X-Forwarded-For": "203.0.113.9",
                "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Proto": "https",
                "Forwarded": "for=203.0.113.9;host=evil.example",
                "X-Real-IP": "203.0.113.9",
                "Authorization": "Bearer not-for-the-replica",
            }
            answer = httpx.get(f"{endpoint}/inspect/a%3Fb%2Fc%20d?x=1&y=%3F", headers=spoofed)
            assert answer.status_code == 200, answer.text
            seen = answer.json()
            assert seen["path"] == "/inspect/a%3Fb%2Fc%20d?x=1&y=%3F"
            headers: dict[str, list[str]] = {}
            for key, value in seen["headers"]:
                headers.setdefault(key.lower(), []).append(value)
            assert not [v for values in headers.values() for v in values if "203.0.113.9" in v or "evil" in v]
            assert "x-real-ip" not in headers and "authorization" not in headers
            lite_host = httpx.URL(server.url).netloc.decode()
            assert headers["x-forwarded-for"] == ["127.0.0.1"]
            assert headers["x-forwarded-host"] == [lite_host]
            assert headers["x-forwarded-proto"] == ["http"]
            assert headers["forwarded"] == [f'for=127.0.0.1;host="{lite_host}";proto=http']
            assert headers["host"] != [lite_host] and headers["host"][0].startswith("127.0.0.1:")
            # one Server and one Date header, the proxy's own
            assert len(answer.headers.get_list("server")) == 1
            assert len(answer.headers.get_list("date")) == 1
            assert "BaseHTTP" not in answer.headers["server"]
        finally:
            delete_services(http)


def test_tokens_are_checked_and_path_tricks_stay_on_the_replica(server: LiteServer) -> None:
    with client(server, USER_A) as http_a, client(server, USER_B) as http_b:
        endpoint = start_service(server, http_a, "guarded")
        other = start_service(server, http_b, "neighbour")
        service_id, other_id = endpoint.rsplit("/", 1)[-1], other.rsplit("/", 1)[-1]
        try:
            token = http_a.post(f"/services/{service_id}/token", json={"duration": 60}).json()["token"]
            other_token = http_b.post(f"/services/{other_id}/token", json={"duration": 60}).json()["token"]
            expiring = http_a.post(
                f"/services/{service_id}/token", json={"valid_until": time.time() + 1}
            ).json()["token"]
            url = f"{endpoint}/inspect"
            time.sleep(1.2)
            for refused in (None, f"Basic {token}", f"BackendAI {other_token}", f"Bearer {expiring}", token):
                headers = {"Authorization": refused} if refused else {}
                assert httpx.get(url, headers=headers).status_code == 401, refused
            answer = httpx.get(url, headers={"Authorization": f"BackendAI {token}"})
            assert answer.status_code == 200
            assert not [h for h in answer.json()["headers"] if h[0].lower() == "authorization"]

            port = next(int(v.split(":")[1]) for k, v in answer.json()["headers"] if k.lower() == "host")
            lite_port = httpx.URL(server.url).port
            auth = {"Authorization": f"Bearer {token}"}
            for trick in (
                f"/@127.0.0.1:{lite_port}/inspect",
                f"//127.0.0.1:{lite_port}/inspect",
                "/%2e%2e/%2e%2e/inspect",
                f"/..%2f..%2f127.0.0.1:{lite_port}/inspect",
            ):
                with socket.create_connection(("127.0.0.1", lite_port)) as raw:
                    target = httpx.URL(endpoint).raw_path.decode() + trick
                    raw.sendall(
                        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{lite_port}\r\n"
                        f"Authorization: {auth['Authorization']}\r\nConnection: close\r\n\r\n".encode()
                    )
                    reply = b""
                    while chunk := raw.recv(65536):
                        reply += chunk
                _, _, body = reply.partition(b"\r\n\r\n")
                # the replica answered (its own 404 or its inspection), on its own port, with the trick as path
                # (http.server makes a leading '//' one '/')
                seen = json.loads(body)
                assert seen.get("error", seen.get("path")) == "/" + trick.lstrip("/"), (trick, reply)
                if "headers" in seen:
                    assert [v for k, v in seen["headers"] if k.lower() == "host"] == [f"127.0.0.1:{port}"]
        finally:
            delete_services(http_a)
            delete_services(http_b)
