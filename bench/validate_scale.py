"""How `fasttrack validate` scales with a pipeline's size: seconds per task at two sizes, side by side.

    .venv/bin/python bench/validate_scale.py [--sizes 1000 5000] [--rounds 3]

Each round validates every size once (interleaved, a fresh process each: parse, checks, DAG build and
serialisation, as the DAG processor does). A per-task ratio near 1.0 between the sizes means linear work;
Airflow's import and start-up are measured once with a 1-task file and subtracted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parse_pipelines import pipeline  # noqa: E402

FASTTRACK = [sys.executable, "-m", "airflow_provider_fasttrack.cli", "validate"]


def run(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run([*FASTTRACK, str(path)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for size in [1, *args.sizes]:
            files[size] = Path(tmp) / f"p{size}.yaml"
            files[size].write_text(yaml.safe_dump(pipeline(0, size), sort_keys=False))
        times: dict[int, list[float]] = {size: [] for size in files}
        for _ in range(args.rounds):
            for size, path in files.items():
                times[size].append(run(path))
    base = statistics.median(times[1])
    print(f"start-up (1 task): {base:.2f} s")
    per_task = {}
    for size in args.sizes:
        median = statistics.median(times[size])
        per_task[size] = (median - base) / size
        print(f"{size} tasks: median {median:.2f} s, {per_task[size] * 1000:.2f} ms/task after start-up")
    small, large = args.sizes[0], args.sizes[-1]
    print(f"per-task ratio {large}/{small}: {per_task[large] / per_task[small]:.2f}x (1.0 = linear)")


if __name__ == "__main__":
    main()
