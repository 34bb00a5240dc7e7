"""``bash scripts/serve``: backendai-lite and the local Airflow deployment on this machine, until Ctrl-C.

backendai-lite gets a mock accelerator (``--mock-gpu-shares``) and the trade-QA code and sample staged; the
deployment (``deploy.local``) reads its DAGs from a git repository in the work directory, made from the shipped
``dags/`` unless it exists, with its GPU pools synced to backendai-lite.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from deploy.local import LocalDeployment, dag_bundle
from deploy.offline import connection, mock_accelerator_line, offline_lite, stage

ROOT = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/serve", description="backendai-lite and the local Airflow deployment, until Ctrl-C"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="the Airflow UI's port (default 8080; 0: any free)"
    )
    parser.add_argument("--work-dir", type=Path, help="state directory (default: a new temporary directory)")
    parser.add_argument("--password", help="the admin's password (default: a new random one)")
    return parser


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="fasttrack-serve-"))
    # Ctrl-C stops everything, also when started as a background job of a script (which ignores SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop)
    try:
        with offline_lite(work / "backendai-lite") as lite:
            print(f"backendai-lite: {lite.url} (data in {lite.data_dir})", flush=True)
            print(mock_accelerator_line(lite), flush=True)
            print(stage(lite), flush=True)
            print(
                "starting PostgreSQL, airflow db migrate, api-server, scheduler, dag-processor, triggerer ...",
                flush=True,
            )
            airflow = LocalDeployment(
                work / "airflow",
                dags_folder=ROOT / "dags",
                connection=connection(lite),
                admin_password=args.password,
                port=args.port or None,
            )
            with airflow:
                for pool in airflow.cli_json("pools", "list", "-o", "json"):
                    if str(pool["pool"]).startswith("backendai-gpu-"):
                        print(f"pool {pool['pool']}: {pool['slots']} slots (1 slot = 0.1 fGPU)", flush=True)
                kwargs = dag_bundle()["kwargs"]
                print(
                    f"pipelines: git repository {airflow.repository}, branch {kwargs['tracking_ref']} "
                    f"(commits are picked up within {kwargs['refresh_interval']} s)",
                    flush=True,
                )
                print(
                    f"Airflow UI: {airflow.url}  login: {airflow.username} / {airflow.password}", flush=True
                )
                print(f"logs: {airflow.home}; Ctrl-C stops everything", flush=True)
                signal.pause()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    except RuntimeError as exc:
        print(f"scripts/serve: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
