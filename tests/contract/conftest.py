"""One contract suite, two servers: the hook's calls against backendai-lite and Backend.AI's own manager.

``backend`` is parametrised over the servers; a test written against it holds for both. A test that only one server
can answer (the dummy agent runs no command, the manager has no app-proxy) says so with ``backend.skip_unless``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from tests.helpers import LOG_FILES, SECRETS

ServerName = Literal["lite", "manager"]

#: The image every contract test's session uses; both servers know it.
IMAGE = "cr.backend.ai/stable/python:3.11-ubuntu22.04"


@dataclass(frozen=True)
class Keypair:
    access_key: str
    secret_key: str = field(repr=False)
    email: str


@dataclass
class Backend:
    """A running server the hook talks to, and the keypairs of its users.

    ``keypairs``: ``user`` (a USER in project ``default``), ``user-2nd`` (a second keypair of that same user),
    ``other`` (another USER of the same project), ``admin`` (the domain's admin).
    """

    name: ServerName
    endpoint: str
    keypairs: dict[str, Keypair]
    project: str = "default"
    scaling_group: str = "default"
    image: str = IMAGE
    #: the storage host new vfolders are created on
    vfolder_host: str = "local"
    #: the object that runs the server (``LiteServer`` or the manager's harness), for server-specific checks
    server: Any = None

    def conn_env(self, who: str = "user", **extra: Any) -> str:
        """The JSON form of ``AIRFLOW_CONN_<ID>`` for one of the keypairs."""
        keypair = self.keypairs[who]
        conn = {
            "conn_type": "backendai",
            "host": self.endpoint,
            "login": keypair.access_key,
            "password": keypair.secret_key,
            "extra": {"project": self.project, **extra},
        }
        return json.dumps(conn)

    def skip_unless(self, *servers: ServerName, why: str) -> None:
        """Skip this test on the other server, saying why it cannot answer there."""
        if self.name not in servers:
            pytest.skip(f"{self.name}: {why}")


LITE_KEYPAIRS = {
    "user": Keypair("AKLITEUSER0000000001", "lite-user-secret-0000000000000001", "user@lite.local"),
    "user-2nd": Keypair("AKLITEUSER0000000002", "lite-user-secret-0000000000000002", "user@lite.local"),
    "other": Keypair("AKLITEOTHER000000001", "lite-other-secret-000000000000001", "other@lite.local"),
    "admin": Keypair("AKLITEADMIN000000001", "lite-admin-secret-000000000000001", "admin@lite.local"),
}
_LITE_UUIDS = {
    "user@lite.local": "00000000-0000-4000-8000-000000000001",
    "other@lite.local": "00000000-0000-4000-8000-000000000002",
    "admin@lite.local": "00000000-0000-4000-8000-000000000003",
}


@pytest.fixture(scope="package")  # stopped once the contract tests are done
def contract_lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """backendai-lite with the contract suite's users."""
    from airflow_provider_fasttrack.lite.testing import LiteServer

    keypairs = [
        {
            "access_key": kp.access_key,
            "secret_key": kp.secret_key,
            "user_email": kp.email,
            "user_uuid": _LITE_UUIDS[kp.email],
            "is_admin": who == "admin",
        }
        for who, kp in LITE_KEYPAIRS.items()
    ]
    config = {"images": [{"pattern": "cr.backend.ai/*"}, {"pattern": "python:*"}], "kill_grace_seconds": 1}
    with LiteServer(
        keypairs=keypairs, extra_config=config, data_dir=tmp_path_factory.mktemp("contract-lite")
    ) as server:
        SECRETS.update(kp.secret_key for kp in LITE_KEYPAIRS.values())
        yield Backend(name="lite", endpoint=server.url, keypairs=dict(LITE_KEYPAIRS), server=server)


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal, past the output capture."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(line, file=sys.stderr, flush=True)


@pytest.fixture(scope="package")  # stopped once the contract tests are done
def contract_manager(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Backend]:
    """Backend.AI's manager 26.9.6 with the dummy agent (tests/manager/harness.py), with the same users as lite.

    Its environment comes from ``scripts/bai-manager-env`` (run here; a no-op once installed). Where it cannot
    be installed or started, the tests that use it fail with the reason.
    """
    from tests.manager.fixture import PROJECT, SCALING_GROUP, VOLUME_HOST
    from tests.manager.harness import ManagerHarness, ManagerUnavailable, ensure_environment

    try:
        ensure_environment()
    except ManagerUnavailable as error:
        pytest.fail(f"Backend.AI manager: {error}", pytrace=False)
    harness = ManagerHarness(tmp_path_factory.mktemp("contract-manager"))
    SECRETS.update(harness.secrets)
    LOG_FILES.extend(harness.log_files)
    _say(pytestconfig, f"\nBackend.AI manager: starting in {harness.root}")
    with harness:
        SECRETS.update(harness.secrets)  # with the keys the admin API made
        times = ", ".join(f"{step} {at - harness.started_at:.1f} s" for step, at in harness.timings.items())
        _say(
            pytestconfig,
            f"Backend.AI manager: up at {harness.endpoint} in {harness.setup_seconds:.1f} s ({times})",
        )
        keypairs = {
            who: Keypair(spec.access_key, spec.secret_key, spec.email)
            for who, spec in harness.keypairs.items()
            if who in ("user", "user-2nd", "other", "admin")
        }
        yield Backend(
            name="manager",
            endpoint=harness.endpoint,
            keypairs=keypairs,
            project=PROJECT,
            scaling_group=SCALING_GROUP,
            image=IMAGE,
            vfolder_host=VOLUME_HOST,
            server=harness,
        )
    _say(pytestconfig, f"Backend.AI manager: stopped in {harness.teardown_seconds:.1f} s")


@pytest.fixture(params=["lite", "manager"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each contract test runs once per server."""
    result: Backend = request.getfixturevalue(f"contract_{request.param}")
    return result


@pytest.fixture
def contract_hook(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A ``BackendAIHook`` of the ``user`` keypair on ``backend``."""
    from airflow_provider_fasttrack.hooks.backendai import BackendAIHook

    monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_CONTRACT", backend.conn_env("user"))
    hook = BackendAIHook("backendai_contract", retry_delay=0.05)
    yield hook
    hook.close()
