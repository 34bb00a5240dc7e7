"""Parse time of 200 ten-task pipelines: our YAML loader vs dag-factory vs hand-written Python DAG files.

All three build the same DAGs (same ids, tasks, dependencies and ``BackendAISessionOperator`` arguments)
and are parsed the way Airflow parses them: ``DagBag(dag_folder=...)``. Each measurement runs in a fresh
process ("cold": first parse in the process) followed by a second parse in the same process ("warm").

    python bench/parse_pipelines.py [--pipelines 200] [--tasks 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OPERATOR = "airflow_provider_fasttrack.operators.session.BackendAISessionOperator"
IMAGE = "cr.backend.ai/stable/python:3.11-ubuntu22.04"


def pipeline(index: int, tasks: int) -> dict[str, Any]:
    """A FastTrack pipeline: a chain with fan-out/fan-in (task k depends on k-1 and, when even, k-2)."""
    items = []
    for k in range(tasks):
        deps = [f"step-{k - 1}"] if k else []
        if k >= 2 and k % 2 == 0:
            deps.append(f"step-{k - 2}")
        resources: dict[str, Any] = {"cpu": 1 + k % 4, "mem": f"{1 + k % 8}g"}
        if k % 3 == 0:
            resources["cuda.shares"] = "0.5"
        items.append(
            {
                "name": f"step-{k}",
                "description": "",
                "type": "Custom Task",
                "cluster_mode": "single-node",
                "cluster_size": 1,
                "module_uri": "",
                "command": f"python3 -c 'print({index}, {k})'",
                "environment": {
                    "project": "default",
                    "scaling-group": "default",
                    "image": IMAGE,
                    "envs": {"STEP": str(k)},
                },
                "resources": resources,
                "resource_opts": {"shmem": "64m"},
                "dependencies": deps,
                "mounts": ["data:datasets"],
                "skip": False,
            }
        )
    return {
        "version": "25.6.5",
        "name": f"bench-{index:03d}",
        "description": "benchmark pipeline",
        "ownership": {"domain_name": "default", "scope": "personal"},
        "environment": {"envs": {"SHARED": "1"}},
        "tasks": items,
    }


def operator_kwargs(spec: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """The operator arguments our factory derives for ``task`` (the reference for the other two)."""
    return {
        "image": task["environment"]["image"],
        "command": task["command"],
        "resources": task["resources"],
        "resource_opts": task["resource_opts"],
        "cluster_mode": task["cluster_mode"],
        "cluster_size": task["cluster_size"],
        "mounts": task["mounts"],
        "env": {**spec["environment"]["envs"], **task["environment"]["envs"]},
        "project": task["environment"]["project"],
        "scaling_group": task["environment"]["scaling-group"],
        "domain": "default",
        "backendai_conn_id": "backendai_default",
        "artifacts": {"vfolder": f"fasttrack-{spec['name']}", "upstream": task["dependencies"]},
        "skip": False,
        "fail_fast": True,
        "gpu_pool": True,
        "trigger_rule": "none_failed",
    }


def write_ours(folder: Path, specs: list[dict[str, Any]]) -> Path:
    dags, pipelines = folder / "dags", folder / "pipelines"
    dags.mkdir(parents=True)
    pipelines.mkdir()
    for spec in specs:
        (pipelines / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (dags / "fasttrack_pipelines.py").write_text((ROOT / "dags" / "fasttrack_pipelines.py").read_text())
    return dags


def write_dagfactory(folder: Path, specs: list[dict[str, Any]]) -> Path:
    dags, configs = folder / "dags", folder / "configs"
    dags.mkdir(parents=True)
    configs.mkdir()
    for spec in specs:
        tasks = []
        for task in spec["tasks"]:
            entry = {"task_id": task["name"], "operator": OPERATOR, **operator_kwargs(spec, task)}
            entry["dependencies"] = task["dependencies"]
            tasks.append(entry)
        config = {
            spec["name"]: {
                "default_args": {"owner": "airflow", "retries": 0},
                "description": spec["description"],
                "schedule": None,
                "catchup": False,
                "tags": ["fasttrack"],
                "params": {"skip_tasks": []},
                "tasks": tasks,
            }
        }
        (configs / f"{spec['name']}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (dags / "dagfactory_dags.py").write_text(
        textwrap.dedent(
            f"""
            # airflow DAG file: dag-factory loads every config
            from dagfactory import load_yaml_dags

            load_yaml_dags(globals_dict=globals(), dags_folder={str(configs)!r})
            """
        )
    )
    return dags


def write_python(folder: Path, specs: list[dict[str, Any]]) -> Path:
    dags = folder / "dags"
    dags.mkdir(parents=True)
    for spec in specs:
        lines = [
            "# Hand-written airflow DAG file",
            "import datetime",
            "from airflow.sdk import DAG, Param",
            "from airflow_provider_fasttrack.artifacts import PipelineArtifacts",
            f"from airflow_provider_fasttrack.operators.session import {OPERATOR.rsplit('.', 1)[1]}",
            "",
            "with DAG(",
            f"    dag_id={spec['name']!r},",
            f"    description={spec['description']!r},",
            "    schedule=None,",
            "    catchup=False,",
            "    tags={'fasttrack'},",
            "    default_args={'owner': 'airflow', 'retries': 0, 'retry_delay': datetime.timedelta(seconds=300)},",
            "    params={'skip_tasks': Param([], type='array', items={'type': 'string'}, uniqueItems=True)},",
            ") as dag:",
        ]
        for k, task in enumerate(spec["tasks"]):
            kwargs = operator_kwargs(spec, task)
            artifacts = kwargs.pop("artifacts")
            args = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
            lines.append(
                f"    t{k} = BackendAISessionOperator(task_id={task['name']!r}, {args}, "
                f"artifacts=PipelineArtifacts({artifacts['vfolder']!r}, {tuple(artifacts['upstream'])!r}))"
            )
        for k, task in enumerate(spec["tasks"]):
            for dep in task["dependencies"]:
                lines.append(f"    t{dep.split('-')[1]} >> t{k}")
        (dags / f"{spec['name'].replace('-', '_')}.py").write_text("\n".join(lines) + "\n")
    return dags


MEASURE = textwrap.dedent(
    """
    import hashlib, json, sys, time
    from airflow.dag_processing.dagbag import DagBag

    folder = sys.argv[1]
    times = []
    for _ in range(2):
        started = time.perf_counter()
        bag = DagBag(dag_folder=folder)
        times.append(time.perf_counter() - started)
    fingerprint = sorted(
        (dag_id, t.task_id, tuple(sorted(t.upstream_task_ids)), json.dumps(t.request.resources, sort_keys=True),
         json.dumps(t.request.env, sort_keys=True), t.pool, t.pool_slots, str(t.trigger_rule), repr(t.artifacts),
         list(t.request.mounts), t.request.command, t.request.image)
        for dag_id, dag in bag.dags.items() for t in dag.tasks
    )
    print(json.dumps({"cold": times[0], "warm": times[1], "dags": len(bag.dags), "errors": bag.import_errors,
                      "tasks": sum(len(d.tasks) for d in bag.dags.values()), "fingerprint": hashlib.sha256(str(fingerprint).encode()).hexdigest()}))
    """
)


def measure(dags: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(dags)], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"measurement failed for {dags}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


BENCH_SITE = ROOT / ".cache" / "bench-site"


def dag_factory_site() -> Path:
    """dag-factory 1.1.0 in a folder of its own (kept out of .venv: it registers an Airflow plugin)."""
    if not (BENCH_SITE / "dagfactory").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(BENCH_SITE),
                "dag-factory==1.1.0",
            ],
            check=True,
        )
    return BENCH_SITE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    specs = [pipeline(i, args.tasks) for i in range(args.pipelines)]
    with tempfile.TemporaryDirectory(prefix="fasttrack-bench-") as tmp:
        base = Path(tmp)
        folders = {
            "fasttrack YAML loader": write_ours(base / "ours", specs),
            "dag-factory 1.1.0": write_dagfactory(base / "dagfactory", specs),
            "hand-written Python": write_python(base / "python", specs),
        }
        env = {
            **os.environ,
            # the same interpreter and path for all three, dag-factory (and its plugin) included
            "PYTHONPATH": f"{ROOT}{os.pathsep}{dag_factory_site()}",
            "AIRFLOW_HOME": str(base / "airflow-home"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
            "FASTTRACK_PIPELINES_DIR": str(base / "ours" / "pipelines"),
        }
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in folders}
        for _ in range(args.repeats):
            for name, dags in folders.items():
                results[name].append(measure(dags, env))

    print(
        f"{args.pipelines} pipelines x {args.tasks} tasks, DagBag parse, median of {args.repeats} fresh processes"
    )
    fingerprints = set()
    for name, runs in results.items():
        first = runs[0]
        if (
            first["errors"]
            or first["dags"] != args.pipelines
            or first["tasks"] != args.pipelines * args.tasks
        ):
            raise SystemExit(
                f"{name}: {first['dags']} DAGs, {first['tasks']} tasks, errors {first['errors']}"
            )
        fingerprints.add(first["fingerprint"])
    if len(fingerprints) != 1:
        raise SystemExit("the three approaches built different DAGs")
    cold = {name: statistics.median(r["cold"] for r in runs) for name, runs in results.items()}
    warm = {name: statistics.median(r["warm"] for r in runs) for name, runs in results.items()}
    ours, factory, python = cold
    print(f"{'approach':<24} {'cold s':>8} {'warm s':>8}")
    for name in results:
        print(f"{name:<24} {cold[name]:>8.3f} {warm[name]:>8.3f}")
    print("identical DAGs: yes (ids, tasks, dependencies, resources, envs, pools, trigger rules)")
    print(
        f"dag-factory / ours:   cold {cold[factory] / cold[ours]:.2f}x   warm {warm[factory] / warm[ours]:.2f}x"
    )
    print(
        f"ours / hand-written:  cold {cold[ours] / cold[python]:.2f}x   warm {warm[ours] / warm[python]:.2f}x"
    )


if __name__ == "__main__":
    main()
