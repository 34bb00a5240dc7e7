"""Task logs in a real deployment: session lines reach the log while the task is deferred, each line once, and a
successful task logs nothing at error level."""

from __future__ import annotations

import json

from airflow_provider_fasttrack.naming import session_name
from tests.dags.session_dags import PLAIN_CONN_ID
from tests.e2e.airflow_api import AirflowApi, error_lines, events
from tests.helpers import connection_env, lite_sessions, wait_for

DAG_ID = "op_live_log"
SESSION_LINES = ("live line one", "live line two")


def session_lines(log: list[dict]) -> list[str]:  # type: ignore[type-arg]
    """The session's own lines as the task log shows them (``[<session name>] <line>``)."""
    return [event.split("] ", 1)[1] for event in events(log) if event.startswith("[ft-") and "] " in event]


def test_lines_reach_the_log_while_deferred_once_each(airflow_deployment, lite, hook) -> None:  # type: ignore[no-untyped-def]
    conn = json.loads(connection_env(lite))
    del conn["extra"]["webui_url"]  # as the README's example connection: no web UI page to link
    airflow_deployment.cli("connections", "add", PLAIN_CONN_ID, "--conn-json", json.dumps(conn))
    hook.ensure_vfolder("gates")
    api = AirflowApi(airflow_deployment)
    api.wait_parsed(DAG_ID)
    api.unpause(DAG_ID)
    run_id = api.trigger(DAG_ID)

    def seen_while_deferred() -> list[str] | None:
        if api.task_instance(DAG_ID, run_id, "live")["state"] != "deferred":
            return None
        lines = session_lines(api.task_log(DAG_ID, run_id, "live"))
        return lines if all(line in lines for line in SESSION_LINES) else None

    assert wait_for(seen_while_deferred, timeout=120, interval=1) == list(SESSION_LINES)
    # the session is still running: it waits at the gate
    (session,) = lite_sessions(lite, name=session_name(DAG_ID, run_id, "live"))
    assert session["status"] == "RUNNING"

    hook.upload_file("gates", "live-log-gate", b"")
    assert api.wait_run(DAG_ID, run_id)["state"] == "success"
    log = api.task_log(DAG_ID, run_id, "live")
    assert session_lines(log) == [*SESSION_LINES, "after the gate"]  # each line once, in order
    assert {entry.get("level") for entry in log} >= {"info"}  # levels are there to be read
    assert error_lines(log) == []
    assert api.links(DAG_ID, run_id, "live")["Backend.AI session"] is None  # no web UI: no link
