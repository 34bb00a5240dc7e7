"""The "Backend.AI session" extra link on tasks that run as sessions."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

__all__ = ["SESSION_URL_XCOM_KEY", "BackendAISessionLink"]

SESSION_URL_XCOM_KEY = "backendai_session_url"


class BackendAISessionLink(BaseOperatorLink):
    """Opens the session's page in the Backend.AI web UI.

    The web UI reads the link from XCom (``xcom_key``): the operator pushes it as soon as the session is
    created, and the Task SDK pushes :meth:`get_link` again when the task finishes or defers. ``get_link``
    runs in the worker and answers from the operator itself, which knows its session, rather than reading
    XCom: before a session exists (a skipped task) there is nothing to read, and a read of a missing XCom is
    logged as an error in the task log.
    """

    name = "Backend.AI session"
    xcom_key = SESSION_URL_XCOM_KEY

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return str(getattr(operator, "session_url", None) or "")
