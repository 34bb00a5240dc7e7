"""The e2e deployment is the compose topology: PostgreSQL, four separate Airflow components, a login, GPU pools."""

from __future__ import annotations

import httpx
import psutil

from deploy.local import COMPONENTS


def test_components_are_separate_processes_on_postgresql(airflow_deployment) -> None:  # type: ignore[no-untyped-def]
    conn = (
        airflow_deployment.cli("config", "get-value", "database", "sql_alchemy_conn").strip().splitlines()[-1]
    )
    assert conn.startswith("postgresql+psycopg2://") and f":{airflow_deployment.postgres.port}/" in conn
    pids = {name: process.pid for name, process in airflow_deployment.processes.items()}
    assert sorted(pids) == sorted(COMPONENTS) and len(set(pids.values())) == len(COMPONENTS)
    for name, pid in pids.items():  # each titled by its component ("airflow api_server -- ...")
        title = " ".join(psutil.Process(pid).cmdline()).replace("_", "-")
        assert f"airflow {name}" in title, title
    health = httpx.get(f"{airflow_deployment.url}/api/v2/monitor/health", timeout=30).json()
    assert {
        part: health[part]["status"] for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
    } == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }


def test_admin_login_and_synced_pools(airflow_deployment) -> None:  # type: ignore[no-untyped-def]
    url = airflow_deployment.url
    assert httpx.get(f"{url}/api/v2/pools", timeout=30).status_code == 401
    headers = {"Authorization": f"Bearer {airflow_deployment.login()}"}
    pools = httpx.get(f"{url}/api/v2/pools", headers=headers, timeout=30).json()["pools"]
    by_name = {pool["name"]: pool for pool in pools}
    # `fasttrack pools sync` ran at start: backendai-lite's default group has 10 fGPU, 1 slot = 0.1 fGPU
    assert by_name["backendai-gpu-default"]["include_deferred"] is True
    assert by_name["backendai-gpu-wide-gpu"]["include_deferred"] is True
