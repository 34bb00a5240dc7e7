"""Orchestration overhead: a 10-task chain of `sleep 1` Backend.AI sessions vs the same chain of BashOperators.

Each chain runs in one `airflow dags test` process against a fresh backendai-lite; wall times are compared as a
ratio (machines are noisy). Run: ``.venv/bin/python bench/orchestration_overhead.py [--tasks 10] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAG_FILE = textwrap.dedent(
    """
    # airflow dag file for the orchestration benchmark
    import pendulum
    from airflow.sdk import DAG, chain
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow_provider_fasttrack.operators.session import BackendAISessionOperator

    START = pendulum.datetime(2026, 1, 1, tz="UTC")
    N = {tasks}
    with DAG("bench_bash", schedule=None, start_date=START):
        chain(*[BashOperator(task_id=f"t{{i}}", bash_command="sleep 1") for i in range(N)])
    for deferrable in (True, False):
        with DAG(f"bench_backendai_{{'deferrable' if deferrable else 'sync'}}", schedule=None, start_date=START):
            chain(*[
                BackendAISessionOperator(
                    task_id=f"t{{i}}", image="python:3.11", command="sleep 1",
                    deferrable=deferrable, poll_interval=0.2, log_interval=None,
                )
                for i in range(N)
            ])
    """
)


def run_dag(dag_id: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0 or "state=success" not in (result.stdout + result.stderr):
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{dag_id} did not succeed")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from airflow_provider_fasttrack.lite.testing import LiteServer
    from tests.helpers import connection_env

    with tempfile.TemporaryDirectory() as tmp, LiteServer(data_dir=Path(tmp) / "lite") as lite:
        home = Path(tmp) / "airflow"
        (home / "dags").mkdir(parents=True)
        (home / "dags" / "bench_dags.py").write_text(DAG_FILE.format(tasks=args.tasks))
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_BACKENDAI_DEFAULT": connection_env(lite),
        }
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )
        rows = []
        for _ in range(args.repeat):
            bash = run_dag("bench_bash", env)
            deferrable = run_dag("bench_backendai_deferrable", env)
            sync = run_dag("bench_backendai_sync", env)
            rows.append((bash, deferrable, sync))
    n = args.tasks
    print(f"chain of {n} x `sleep 1`, one `airflow dags test` each ({args.repeat} round(s))")
    print(
        "| round | BashOperator s | Backend.AI deferrable s | ratio | extra s/task | Backend.AI sync s | ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for index, (bash, deferrable, sync) in enumerate(rows, start=1):
        print(
            f"| {index} | {bash:.1f} | {deferrable:.1f} | {deferrable / bash:.2f}x | {(deferrable - bash) / n:.2f} "
            f"| {sync:.1f} | {sync / bash:.2f}x |"
        )


if __name__ == "__main__":
    main()
