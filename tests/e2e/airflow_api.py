"""The deployment's REST API (``/api/v2``) as the web UI uses it: a token from the login, runs, task logs, links."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.helpers import wait_for

ERROR_LEVELS = frozenset({"error", "critical", "fatal", "exception"})


def base_url(deployment: Any) -> str:
    """Where the deployment's API server (and web UI) listens."""
    return str(deployment.url).rstrip("/")


def credentials(deployment: Any) -> tuple[str, str]:
    """The admin login of the deployment's UI."""
    return str(deployment.username), str(deployment.password)


def sign_in(page: Any, deployment: Any) -> str:
    """Log ``page`` (a Playwright page) in through the web UI's login form; returns the UI's base URL."""
    from playwright.sync_api import expect

    url = base_url(deployment)
    user, password = credentials(deployment)
    page.goto(url)
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Dags", exact=True)).to_be_visible()
    return url


class AirflowApi:
    """A logged-in client of ``/api/v2``."""

    def __init__(self, deployment: Any) -> None:
        self.url = base_url(deployment)
        user, password = credentials(deployment)
        token = httpx.post(
            f"{self.url}/auth/token", json={"username": user, "password": password}, timeout=30
        )
        token.raise_for_status()
        self.http = httpx.Client(
            base_url=f"{self.url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}", "Accept": "application/json"},
            timeout=30,
        )

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def wait_parsed(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        def parsed() -> dict[str, Any] | None:
            response = self.http.get(f"/dags/{dag_id}")
            return dict(response.json()) if response.status_code == 200 else None

        return dict(wait_for(parsed, timeout=timeout, interval=2))

    def unpause(self, dag_id: str) -> None:
        self.http.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Start a run now; returns its run id."""
        response = self.http.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", order_by="logical_date")["dag_runs"])

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        """The run once it has ended."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in {"success", "failed"}:
                return dict(run)
            assert time.monotonic() < deadline, f"{dag_id} {run_id} still {run['state']}"
            time.sleep(2)

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[dict[str, Any]]:
        """The task log as the UI shows it: one entry per line (``event``, ``level``, ...)."""
        answer = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}", full_content=True
        )
        content = answer["content"]
        if isinstance(content, str):  # plain text (a log that is not structured)
            return [{"event": line} for line in content.splitlines()]
        return [entry if isinstance(entry, dict) else {"event": str(entry)} for entry in content]

    def links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")["extra_links"])


def events(log: list[dict[str, Any]]) -> list[str]:
    return [str(entry.get("event", "")) for entry in log]


def error_lines(log: list[dict[str, Any]]) -> list[str]:
    """Lines of error level or worse."""
    return [
        f"{entry.get('level')}: {entry.get('event')}"
        for entry in log
        if str(entry.get("level", "")).lower() in ERROR_LEVELS
    ]
