"""The FastTrack view in the Airflow UI: a DAG run's session usage, their timeline and the run's artifacts.

Airflow loads :class:`FastTrackPlugin` through the ``airflow.plugins`` entry point; its FastAPI app is mounted by
the api-server under ``/fasttrack`` and shown as the "FastTrack" tab of every DAG run.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_fasttrack.links import RUN_VIEW_ROUTE

__all__ = ["URL_PREFIX", "FastTrackPlugin"]

URL_PREFIX = "/fasttrack"


def _fastapi_app() -> dict[str, Any]:
    from airflow_provider_fasttrack.ui.app import app

    return {"app": app, "url_prefix": URL_PREFIX, "name": "FastTrack view"}


class FastTrackPlugin(AirflowPlugin):
    """The view's FastAPI app and its tab on the DAG run page."""

    name = "fasttrack"
    fastapi_apps = [_fastapi_app()]
    external_views = [
        {
            "name": "FastTrack",
            "href": f"{URL_PREFIX}/dags/{{DAG_ID}}/runs/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": RUN_VIEW_ROUTE,
        }
    ]
