"""An idle kept-alive connection stays open longer than a client keeps it for reuse (httpx: 5 s)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from airflow_provider_fasttrack.lite.testing import LiteServer


def _get_root(conn: socket.socket, host: str) -> bytes:
    conn.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode())
    return conn.recv(65536)


def test_an_idle_connection_is_kept_past_the_clients_expiry(lite_server: LiteServer) -> None:
    """A client reuses a connection idle for up to 5 s; a server that closed it at 5 s made such a request fail
    with a read error now and then (seen as retries under many waiting tasks)."""
    url = urlsplit(lite_server.url)
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        assert _get_root(conn, url.netloc).startswith(b"HTTP/1.1 200")
        time.sleep(6)
        assert _get_root(conn, url.netloc).startswith(b"HTTP/1.1 200")
