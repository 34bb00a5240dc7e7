"""Start Backend.AI's manager once a file appears, with its modules already imported.

Importing the manager takes most of its start-up; the database it needs (schema, fixture) is built meanwhile.
Run by the Python of ``.venv-bai-client``: ``python preloaded_manager.py GO_FILE -f manager.toml``. It exits with
status 3 when ``GO_FILE`` has not appeared within ``BAI_PRELOAD_TIMEOUT`` seconds (default 600).

``BAI_SCHEDULER_SHORT_INTERVAL`` (seconds) replaces the 2 s short cycle of the scheduler's stages (a constant in the
manager, with no setting), the interval at which each stage looks whether a session awaits it; the stages themselves
and their order are the manager's own.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path


def shorten_scheduler_cycle(seconds: float) -> None:
    """Make every scheduler stage with a short cycle look for work each ``seconds`` instead of each 2 s."""
    from ai.backend.manager.sokovan.scheduler.coordinator import ScheduleCoordinator

    specs = ScheduleCoordinator._create_task_specs

    def shortened() -> list:  # type: ignore[type-arg]
        return [
            dataclasses.replace(spec, short_interval=min(spec.short_interval, seconds))
            if spec.short_interval is not None
            else spec
            for spec in specs()
        ]

    ScheduleCoordinator._create_task_specs = staticmethod(shortened)  # type: ignore[method-assign]


if __name__ == "__main__":
    go_file, args = Path(sys.argv[1]), sys.argv[2:]
    from ai.backend.common.metrics.multiprocess_setup import setup_prometheus_multiprocess_dir

    setup_prometheus_multiprocess_dir("manager")  # before prometheus_client is imported, as start-server does
    import ai.backend.manager.server  # noqa: F401 -- the slow part, done before the go
    from ai.backend.manager.cli.start_server import main

    if short_interval := os.environ.get("BAI_SCHEDULER_SHORT_INTERVAL"):
        shorten_scheduler_cycle(float(short_interval))

    deadline = time.monotonic() + float(os.environ.get("BAI_PRELOAD_TIMEOUT", "600"))
    while not go_file.exists():
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.1)
    sys.exit(main(args=args, prog_name="backend.ai mgr start-server"))
