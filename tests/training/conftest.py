"""A local OpenAI-compatible chat server (real HTTP on 127.0.0.1) for the LLM extraction tests.

The reply depends on a marker in the prompt: ``[valid]`` a valid ``qa_pairs`` object, ``[fenced]`` the same in
a Markdown code fence, ``[malformed-once]`` broken JSON on the first request then valid, ``[always-500]`` an
HTTP 500 error, ``[always-invalid]`` JSON that does not match the schema, ``[auth-echo]`` an HTTP 401 error
that repeats the key it was sent.

With ``gather = N`` set, the stub holds every request until N requests have been in flight at once (or, if that
never happens, for at most ``GATHER_TIMEOUT_S``, once): extraction that sends N at a time sees ``max_in_flight ==
N``, extraction that sends fewer never does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

GATHER_TIMEOUT_S = 10.0
_MARKER = re.compile(r"\[(valid|fenced|malformed-once|always-500|always-invalid|auth-echo)\]\s*(\w+)")


@dataclass
class StubState:
    """What the stub server saw."""

    calls: Counter[str] = field(default_factory=Counter)
    auth_headers: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    gather: int = 0
    gather_timed_out: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def hold_until_gathered(self) -> None:
        """Wait until ``gather`` requests were in flight together (call with the lock held; waiting releases it)."""
        self.changed.notify_all()
        if self.gather and not self.gather_timed_out:
            gathered = self.changed.wait_for(lambda: self.max_in_flight >= self.gather, GATHER_TIMEOUT_S)
            self.gather_timed_out = not gathered


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "stub",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _valid(tag: str) -> str:
    return json.dumps(
        {
            "qa_pairs": [
                {"question": f"What does chunk {tag} say?", "answer": f"Chunk {tag} explains a trade fact."},
                {
                    "question": f"Which list answer does chunk {tag} give?",
                    "answer": [f"First {tag}", "Second"],
                },
            ]
        }
    )


def _make_handler(state: StubState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = request["messages"][-1]["content"]
            match = _MARKER.search(prompt)
            kind, tag = (match.group(1), match.group(2)) if match else ("valid", "untagged")
            with state.lock:
                state.calls[tag] += 1
                calls = state.calls[tag]
                state.auth_headers.append(self.headers.get("Authorization", ""))
                state.models.append(request.get("model", ""))
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                state.hold_until_gathered()
            try:
                time.sleep(0.02)  # lets concurrent requests overlap
                if kind == "auth-echo":
                    key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    self._send(
                        401, {"error": {"message": f"Incorrect API key provided: {key}", "type": "auth"}}
                    )
                elif kind == "always-500":
                    self._send(500, {"error": {"message": "stub server error", "type": "server_error"}})
                elif kind == "always-invalid":
                    self._send(200, _completion(json.dumps({"qa_pairs": []})))
                elif kind == "malformed-once" and calls == 1:
                    self._send(200, _completion('{"qa_pairs": [{"question": "broken", '))
                elif kind == "fenced":
                    self._send(200, _completion(f"```json\n{_valid(tag)}\n```"))
                else:
                    self._send(200, _completion(_valid(tag)))
            finally:
                with state.lock:
                    state.in_flight -= 1

    return Handler


@dataclass
class StubServer:
    base_url: str
    state: StubState


@pytest.fixture
def openai_stub() -> Iterator[StubServer]:
    """A running stub server; ``base_url`` ends in ``/v1`` like a real OpenAI-compatible endpoint."""
    state = StubState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield StubServer(f"http://127.0.0.1:{server.server_address[1]}/v1", state)
    finally:
        server.shutdown()
        server.server_close()
