"""An idle kept-alive connection stays open longer than a client keeps it for reuse (httpx: 5 s)."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

from airflow_provider_fasttrack.lite.testing import LiteServer


def test_an_idle_connection_is_kept_past_the_clients_expiry(lite_server: LiteServer) -> None:
    """A client reuses a connection idle for up to 5 s; a server that closed it at 5 s made such a request fail
    with a read error now and then (seen as retries under many waiting tasks)."""
    url = urlsplit(lite_server.url)
    assert url.hostname is not None and url.port is not None
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", "/")
        first = conn.getresponse()
        assert first.status == 200 and not first.will_close
        first.read()
        sock = conn.sock
        time.sleep(6)
        conn.request("GET", "/")  # on the same connection: the server has not closed it
        assert conn.sock is sock
        second = conn.getresponse()
        assert second.status == 200
        second.read()
    finally:
        conn.close()
