"""The extra links of tasks that run as sessions: the session in the Backend.AI web UI, the run's FastTrack view."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

__all__ = [
    "RUN_VIEW_ROUTE",
    "SESSION_URL_XCOM_KEY",
    "BackendAISessionLink",
    "FastTrackRunLink",
    "run_view_url",
]

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


#: the FastTrack view's ``url_route`` in the Airflow UI (a tab of each DAG run)
RUN_VIEW_ROUTE = "fasttrack"


def run_view_url(dag_id: str, run_id: str) -> str:
    """The DAG run's FastTrack tab in the Airflow UI (relative to the UI unless ``[api] base_url`` is set)."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/plugin/{RUN_VIEW_ROUTE}"


class FastTrackRunLink(BaseOperatorLink):
    """Opens the FastTrack view of the task's DAG run: usage, timeline and artifacts."""

    name = "FastTrack run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return run_view_url(ti_key.dag_id, ti_key.run_id)
