"""docker-compose.yaml and the Dockerfile: Compose's own parser accepts them, and they run what the tests run.

The compose file must read the same Airflow settings (deploy/airflow.env) as the local deployment the e2e tests
use, set only the per-deployment values that the local deployment also sets, and build an image whose Airflow
is the version the project is tested with.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from deploy.local import (
    CELERY_SETTINGS,
    COMPONENTS,
    LOCAL_SETTINGS_DIR,
    PER_DEPLOYMENT,
    SHARED_SETTINGS,
    LocalDeployment,
    dag_bundle,
    shared_settings,
)
from deploy.offline import MOCK_GPU_SHARES
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
#: compose service -> the Airflow component it runs
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
#: the celery profile's Celery workers (service name = the worker's hostname)
CELERY_WORKERS = ("airflow-worker-1", "airflow-worker-2")
#: where airflow-init creates the pipelines' repository (the airflow-pipelines volume)
REPOSITORY = "/opt/airflow/pipelines"
#: values for every variable the compose file requires from .env
FILLED_ENV = {
    "POSTGRES_PASSWORD": "pg-password",
    "AIRFLOW_ADMIN_PASSWORD": "admin-password",
    "AIRFLOW_FERNET_KEY": "fernet-key",
    "AIRFLOW_API_SECRET_KEY": "api-secret",
    "AIRFLOW_JWT_SECRET": "jwt-secret",
}


def compose_file() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def docker_compose(tmp_path: Path, env_file: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's ``docker-compose`` on the repository's compose file, with ``env_file`` as its ``.env``."""
    executable = shutil.which("docker-compose")
    assert executable, "docker-compose is not installed: bash scripts/system-packages installs it"
    dotenv = tmp_path / "test.env"
    dotenv.write_text("".join(f"{key}='{value}'\n" for key, value in env_file.items()))
    command = [executable, "--project-directory", str(ROOT), "-f", str(COMPOSE), "--env-file", str(dotenv)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120)


def example_env() -> dict[str, str]:
    """.env.example with its empty secrets filled in."""
    values = {key: value or "" for key, value in dotenv_values(ROOT / ".env.example").items()}
    return {**values, **{key: FILLED_ENV[key] for key, value in values.items() if not value}}


def test_compose_parser_accepts_the_file_and_merges_the_shared_settings(tmp_path: Path) -> None:
    done = docker_compose(tmp_path, example_env(), "--profile", "offline", "config")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    assert set(AIRFLOW_SERVICES) | {"postgres", "airflow-init", "backendai-lite"} <= set(resolved)
    connection = dotenv_values(ROOT / ".env.example")["AIRFLOW_CONN_BACKENDAI_DEFAULT"]
    for service in [*AIRFLOW_SERVICES, "airflow-init"]:
        environment = resolved[service]["environment"]
        # what Compose made of deploy/airflow.env is what the local deployment reads from it
        assert {key: environment[key] for key in shared_settings()} == shared_settings()
        assert environment["AIRFLOW_CONN_BACKENDAI_DEFAULT"] == connection
        assert "pg-password@postgres/airflow" in environment["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def test_a_missing_secret_is_named(tmp_path: Path) -> None:
    env = {key: value for key, value in example_env().items() if key != "AIRFLOW_JWT_SECRET"}
    done = docker_compose(tmp_path, env, "config")
    assert done.returncode != 0
    assert "set AIRFLOW_JWT_SECRET in .env" in done.stderr


def test_services_order_and_health() -> None:
    services = compose_file()["services"]
    for service, component in AIRFLOW_SERVICES.items():
        spec = services[service]
        assert spec["command"] == component
        assert spec["healthcheck"]["test"], service
        assert spec["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "airflow-init": {"condition": "service_completed_successfully"},
        }
    assert sorted(AIRFLOW_SERVICES.values()) == sorted(COMPONENTS)  # the local deployment runs the same four
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert services["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    init = "\n".join(services["airflow-init"]["command"])
    steps = (
        "airflow db migrate",
        "fasttrack pools sync",
        "SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        "--profile celery",
    )
    for step in steps:
        assert step in init
    # ./dags is read once, into the pipelines' repository, which every Airflow service reads
    assert "./dags:/opt/airflow/dags:ro" in services["airflow-init"]["volumes"]
    for service in [*AIRFLOW_SERVICES, "airflow-init"]:
        assert f"airflow-pipelines:{REPOSITORY}" in services[service]["volumes"], service
    for service in AIRFLOW_SERVICES:
        assert not any(volume.startswith("./dags") for volume in services[service]["volumes"]), service


def test_the_dag_bundle_tracks_the_repository_that_airflow_init_creates(tmp_path: Path) -> None:
    bundle = dag_bundle()
    connection = f"AIRFLOW_CONN_{bundle['kwargs']['git_conn_id'].upper()}"
    done = docker_compose(tmp_path, example_env(), "config")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    for service in [*AIRFLOW_SERVICES, "airflow-init"]:
        git = json.loads(resolved[service]["environment"][connection])
        assert git == {"conn_type": "git", "host": REPOSITORY}
        # the fasttrack CLI looks DAG ids up there
        assert resolved[service]["environment"]["AIRFLOW__CORE__DAGS_FOLDER"] == REPOSITORY
    init = "\n".join(compose_file()["services"]["airflow-init"]["command"])
    assert f"if [ ! -d {REPOSITORY}/.git ]" in init  # a repository already there keeps its commits
    assert f"git -C {REPOSITORY} init -q --initial-branch={bundle['kwargs']['tracking_ref']}" in init
    assert f"/opt/airflow/logs {REPOSITORY}\n" in init  # owned by the user the other services run as
    # a team's own repository instead
    own = "https://git.example.com/team/pipelines.git"
    done = docker_compose(tmp_path, {**example_env(), "FASTTRACK_PIPELINES_REPOSITORY": own}, "config")
    assert done.returncode == 0, done.stderr
    environment = yaml.safe_load(done.stdout)["services"]["airflow-scheduler"]["environment"]
    assert json.loads(environment[connection])["host"] == own


def test_settings_come_from_the_shared_file_and_per_deployment_values_match_the_local_deployment() -> None:
    common = compose_file()["x-airflow-common"]
    assert [ROOT / path for path in common["env_file"]] == [SHARED_SETTINGS]
    environment = set(common["environment"])
    # the same per-deployment settings as deploy.local (which sets the Celery ones with CeleryExecutor)
    assert environment == set(PER_DEPLOYMENT) | set(CELERY_SETTINGS)
    assert not environment & set(shared_settings())  # nothing overrides the shared file
    assert common["environment"]["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"


def test_every_required_variable_is_in_env_example() -> None:
    text = COMPOSE.read_text()
    required = set(re.findall(r"(?<!\$)\$\{(\w+):\?", text))  # $${...}: the container's shell
    optional = set(re.findall(r"(?<!\$)\$\{(\w+):-", text)) - {
        "AIRFLOW_UID",
        "FASTTRACK_AIRFLOW_IMAGE",
        "FASTTRACK_OFFLINE_IMAGE",
    }
    example = (ROOT / ".env.example").read_text()
    assert required <= set(dotenv_values(ROOT / ".env.example"))
    for name in optional:  # the offline keypair, shown commented out
        assert re.search(rf"^#?{name}=", example, re.MULTILINE), name


def test_offline_profile_serves_backendai_lite_with_a_mock_accelerator() -> None:
    lite = compose_file()["services"]["backendai-lite"]
    assert lite["profiles"] == ["offline"]
    command = "\n".join(lite["command"])
    assert f"--mock-gpu-shares {MOCK_GPU_SHARES}" in command
    assert lite["build"]["target"] == "offline"


def test_dockerfile_builds_on_the_tested_airflow_without_changing_its_packages() -> None:
    pins = dict(
        line.split("==", 1) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", dockerfile, re.MULTILINE)
    assert stages[0] == (f"apache/airflow:{pins['apache-airflow']}-python{python}", "airflow")
    instructions = "\n".join(line for line in dockerfile.splitlines() if not line.startswith("#"))
    airflow_stage = instructions.split("\nFROM airflow AS offline")[0]
    assert "constraints.txt" not in airflow_stage  # the image's own versions, not the project's pins
    freeze = re.search(r"pip freeze > (\S+)", airflow_stage)
    assert freeze and f"pip install --no-cache-dir -c {freeze.group(1)} " in airflow_stage
    compose = compose_file()
    assert compose["x-airflow-common"]["build"] == {"context": ".", "target": "airflow"}


def test_the_filled_env_file_is_never_committed() -> None:
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT).returncode == 1


def test_celery_profile_runs_redis_two_workers_and_flower_with_celery_executor(tmp_path: Path) -> None:
    plain = docker_compose(tmp_path, example_env(), "config")
    assert plain.returncode == 0, plain.stderr
    for spec in yaml.safe_load(plain.stdout)["services"].values():
        if "AIRFLOW__CORE__EXECUTOR" in spec.get("environment", {}):
            assert spec["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"  # the default

    env = {**example_env(), "AIRFLOW_EXECUTOR": "CeleryExecutor"}
    done = docker_compose(tmp_path, env, "--profile", "celery", "config")
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    assert {"redis", *CELERY_WORKERS, "flower"} <= set(resolved)
    for service in [*AIRFLOW_SERVICES, "airflow-init", *CELERY_WORKERS, "flower"]:
        environment = resolved[service]["environment"]
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", service
        assert environment["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", service
        assert (
            environment["AIRFLOW__CELERY__RESULT_BACKEND"]
            == "db+postgresql+psycopg2://airflow:pg-password@postgres/airflow"
        )
        assert {key: environment[key] for key in shared_settings()} == shared_settings()

    services = compose_file()["services"]
    for name in ("redis", *CELERY_WORKERS, "flower"):
        assert services[name]["profiles"] == ["celery"], name
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "ports" not in services["redis"]  # the broker is reachable from the compose network only
    for worker in CELERY_WORKERS:
        spec = resolved[worker]
        assert spec["command"] in ("celery worker", ["celery", "worker"])
        # the api-server reaches a worker's log server by its hostname, the service's own name
        assert spec["hostname"] == worker
        assert spec["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "airflow-init": {"condition": "service_completed_successfully"},
            "airflow-apiserver": {"condition": "service_healthy"},
        }
        assert "inspect ping" in " ".join(spec["healthcheck"]["test"])
        # workers read the pipelines at the version of their run, from the DAG bundle
        assert f"airflow-pipelines:{REPOSITORY}" in services[worker]["volumes"]
    flower = services["flower"]
    assert flower["command"] == "celery flower"
    assert flower["ports"] == ["127.0.0.1:5555:5555"]  # Flower has no login of its own


def test_both_deployments_give_airflow_the_same_local_settings(tmp_path: Path) -> None:
    settings = LOCAL_SETTINGS_DIR / "airflow_local_settings.py"
    assert settings.is_file()
    local = LocalDeployment(tmp_path, dags_folder=ROOT / "dags", connection="{}")
    shutil.rmtree(local.postgres.root)  # made, never started
    assert str(LOCAL_SETTINGS_DIR) in local.env["PYTHONPATH"].split(os.pathsep)
    # the image: Airflow reads $AIRFLOW_HOME/config (/opt/airflow in apache/airflow)
    source = settings.relative_to(ROOT).as_posix()
    assert (
        f"COPY --chown=airflow:0 {source} /opt/airflow/config/airflow_local_settings.py"
        in (ROOT / "Dockerfile").read_text()
    )
