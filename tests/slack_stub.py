"""A local server that speaks Slack's incoming-webhook protocol, for the notification tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_PATH = "/services/T0001/B0001/secret-token"


class SlackWebhookStub(BaseHTTPRequestHandler):
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
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@contextmanager
def slack_webhook_stub() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A running stub: ``(webhook URL, messages received so far)``."""
    SlackWebhookStub.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlackWebhookStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{WEBHOOK_PATH}", SlackWebhookStub.received
    finally:
        server.shutdown()
        server.server_close()
