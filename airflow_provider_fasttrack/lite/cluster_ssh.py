"""SSH between the kernels of a multi-node session: ``ssh sub1 "command"`` runs the command in kernel ``sub1``.

On a Backend.AI cluster every kernel of a multi-node session runs an SSH server and reaches the others by their
hostnames (``main1``, ``sub1``, ...); a batch command runs on the main kernel and starts work on the sub kernels
with ``ssh``. backendai-lite gives each kernel of such a session the same two ends:

- ``backendai-lite-sshd`` runs in every kernel (started before its command) and listens on a Unix socket named
  after the kernel's hostname in the session's socket directory: a private directory the server makes for each
  cluster session under the host's ``/tmp`` and binds into that session's kernels only, so the kernels of other
  sessions (whose ``/tmp`` is their own) can neither reach nor replace it. For each connection it runs the
  requested command with ``/bin/bash -c`` in that kernel: its environment, its filesystem (mount namespace,
  chroot) and its process tree (PID namespace), starting in ``/home/work`` as a login over SSH would.
- ``ssh`` (first on the kernel's ``PATH``) connects to the named kernel's server, forwards its standard input,
  prints the command's output and exits with the command's exit status: 255 when it cannot connect, 128+N when the
  command was killed by signal N. Closing the connection (the client is killed) ends the remote command.

Only a peer with the server's own user id is served. The file is stdlib-only and runs as a script with the
server's interpreter (``python -I -S``), so it never depends on what a session's image has installed; the socket
directory is written into its wrappers, not taken from the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

#: the executables backendai-lite puts on a cluster kernel's PATH
CLIENT_NAME = "ssh"
SERVER_NAME = "backendai-lite-sshd"
#: how long the client keeps trying while the named kernel's server is not up yet
CONNECT_TIMEOUT_S = 60.0
#: SIGTERM -> SIGKILL delay for a remote command whose client went away
KILL_GRACE_S = 2.0
#: ssh options that take an argument (accepted and ignored, except ``-l``)
_OPTIONS_WITH_VALUE = frozenset("bcDEeFIiJLlmOopQRSWw")
#: ssh flags without an argument (accepted and ignored)
_FLAGS = frozenset("46AaCfGgKkMNnqsTtVvXxYy")

_HEADER = struct.Struct("!cI")
STDIN, STDOUT, STDERR, EXIT = b"i", b"o", b"e", b"x"


#: the longest path a Unix socket can be bound at (``sun_path`` less its NUL), and the room kept for a hostname
MAX_SOCKET_PATH = 107
_HOSTNAME_ROOM = 16


def socket_path(socket_dir: str, hostname: str) -> str:
    """The socket a kernel's server listens on: its hostname in the session's socket directory."""
    return os.path.join(socket_dir, hostname)


def install(tools_dir: Path, socket_dir: Path, interpreter: str = sys.executable) -> None:
    """Write ``ssh`` and ``backendai-lite-sshd`` (and a copy of this file) into ``tools_dir``.

    Both wrappers carry ``socket_dir``, the directory of the session's sockets.
    """
    if len(os.fsencode(str(socket_dir))) + 1 + _HOSTNAME_ROOM > MAX_SOCKET_PATH:
        raise ValueError(f"the cluster socket directory {socket_dir} is too long a path for a Unix socket")
    tools_dir.mkdir(parents=True, exist_ok=True)
    script = tools_dir / "backendai_lite_ssh.py"
    script.write_text(Path(__file__).read_text(encoding="utf-8"), encoding="utf-8")
    for name, mode in ((CLIENT_NAME, "client"), (SERVER_NAME, "server")):
        wrapper = tools_dir / name
        command = f"{_quote(interpreter)} -I -S {_quote(str(script))} {mode} {_quote(str(socket_dir))}"
        wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# framing
def _send(sock: socket.socket, lock: threading.Lock, kind: bytes, payload: bytes = b"") -> None:
    with lock:
        sock.sendall(_HEADER.pack(kind, len(payload)) + payload)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _recv_frame(sock: socket.socket) -> tuple[bytes, bytes] | None:
    header = _recv_exact(sock, _HEADER.size)
    if header is None:
        return None
    kind, size = _HEADER.unpack(header)
    payload = _recv_exact(sock, size) if size else b""
    return None if payload is None else (kind, payload)


# client
def parse_client_args(argv: list[str]) -> tuple[str, str, bool]:
    """``(host, command, forward_stdin)`` from an ssh command line (``-n``: no stdin); raises ``ValueError``."""
    index = 0
    forward_stdin = True
    while index < len(argv) and argv[index].startswith("-") and argv[index] != "-":
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        letters = arg[1:]
        for position, letter in enumerate(letters):
            if letter in _OPTIONS_WITH_VALUE:
                if position == len(letters) - 1:
                    index += 1  # the value is the next argument
                    if index >= len(argv):
                        raise ValueError(f"option requires an argument -- {letter}")
                break
            if letter not in _FLAGS:
                raise ValueError(f"unknown option -- {letter}")
            if letter == "n":
                forward_stdin = False
        index += 1
    if index >= len(argv):
        raise ValueError("usage: ssh [options] host command")
    host = argv[index].rsplit("@", 1)[-1]
    command = " ".join(argv[index + 1 :])
    if not command:
        raise ValueError("backendai-lite runs commands only; give one: ssh HOST COMMAND")
    return host, command, forward_stdin


def _connect(address: str, deadline: float) -> socket.socket:
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


def client(socket_dir: str, argv: list[str]) -> int:
    """The ``ssh`` command of a cluster kernel."""
    try:
        host, command, forward_stdin = parse_client_args(argv)
    except ValueError as exc:
        print(f"ssh: {exc}", file=sys.stderr)
        return 255
    hosts = [h for h in os.environ.get("BACKENDAI_CLUSTER_HOSTS", "").split(",") if h]
    if host not in hosts or "/" in host:
        print(f"ssh: Could not resolve hostname {host}: not a kernel of this session", file=sys.stderr)
        return 255
    try:
        sock = _connect(socket_path(socket_dir, host), time.monotonic() + CONNECT_TIMEOUT_S)
    except OSError as exc:
        print(f"ssh: connect to host {host}: {exc.strerror or exc}", file=sys.stderr)
        return 255
    lock = threading.Lock()
    _send(sock, lock, b"h", json.dumps({"command": command, "stdin": forward_stdin}).encode())
    if forward_stdin:
        threading.Thread(target=_pump_stdin, args=(sock, lock), daemon=True).start()
    outputs = {STDOUT: sys.stdout.buffer, STDERR: sys.stderr.buffer}
    while True:
        frame = _recv_frame(sock)
        if frame is None:
            print(f"ssh: connection to {host} closed", file=sys.stderr)
            return 255
        kind, payload = frame
        if kind == EXIT:
            sock.close()
            return int(struct.unpack("!i", payload)[0])
        out = outputs.get(kind)
        if out is not None:
            out.write(payload)
            out.flush()


def _pump_stdin(sock: socket.socket, lock: threading.Lock) -> None:
    try:
        while True:
            data = os.read(0, 65536)
            _send(sock, lock, STDIN, data)
            if not data:
                return
    except OSError:
        return


# server
class _Server:
    def __init__(self) -> None:
        self.children: set[subprocess.Popen[bytes]] = set()
        self.lock = threading.Lock()

    def kill_all(self, sig: int) -> None:
        with self.lock:
            for child in list(self.children):
                _kill_group(child, sig)

    def handle(self, conn: socket.socket) -> None:
        try:
            with contextlib.suppress(OSError):
                self._serve(conn)
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes the thread still reading from the client
            conn.close()

    def _serve(self, conn: socket.socket) -> None:
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid != os.geteuid():
            return
        frame = _recv_frame(conn)
        if frame is None or frame[0] != b"h":
            return
        request = json.loads(frame[1])
        home = os.environ.get("HOME", "/")
        child = subprocess.Popen(
            ["/bin/bash", "-c", str(request["command"])],
            cwd=home if os.path.isdir(home) else "/",
            stdin=subprocess.PIPE if request.get("stdin") else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own group: ended as a whole when the client goes away
        )
        with self.lock:
            self.children.add(child)
        send_lock = threading.Lock()
        pumps = [
            threading.Thread(target=_pump_output, args=(stream, conn, send_lock, kind), daemon=True)
            for stream, kind in ((child.stdout, STDOUT), (child.stderr, STDERR))
        ]
        for pump in pumps:
            pump.start()
        threading.Thread(target=self._watch_client, args=(conn, child), daemon=True).start()
        code = child.wait()
        for pump in pumps:
            pump.join()
        with self.lock:
            self.children.discard(child)
        status = code if code >= 0 else 128 - code
        _send(conn, send_lock, EXIT, struct.pack("!i", status))

    @staticmethod
    def _watch_client(conn: socket.socket, child: subprocess.Popen[bytes]) -> None:
        """Feed the command's stdin; when the client goes away, end the command's process group."""
        stdin = child.stdin
        while True:
            try:
                frame = _recv_frame(conn)
            except OSError:
                break
            if frame is None:
                break
            if frame[0] != STDIN or stdin is None:
                continue
            try:
                if frame[1]:
                    stdin.write(frame[1])
                    stdin.flush()
                else:
                    stdin.close()
                    stdin = None
            except OSError:  # the command closed its input: drop the rest
                stdin = None
        if child.poll() is None:
            _kill_group(child, signal.SIGTERM)
            try:
                child.wait(KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_group(child, signal.SIGKILL)


def _pump_output(stream: IO[bytes] | None, conn: socket.socket, lock: threading.Lock, kind: bytes) -> None:
    if stream is None:
        return
    try:
        while True:
            data = os.read(stream.fileno(), 65536)
            if not data:
                return
            _send(conn, lock, kind, data)
    except OSError:
        return


def _kill_group(child: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def server(socket_dir: str) -> int:
    """The SSH server of one kernel: serve until killed; SIGTERM also ends the commands it started."""
    host = os.environ.get("BACKENDAI_CLUSTER_HOST", "")
    if not host or "/" in host:
        print(f"{SERVER_NAME}: not in a cluster kernel", file=sys.stderr)
        return 2
    state = _Server()

    def stop(signum: int, frame: object) -> None:
        state.kill_all(signal.SIGTERM)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path = socket_path(socket_dir, host)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by an earlier server of this kernel
    listener.bind(path)
    listener.listen(64)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=state.handle, args=(conn,), daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "server":
        return server(argv[1])
    if len(argv) >= 2 and argv[0] == "client":
        return client(argv[1], argv[2:])
    print("usage: backendai_lite_ssh.py {client|server} SOCKET_DIR ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
