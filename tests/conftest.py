"""Test-wide setup: an isolated Airflow home on SQLite, set before Airflow is imported."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="fasttrack-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "tests" / "dags"))
# dag.test() runs each trigger in its own process right after the deferral: no scheduler to wait for (the
# deployment tests under tests/e2e keep the default)
os.environ.setdefault("AIRFLOW__FASTTRACK__RESUME_GRACE", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from hypothesis import settings as hypothesis_settings  # noqa: E402

# CI replays the same examples on every run (a failure there is reproducible); local runs keep exploring.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


# -- backendai-lite and the backendai connection --------------------------------------------------

import pytest  # noqa: E402

from tests.helpers import (  # noqa: E402
    LOG_FILES,
    LOGGED,
    SECRETS,
    WIDE_GPU_GROUP,
    WIDE_GPU_SLOTS,
    connection_env,
)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep what every test printed and logged, for tests/zz_security (the secret scan)."""
    LOGGED.extend(content for _, content in report.sections)
    if report.longrepr:
        LOGGED.append(str(report.longrepr))


@pytest.fixture(scope="session")
def lite(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One backendai-lite for the test session.

    Its ``default`` scaling group has 10 fGPU shares, as in the docs' examples; ``wide-gpu`` has room for many GPU
    sessions at once.
    """
    from airflow_provider_fasttrack.lite.testing import DEFAULT_SLOTS, LiteServer

    groups = {"default": DEFAULT_SLOTS, WIDE_GPU_GROUP: WIDE_GPU_SLOTS}
    with LiteServer(scaling_groups=groups, data_dir=tmp_path_factory.mktemp("lite")) as server:
        SECRETS.add(server.secret_key)
        LOG_FILES.append(server.log_path)
        yield server


@pytest.fixture
def backendai_conn(lite, monkeypatch: pytest.MonkeyPatch) -> str:  # type: ignore[no-untyped-def]
    """``backendai_default`` pointing at the session's backendai-lite."""
    monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_DEFAULT", connection_env(lite))
    return "backendai_default"


@pytest.fixture
def hook(backendai_conn: str):  # type: ignore[no-untyped-def]
    from airflow_provider_fasttrack.hooks.backendai import BackendAIHook

    hook = BackendAIHook(backendai_conn, retry_delay=0.05)
    yield hook
    hook.close()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh Airflow metadata database (SQLite in the test AIRFLOW_HOME)."""
    from airflow.utils import db

    db.resetdb()


def load_test_dag(dag_id: str):  # type: ignore[no-untyped-def]
    """A DAG from ``tests/dags`` (the test dags folder, so that dag.test() finds it in its bundle)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "tests" / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]
