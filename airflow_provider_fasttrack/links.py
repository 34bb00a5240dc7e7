"""The "Backend.AI session" extra link on tasks that run as sessions."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

__all__ = ["SESSION_URL_XCOM_KEY", "BackendAISessionLink"]

SESSION_URL_XCOM_KEY = "backendai_session_url"


class BackendAISessionLink(BaseOperatorLink):
    """Opens the session's page in the Backend.AI web UI (pushed to XCom as soon as the session is created)."""

    name = "Backend.AI session"
    xcom_key = SESSION_URL_XCOM_KEY

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        url = XCom.get_value(key=self.xcom_key, ti_key=ti_key)
        return str(url) if url else ""
