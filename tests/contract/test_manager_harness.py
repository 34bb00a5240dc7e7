"""Backend.AI's own manager as the contract suite runs it: signed calls, and batch sessions that end by their command.

The dummy agent's convention (tests/manager/dummy_agent.py): a batch session's exit code is its command's last
``exit N`` and it runs for the command's last ``sleep N`` seconds, as under ``sh`` on backendai-lite. The sessions
that end by it (success, failure, timeout) are the contract suite's (test_sessions.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from tests.contract.conftest import Backend
from tests.contract.support import hook_of
from tests.manager.dummy_agent import exit_code_of, seconds_of


@pytest.fixture
def manager_hook(contract_manager: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[BackendAIHook]:
    hook = hook_of(contract_manager, "user", monkeypatch)
    yield hook
    hook.close()


def test_signed_root_answers_the_api_version(manager_hook: BackendAIHook) -> None:
    answer = manager_hook.client.get("/")
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == "v9.20250722"
    ok, message = manager_hook.test_connection()  # a signed call that needs the keypair (resource presets)
    assert ok, message


@pytest.mark.parametrize(
    ("command", "code", "seconds"),
    [
        ("echo fine", 0, 1.0),
        ("exit 3", 3, 1.0),
        ("sleep 30; exit 0", 0, 30.0),
        ("sleep 0.5 && python -c 'print(1)'; exit 2", 2, 0.5),
        ("exit 1; exit 4", 4, 1.0),
        ("sleep 2; sleep 7", 0, 7.0),
        ("echo noexit 5 sleep-3; my-sleep 9", 0, 1.0),
        ("exit 300", 44, 1.0),
    ],
)
def test_dummy_agent_reads_exit_and_sleep(command: str, code: int, seconds: float) -> None:
    assert (exit_code_of(command), seconds_of(command)) == (code, seconds)


REGISTRY_SWEEP = """
import asyncio, sys, types, uuid
sys.path.insert(0, sys.argv[1])
import dummy_agent
from ai.backend.agent.dummy.agent import DummyAgent
from ai.backend.agent.agent import ACTIVE_STATUS_SET
from ai.backend.common.types import ContainerStatus

dummy_agent._install()
kernel_id, session_id = uuid.uuid4(), uuid.uuid4()
agent = types.SimpleNamespace(kernel_registry={kernel_id: types.SimpleNamespace(session_id=session_id)})
alive = asyncio.run(DummyAgent.enumerate_containers(agent))
assert [kid for kid, _ in alive] == [kernel_id], alive
(container,) = [c for _, c in alive]
assert container.status == ContainerStatus.RUNNING and container.kernel_id == kernel_id, container
assert asyncio.run(DummyAgent.enumerate_containers(agent, ContainerStatus.dead_set())) == []
print("ok")
"""


def test_dummy_agent_reports_its_kernels_as_alive() -> None:
    """The agent drops every RUNNING kernel that its backend does not list (each minute), and the manager
    terminates kernels that are not reported present; the dummy backend lists the kernels it holds."""
    import subprocess

    from tests.manager.harness import DUMMY_AGENT, VENV, ensure_environment

    ensure_environment()
    done = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", REGISTRY_SWEEP, str(DUMMY_AGENT.parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
