"""Start Backend.AI's agent with the ``dummy`` backend, whose batch sessions end the way the command says.

The dummy backend runs no command. Stock, it answers every execution with "not-implemented" at once, and the
agent's batch loop spins on that answer forever. Started through this file (by the Python of
``.venv-bai-client``: ``python dummy_agent.py -f agent.toml``), its ``execute`` reads the command instead, by a
convention that holds on backendai-lite too, where the command really runs under ``sh``:

* the exit code is the number after the command's last ``exit N`` (0 when there is none);
* the run takes the seconds after the command's last ``sleep N`` (a float is fine), or the default of
  ``[batch] default-seconds`` in ``agent.dummy.toml`` (1 s when unset) when there is no ``sleep``.

So ``sleep 30; exit 0`` with a ``batchTimeout`` of 3 ends ``task-timeout`` and ``echo x; exit 3`` ends
``task-failed`` on both servers. Nothing is printed: a session's output stays the dummy's fixed string.
"""

from __future__ import annotations

import re
from typing import Any

DEFAULT_SECONDS = 1.0
_EXIT = re.compile(r"(?<![\w-])exit\s+(\d+)\b")
_SLEEP = re.compile(r"(?<![\w-])sleep\s+(\d+(?:\.\d*)?|\.\d+)(?![\w.])")


def exit_code_of(command: str) -> int:
    """The code of the command's last ``exit N``; 0 when it has none. Like ``sh``, only the low 8 bits count."""
    found = _EXIT.findall(command)
    return int(found[-1]) % 256 if found else 0


def seconds_of(command: str, default: float = DEFAULT_SECONDS) -> float:
    """The seconds of the command's last ``sleep N``; ``default`` when it has none."""
    found = _SLEEP.findall(command)
    return float(found[-1]) if found else default


def _default_seconds() -> float:
    """``[batch] default-seconds`` of ``agent.dummy.toml`` in the working directory (where the agent reads it)."""
    import tomllib
    from pathlib import Path

    path = Path.cwd() / "agent.dummy.toml"
    if not path.is_file():
        return DEFAULT_SECONDS
    with path.open("rb") as file:
        return float(tomllib.load(file).get("batch", {}).get("default-seconds", DEFAULT_SECONDS))


def _install() -> None:
    """Replace ``DummyAgent.execute`` and ``enumerate_containers`` (in this process and in the worker processes
    the agent starts).

    Stock, the dummy backend lists no containers. The agent then drops every RUNNING kernel from its registry at
    its minutely sweep of dangling kernels, and reports none present to the manager: a session caught by the
    sweep never gets its batch run, or its end, to the manager, and stays in TERMINATING. Here every kernel the
    agent holds is a running container."""
    import asyncio

    from ai.backend.agent.dummy.agent import DummyAgent
    from ai.backend.agent.types import Container
    from ai.backend.common.docker import LabelName
    from ai.backend.common.types import ContainerId, ContainerStatus

    default = _default_seconds()

    async def execute(
        self: Any,
        session_id: Any,
        kernel_id: Any,
        run_id: str | None,
        mode: str,
        text: str,
        *,
        opts: Any,
        api_version: int,
        flush_timeout: float,
    ) -> dict[str, Any]:
        command = str((opts or {}).get("exec") or text or "")
        await asyncio.sleep(seconds_of(command, default))
        return {
            "runId": run_id,
            "status": "finished",
            "exitCode": exit_code_of(command),
            "console": [],
            "options": None,
            "files": [],
        }

    async def enumerate_containers(
        self: Any, status_filter: frozenset[ContainerStatus] = ContainerStatus.active_set()
    ) -> list[tuple[Any, Container]]:
        if ContainerStatus.RUNNING not in status_filter:
            return []
        return [
            (
                kernel_id,
                Container(
                    id=ContainerId(str(kernel_id)),
                    status=ContainerStatus.RUNNING,
                    image="",
                    labels={
                        LabelName.KERNEL_ID: str(kernel_id),
                        LabelName.SESSION_ID: str(kernel.session_id),
                    },
                    ports=[],
                    backend_obj=None,
                ),
            )
            for kernel_id, kernel in list(self.kernel_registry.items())
        ]

    DummyAgent.execute = execute  # type: ignore[method-assign]
    DummyAgent.enumerate_containers = enumerate_containers  # type: ignore[method-assign]


if __name__ in ("__main__", "__mp_main__"):  # the agent's own workers import this file as __mp_main__
    _install()

if __name__ == "__main__":
    import sys

    from ai.backend.agent.server import main

    sys.exit(main(args=sys.argv[1:], prog_name="backend.ai ag start-server"))
