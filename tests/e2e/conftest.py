"""The deployment the e2e tests run against: PostgreSQL and Airflow's four components as separate processes.

``deploy.local.LocalDeployment`` is the topology of ``docker-compose.yaml`` without Docker, with the same
settings (``deploy/airflow.env``); ``scripts/serve`` runs the same code.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy.local import LocalDeployment, running
from tests.conftest import ROOT
from tests.helpers import LOG_FILES, SECRETS, connection_env


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
    with deployment:
        yield deployment
        processes = deployment.pids()
    assert not running(processes), f"processes of the deployment left after it stopped: {running(processes)}"
