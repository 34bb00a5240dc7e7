"""The ``backendai`` Airflow connection type: its form fields and how a Connection maps to settings."""

from __future__ import annotations

from typing import Any

__all__ = ["CONNECTION_TYPE", "CONNECTION_TYPE_INFO", "DEFAULT_CONN_ID"]

CONNECTION_TYPE = "backendai"
DEFAULT_CONN_ID = "backendai_default"

CONNECTION_TYPE_INFO: dict[str, Any] = {
    "connection-type": CONNECTION_TYPE,
    "hook-class-name": "airflow_provider_fasttrack.hooks.backendai.BackendAIHook",
    "hook-name": "Backend.AI",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port"],
        "relabeling": {
            "host": "Endpoint",
            "login": "Access key",
            "password": "Secret key",
        },
        "placeholders": {
            "host": "https://api.backend.ai",
            "login": "AKIAIOSFODNN7EXAMPLE",
            "api_version": "v9.20250722",
            "project": "default",
            "domain": "default",
            "scaling_group": "default",
            "webui_url": "https://cloud.backend.ai",
        },
    },
    "conn-fields": {
        "api_version": {
            "label": "API version",
            "description": "Optional. Pin an API version; by default the newest the manager and client share.",
            "schema": {"type": ["string", "null"]},
        },
        "project": {
            "label": "Default project",
            "description": "Optional. Project (group) for new sessions; a task's own `project` wins.",
            "schema": {"type": ["string", "null"]},
        },
        "domain": {
            "label": "Default domain",
            "description": "Optional. Domain for new sessions.",
            "schema": {"type": ["string", "null"]},
        },
        "scaling_group": {
            "label": "Default scaling group",
            "description": "Optional. Resource group for new sessions.",
            "schema": {"type": ["string", "null"]},
        },
        "webui_url": {
            "label": "Web UI URL",
            "description": "Optional. Base URL of the Backend.AI web UI, for the 'Backend.AI session' link.",
            "schema": {"type": ["string", "null"]},
        },
        "verify_tls": {
            "label": "Verify TLS",
            "description": "Verify the manager's TLS certificate (default true).",
            "schema": {"type": ["boolean", "null"]},
        },
    },
}
