"""Local servers that speak Slack's incoming-webhook protocol and its Web API, for the notification tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_PATH = "/services/T0001/B0001/secret-token"


class _QuietHandler(BaseHTTPRequestHandler):
    """A request handler that writes whole answers and keeps the test output free of access logs."""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


class SlackWebhookStub(_QuietHandler):
    """Slack incoming webhooks: POST JSON with ``text``; answers 200 ``ok``, or 400/404 like Slack does."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != WEBHOOK_PATH:
            self._answer(404, b"no_service")
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._answer(400, b"invalid_payload")
            return
        if not payload.get("text") and not payload.get("blocks"):
            self._answer(400, b"no_text")
            return
        type(self).received.append(payload)
        self._answer(200, b"ok")

    def _answer(self, status: int, body: bytes) -> None:
        self._send(status, body, "text/html")


@contextmanager
def slack_webhook_stub() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A running stub: ``(webhook URL, messages received so far)``."""
    with _serving(SlackWebhookStub) as base:
        yield f"{base}{WEBHOOK_PATH}", SlackWebhookStub.received


@contextmanager
def _serving(handler: Any) -> Iterator[str]:
    """``handler`` on a free loopback port in a thread, with an empty ``received`` list: yields its base URL."""
    handler.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


BOT_TOKEN = "xoxb-0001-test-bot-token"


class SlackWebApiStub(_QuietHandler):
    """Slack's Web API method ``chat.postMessage``: a bearer bot token and JSON with ``channel`` and ``text``.

    Answers as Slack does: HTTP 200 with ``{"ok": true, ...}``, or ``{"ok": false, "error": ...}``.
    """

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/api/chat.postMessage":
            self._answer({"ok": False, "error": "unknown_method"}, status=404)
            return
        if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            self._answer({"ok": False, "error": "invalid_auth"})
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._answer({"ok": False, "error": "invalid_json"})
            return
        if not payload.get("channel"):
            self._answer({"ok": False, "error": "channel_not_found"})
            return
        if not payload.get("text") and not payload.get("blocks"):
            self._answer({"ok": False, "error": "no_text"})
            return
        type(self).received.append(payload)
        self._answer({"ok": True, "channel": "C0001", "ts": f"{len(type(self).received)}.000100"})

    def _answer(self, answer: dict[str, Any], status: int = 200) -> None:
        self._send(status, json.dumps(answer).encode(), "application/json; charset=utf-8")


@contextmanager
def slack_web_api_stub() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A running Web API stub: ``(base URL for slack_sdk, messages received so far)``."""
    with _serving(SlackWebApiStub) as base:
        yield f"{base}/api/", SlackWebApiStub.received
