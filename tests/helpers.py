"""Helpers shared by the tests: a backendai connection for a running backendai-lite."""

from __future__ import annotations

import json
from typing import Any


def connection_env(lite: Any, **overrides: Any) -> str:
    """The JSON form of ``AIRFLOW_CONN_<ID>`` for a running ``LiteServer``."""
    extra = {"project": "default", "webui_url": f"{lite.url}/webui", **overrides.pop("extra", {})}
    conn = {
        "conn_type": "backendai",
        "host": lite.url,
        "login": overrides.pop("access_key", lite.access_key),
        "password": overrides.pop("secret_key", lite.secret_key),
        "extra": extra,
    }
    conn.update(overrides)
    return json.dumps(conn)
