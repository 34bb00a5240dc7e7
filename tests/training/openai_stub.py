"""A local OpenAI-compatible chat-completions server for judge tests (real HTTP on 127.0.0.1).

It grades like a crude judge: the share of reference words found in the answer, mapped to 1-5. Per-question
behaviours let tests exercise retries and failures: ``garbage`` (never a score), ``garbage-once`` (no score on the
first request only), ``error`` (HTTP 500). With ``reject_structured`` it answers 400 to ``response_format``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def stub_score(answer: str, reference: str) -> int:
    words = set(re.findall(r"[a-z]+", reference.lower()))
    found = set(re.findall(r"[a-z]+", answer.lower()))
    share = len(words & found) / max(1, len(words))
    return 1 + min(4, int(share * 5))


def _section(text: str, title: str) -> str:
    match = re.search(rf"{title}:\n(.*?)(?:\n\n[A-Z][a-z ]+:\n|\Z)", text, re.DOTALL)
    return match.group(1).strip() if match else ""


class OpenAIStub:
    def __init__(self, reject_structured: bool = False) -> None:
        self.reject_structured = reject_structured
        self.behaviour: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.scores: dict[tuple[str, str], int] = {}
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = stub.handle(self.path, dict(self.headers), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> OpenAIStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in headers.items()})
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
        if self.reject_structured and "response_format" in body:
            return 400, {
                "error": {"message": "response_format is not supported", "type": "invalid_request_error"}
            }
        text = body["messages"][-1]["content"].split("\n\nReply with only")[0]  # drop the retry reminder
        question = _section(text, "Question")
        answer = _section(text, "Answer to grade")
        reference = _section(text, "Reference answer")
        with self._lock:
            count = self._seen[question + answer] = self._seen.get(question + answer, 0) + 1
        behaviour = self.behaviour.get(question, "")
        if behaviour == "error":
            return 500, {"error": {"message": "judge overloaded", "type": "server_error"}}
        score = stub_score(answer, reference)
        if behaviour == "garbage" or (behaviour == "garbage-once" and count == 1):
            content = "I cannot decide on this one."
        elif "response_format" in body:
            content = json.dumps({"reasoning": "compared with the reference", "score": score})
        else:
            content = f"The answer covers part of the reference.\nScore: {score}"
        if behaviour not in {"garbage"} and content != "I cannot decide on this one.":
            with self._lock:
                self.scores[(question, answer)] = score
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
