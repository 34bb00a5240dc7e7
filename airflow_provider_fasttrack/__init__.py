"""Run Backend.AI FastTrack pipelines on Apache Airflow."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_fasttrack.hooks.connection import CONNECTION_TYPE_INFO
    from airflow_provider_fasttrack.session_log import DEFAULT_LOG_INTERVAL, LOG_INTERVAL_OPTION
    from airflow_provider_fasttrack.settings import (
        CONFIG_SECTION,
        DEFAULT_RECHECK_SECONDS,
        DEFAULT_RESUME_GRACE_SECONDS,
        RECHECK_INTERVAL_OPTION,
        RESUME_GRACE_OPTION,
        SESSION_EVENTS_MODES,
        SESSION_EVENTS_OPTION,
    )

    return {
        "package-name": "airflow-provider-fasttrack",
        "name": "Backend.AI FastTrack",
        "description": "Run Backend.AI FastTrack pipelines and compute sessions from Apache Airflow.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Backend.AI",
                "external-doc-url": "https://docs.backend.ai/",
                "tags": ["compute"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Backend.AI",
                "python-modules": ["airflow_provider_fasttrack.hooks.backendai"],
            }
        ],
        "operators": [
            {
                "integration-name": "Backend.AI",
                "python-modules": ["airflow_provider_fasttrack.operators.session"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Backend.AI",
                "python-modules": ["airflow_provider_fasttrack.triggers.session"],
            }
        ],
        "connection-types": [CONNECTION_TYPE_INFO],
        "extra-links": [
            "airflow_provider_fasttrack.links.BackendAISessionLink",
            "airflow_provider_fasttrack.links.FastTrackRunLink",
        ],
        "config": {
            CONFIG_SECTION: {
                "description": "Backend.AI FastTrack provider settings.",
                "options": {
                    LOG_INTERVAL_OPTION: {
                        "description": "Seconds between fetches of a deferred session's log into the task "
                        "log (each line is written once); 0: only when the session ends. An operator's "
                        "log_interval argument overrides it.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "30",
                        "default": f"{DEFAULT_LOG_INTERVAL:g}",
                    },
                    RESUME_GRACE_OPTION: {
                        "description": "Least seconds between a session task's deferral and its resumption, "
                        "so that the scheduler records the deferring worker's exit first (Airflow 3.3 fails "
                        "the task otherwise). A deferrable session task first waits as long in the worker: "
                        "a session that ends by then finishes there, without a deferral. 0 where no "
                        "scheduler runs (dag.test(), airflow dags test).",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "10",
                        "default": f"{DEFAULT_RESUME_GRACE_SECONDS:g}",
                    },
                    SESSION_EVENTS_OPTION: {
                        "description": "How waiting session tasks learn that their session ended. shared: "
                        "one event stream per triggerer process and connection for all of them, and a state "
                        "read on their session's events, after the stream (re)opened and every "
                        "recheck_interval. per_task: a stream per task and a state read every poll_interval.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "per_task",
                        "default": SESSION_EVENTS_MODES[0],
                    },
                    RECHECK_INTERVAL_OPTION: {
                        "description": "With session_events = shared: seconds (±20 %) between state reads of "
                        "a waiting session task when no event of its session came.",
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "120",
                        "default": f"{DEFAULT_RECHECK_SECONDS:g}",
                    },
                },
            }
        },
    }
