"""Start Backend.AI's manager once a file appears, with its modules already imported.

Importing the manager takes most of its start-up; the database it needs (schema, fixture) is built meanwhile.
Run by the Python of ``.venv-bai-client``: ``python preloaded_manager.py GO_FILE -f manager.toml``. It exits with
status 3 when ``GO_FILE`` has not appeared within ``BAI_PRELOAD_TIMEOUT`` seconds (default 600).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    go_file, args = Path(sys.argv[1]), sys.argv[2:]
    from ai.backend.common.metrics.multiprocess_setup import setup_prometheus_multiprocess_dir

    setup_prometheus_multiprocess_dir("manager")  # before prometheus_client is imported, as start-server does
    import ai.backend.manager.server  # noqa: F401 -- the slow part, done before the go
    from ai.backend.manager.cli.start_server import main

    deadline = time.monotonic() + float(os.environ.get("BAI_PRELOAD_TIMEOUT", "600"))
    while not go_file.exists():
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.1)
    sys.exit(main(args=args, prog_name="backend.ai mgr start-server"))
