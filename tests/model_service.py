"""A tiny model folder for model-service tests: an OpenAI-compatible chat server on the standard library.

``server.py`` answers ``GET /health`` and ``POST /v1/chat/completions`` with the folder's ``greeting.txt``
followed by the question, so an answer proves it came from this folder's server. ``GET /hold/<seconds>`` answers
after that long; ``GET /inspect...`` answers the request target and the headers as the server received them.
"""

from __future__ import annotations

import contextlib
from typing import Any

ECHO_SERVER = """\
import argparse, json, pathlib, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--model", required=True)
args = parser.parse_args()
greeting = (pathlib.Path(args.model) / "greeting.txt").read_text().strip()


class Handler(BaseHTTPRequestHandler):
    def _send(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            return self._send(200, {"status": "ok"})
        if self.path.startswith("/hold/"):
            time.sleep(float(self.path.rsplit("/", 1)[1]))
            return self._send(200, {"held": True})
        if self.path.startswith("/inspect"):
            return self._send(200, {"path": self.path, "headers": [list(h) for h in self.headers.items()]})
        self._send(404, {"error": self.path})

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            return self._send(404, {"error": self.path})
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        question = request["messages"][-1]["content"]
        message = {"role": "assistant", "content": f"{greeting} {question}"}
        self._send(200, {"object": "chat.completion", "model": request.get("model"),
                         "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]})

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # many concurrent callers are accepted, none refused


Server(("127.0.0.1", args.port), Handler).serve_forever()
"""

MODEL_DEFINITION = """\
models:
  - name: echo
    model_path: /models
    service:
      pre_start_actions:
        - action: run_command
          args: {command: ["test", "-f", "{model_path}/greeting.txt"]}
      start_command: ["python", "{model_path}/server.py", "--port", "8000", "--model", "{model_path}"]
      port: 8000
      health_check: {path: /health, interval: 0.2, initial_delay: 0, max_retries: 150, max_wait_time: 5}
"""


def write_echo_model(
    lite: Any,
    vfolder: str,
    *,
    greeting: str = "Echo:",
    definition: str | None = MODEL_DEFINITION,
    owner: Any = None,
) -> None:
    """Create ``vfolder`` on ``lite`` (if missing, model-type) holding the echo server and its model definition.

    The folder is created through the API, retried past injected faults (a fault server's 5xx and 429), by
    ``owner`` (a signed client of another keypair) or else by the server's first keypair.
    """
    with contextlib.nullcontext(owner) if owner is not None else lite.client() as http:
        for _ in range(30):
            answer = http.post("/folders", json={"name": vfolder, "usage_mode": "model"})
            if answer.status_code < 429:  # 201 created, 400 exists already
                break
    folder = lite.vfolder_path(vfolder, owner.auth.access_key if owner is not None else None)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "server.py").write_text(ECHO_SERVER)
    (folder / "greeting.txt").write_text(greeting + "\n")
    definition_file = folder / "model-definition.yaml"
    if definition is None:
        definition_file.unlink(missing_ok=True)
    else:
        definition_file.write_text(definition)
