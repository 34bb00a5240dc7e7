"""The deployment the e2e tests run against: PostgreSQL and Airflow's four components as separate processes.

``deploy.local.LocalDeployment`` is the topology of ``docker-compose.yaml`` without Docker, with the same
settings (``deploy/airflow.env``); ``scripts/serve`` runs the same code.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local import LocalDeployment, running
from tests.conftest import ROOT
from tests.helpers import LOG_FILES, SECRETS, connection_env

#: the deployment while it runs: stopped after the last e2e test (``pytest_runtest_teardown``)
RUNNING: list[LocalDeployment] = []


@pytest.hookimpl(trylast=True)  # after the test's own fixtures are torn down
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the deployment after the last e2e test rather than at the end of the whole test session: its scheduler
    and dag-processor would keep working beside the tests that follow. (A directory without ``__init__.py`` has
    no package scope.)"""
    if RUNNING and (nextitem is None or nextitem.path.parent != item.path.parent):
        stop(RUNNING.pop())


def stop(deployment: LocalDeployment) -> None:
    """Stop the deployment; nothing it started may be left running."""
    processes = deployment.pids()
    deployment.stop()
    assert not running(processes), f"processes of the deployment left after it stopped: {running(processes)}"


@pytest.fixture(scope="session")
def airflow_deployment(lite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:  # type: ignore[no-untyped-def]
    """One deployment for every e2e test, on the DAGs of ``tests/dags`` and the session's backendai-lite.

    It has ``home`` (AIRFLOW_HOME; task logs in ``home / "logs"``), ``env``, ``url``, ``username`` and
    ``password`` (the UI's login), ``cli()``, ``cli_json()``, ``run_dag()``, ``log_tail()``, ``login()`` and
    ``pids()``.
    """
    deployment = LocalDeployment(
        tmp_path_factory.mktemp("airflow-deployment"),
        dags_folder=ROOT / "tests" / "dags",
        connection=connection_env(lite),
    )
    SECRETS.update([deployment.password, deployment.postgres.password, *deployment.secrets.values()])
    LOG_FILES.extend(deployment.log_files())
    deployment.start()
    RUNNING.append(deployment)
    try:
        yield deployment
    finally:
        if deployment in RUNNING:  # the e2e tests ended early
            RUNNING.remove(deployment)
            stop(deployment)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("FASTTRACK_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def page(airflow_deployment: Any) -> Iterator[Any]:
    """A Chromium page of the deployment's web UI (log it in with ``airflow_api.sign_in``)."""
    playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright is a test requirement (setup.cfg)"
    )
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing (scripts/bootstrap installs it)"
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(60_000)
            # the UI loads its translations and data after the page: on a loaded machine that takes over 5 s,
            # the assertions' default
            playwright.expect.set_options(timeout=30_000)
            yield page
        finally:
            browser.close()
