"""The ``fasttrack`` command: validate, inspect and export FastTrack pipeline files; stage code and data; show
what pipeline runs used.

Each subcommand is one ``register_*`` function that adds its parser and sets ``handler``; adding a
subcommand is one more entry in :data:`SUBCOMMANDS`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _pipelines_dir() -> Path:
    from airflow_provider_fasttrack.pipeline.loader import PIPELINES_DIR_ENV

    configured = os.environ.get(PIPELINES_DIR_ENV)
    if configured:
        return Path(configured)
    from airflow.configuration import conf

    return Path(conf.get("core", "dags_folder")) / "pipelines"


def _cmd_validate(args: argparse.Namespace) -> int:
    from airflow_provider_fasttrack.exceptions import PipelineSpecError
    from airflow_provider_fasttrack.pipeline.factory import build_pipeline, check_serialisable
    from airflow_provider_fasttrack.pipeline.validate import load_pipeline

    failed = 0
    dag_ids: dict[str, str] = {}
    for path in _expand(args.files):
        name = str(path)
        try:
            loaded = load_pipeline(path, display_name=name)
            check_serialisable(build_pipeline(loaded, fileloc=name), loaded)
        except PipelineSpecError as exc:
            failed += 1
            for issue in exc.issues:
                print(issue, file=sys.stderr)
            continue
        for warning in loaded.warnings:
            print(warning, file=sys.stderr)
        dag_id = loaded.spec.dag_id
        if dag_id in dag_ids:
            failed += 1
            where = ("airflow", "dag_id") if loaded.spec.airflow.dag_id else ("name",)
            print(
                loaded.document.issue(where, f"DAG id {dag_id!r} is already used by {dag_ids[dag_id]}"),
                file=sys.stderr,
            )
            continue
        dag_ids[dag_id] = name
        if not args.quiet:
            print(f"{name}: ok ({len(loaded.spec.tasks)} tasks, DAG {dag_id})")
    return 1 if failed else 0


def _expand(targets: Sequence[str]) -> list[Path]:
    """Files as given; folders become the pipeline files inside them."""
    from airflow_provider_fasttrack.pipeline.loader import pipeline_files

    paths: list[Path] = []
    for target in targets:
        path = Path(target)
        paths.extend(pipeline_files(path) if path.is_dir() else [path])
    return paths


def register_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("validate", help="check pipeline files (or folders of them) and build their DAGs")
    parser.add_argument("files", nargs="+", metavar="FILE|FOLDER")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    parser.set_defaults(handler=_cmd_validate)


def _cmd_schema(args: argparse.Namespace) -> int:
    from airflow_provider_fasttrack.pipeline.spec import PipelineSpec

    schema = PipelineSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "FastTrack pipeline"
    print(json.dumps(schema, indent=2))
    return 0


def register_schema(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schema", help="print the JSON Schema of pipeline files (for editors)")
    parser.set_defaults(handler=_cmd_schema)


def _load_one(target: str) -> tuple[object, Path]:
    """A pipeline named by file or by DAG id (looked up in the pipelines folder)."""
    from airflow_provider_fasttrack.exceptions import PipelineSpecError
    from airflow_provider_fasttrack.pipeline.loader import load_spec_cached, pipeline_files
    from airflow_provider_fasttrack.pipeline.validate import load_pipeline

    path = Path(target)
    if path.is_file():
        return load_pipeline(path, display_name=target), path
    folder = _pipelines_dir()
    for candidate in pipeline_files(folder):
        try:
            loaded = load_spec_cached(candidate, candidate.relative_to(folder).as_posix())
        except PipelineSpecError:
            continue
        if loaded.spec.dag_id == target:
            return loaded, candidate
    raise LookupError(f"{target}: no such file, and no pipeline with that DAG id in {folder}")


def _cmd_graph(args: argparse.Namespace) -> int:
    from airflow_provider_fasttrack.pipeline.entities import graph_from_spec
    from airflow_provider_fasttrack.pipeline.factory import build_pipeline
    from airflow_provider_fasttrack.pipeline.graph_text import render_graph
    from airflow_provider_fasttrack.pipeline.validate import LoadedPipeline

    loaded, path = _load_one(args.target)
    assert isinstance(loaded, LoadedPipeline)
    dag = build_pipeline(loaded, fileloc=str(path))
    print(render_graph(dag, graph_from_spec(loaded.spec)))
    return 0


def register_graph(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("graph", help="print a pipeline's DAG as text")
    parser.add_argument("target", metavar="FILE|DAG_ID")
    parser.set_defaults(handler=_cmd_graph)


def _cmd_export(args: argparse.Namespace) -> int:
    from airflow_provider_fasttrack.pipeline.export import export_yaml
    from airflow_provider_fasttrack.pipeline.validate import LoadedPipeline

    loaded, _ = _load_one(args.target)
    assert isinstance(loaded, LoadedPipeline)
    text = export_yaml(loaded.spec)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def register_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("export", help="write a pipeline back as FastTrack YAML")
    parser.add_argument("target", metavar="DAG_ID|FILE")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    parser.set_defaults(handler=_cmd_export)


def _capacity(text: str) -> tuple[str, Decimal]:
    group, sep, amount = text.partition("=")
    try:
        if not sep or not group:
            raise ValueError
        return group, Decimal(amount)
    except (ValueError, ArithmeticError):
        raise argparse.ArgumentTypeError(f"{text!r}: use SCALING_GROUP=FGPU, e.g. default=10") from None


def _cmd_pools_sync(args: argparse.Namespace) -> int:
    from airflow_provider_fasttrack.pools import cluster_gpu_capacity, sync_pools

    if args.capacity:
        capacities = dict(args.capacity)
    else:
        from airflow_provider_fasttrack.hooks.backendai import BackendAIHook

        capacities = cluster_gpu_capacity(BackendAIHook(args.conn_id).check_presets())
    if not capacities:
        print("fasttrack: no scaling group with GPUs to make pools for", file=sys.stderr)
        return 1
    for name, slots in sync_pools(capacities):
        print(f"{name}: {slots} slots (include_deferred)")
    return 0


def register_pools(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("pools", help="Airflow pools that mirror Backend.AI GPU capacity")
    pools = parser.add_subparsers(dest="pools_command", required=True, metavar="ACTION")
    sync = pools.add_parser(
        "sync",
        help="create or resize backendai-gpu-<scaling group> pools (1 slot = 0.1 fGPU, include_deferred)",
    )
    sync.add_argument(
        "--capacity",
        action="append",
        type=_capacity,
        metavar="GROUP=FGPU",
        help="GPU capacity of a scaling group in fGPU (repeatable); default: ask the cluster",
    )
    sync.add_argument(
        "--conn-id", default="backendai_default", help="backendai connection (default %(default)s)"
    )
    sync.set_defaults(handler=_cmd_pools_sync)


def _cmd_stage(args: argparse.Namespace) -> int:
    from airflow_provider_fasttrack.hooks.backendai import MODEL_USAGE_MODE, BackendAIHook
    from airflow_provider_fasttrack.staging import code_files, data_files, stage

    skipped: list[str] = []
    files = [f for path in args.code for f in code_files(Path(path), skipped=skipped)]
    files += [f for path in args.data for f in data_files(Path(path), args.data_dir, skipped)]
    if not files and not args.create and not args.create_model:
        print("fasttrack: nothing to stage: give --code, --data, --create or --create-model", file=sys.stderr)
        return 2
    for path in skipped:
        print(f"  skipped symlink {path} (links are not followed)")
    hook = BackendAIHook(args.conn_id)
    try:
        for name in args.create:
            hook.ensure_vfolder(name)
            print(f"{name}: vfolder ready")
        for name in args.create_model:
            hook.ensure_vfolder(name, usage_mode=MODEL_USAGE_MODE)
            print(f"{name}: model vfolder ready")
        if files:
            report = stage(hook, args.vfolder, files)
            for path in report.uploaded:
                print(f"  uploaded {path}")
            print(
                f"{args.vfolder}: {len(report.uploaded)} files uploaded ({report.uploaded_bytes} bytes), "
                f"{len(report.unchanged)} unchanged"
            )
    finally:
        hook.close()
    return 0


def register_stage(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "stage",
        help="upload code and data into a vfolder that pipeline tasks mount (only what changed)",
        description="Upload a package folder or wheel (to code/) and data folders (to --data-dir) into VFOLDER. "
        "Files whose content the vfolder already holds (SHA-256, downloaded and compared) are not uploaded "
        "again; symbolic links are skipped.",
    )
    parser.add_argument("vfolder", metavar="VFOLDER", help="the vfolder to stage into (created if missing)")
    parser.add_argument(
        "--code",
        action="append",
        default=[],
        metavar="DIR|WHEEL",
        help="package folder or wheel (repeatable)",
    )
    parser.add_argument(
        "--data", action="append", default=[], metavar="DIR", help="data folder whose files go to --data-dir"
    )
    parser.add_argument("--data-dir", default="data", help="folder in the vfolder for --data (default: data)")
    parser.add_argument(
        "--create",
        action="append",
        default=[],
        metavar="VFOLDER",
        help="also create this general vfolder when missing, e.g. a data cache (repeatable)",
    )
    parser.add_argument(
        "--create-model",
        action="append",
        default=[],
        metavar="VFOLDER",
        help="also create this model-type vfolder when missing: one that model services serve (repeatable); "
        "an existing folder must be model-type",
    )
    parser.add_argument(
        "--conn-id", default="backendai_default", help="backendai connection (default %(default)s)"
    )
    parser.set_defaults(handler=_cmd_stage)


USAGE_SOURCE = (
    "Reads Airflow's metadata database through Airflow's own models, as the airflow command does: run it where "
    "airflow runs, with the same configuration (AIRFLOW_HOME, [database] sql_alchemy_conn); no API credentials "
    "are needed. Each session task's usage is its backendai_usage XCom."
)


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of runs, 1 or more")
    return number


def _cmd_usage(args: argparse.Namespace) -> int:
    from airflow_provider_fasttrack.usage_text import aligned, format_seconds, totals_line, usage_table

    if args.run_id is not None:
        from airflow_provider_fasttrack.usage_db import run_usage

        run = run_usage(args.dag_id, args.run_id)
        print(f"{args.dag_id} run {args.run_id}: {totals_line(run)}")
        if run.sessions:
            print("\n".join(usage_table(run)))
        return 0
    from airflow_provider_fasttrack.usage_db import recent_runs, run_counts

    counts = run_counts(args.dag_id)
    if not counts:
        raise LookupError(f"no runs of DAG {args.dag_id!r} in the Airflow database")
    summaries = recent_runs(args.dag_id, args.last)
    rows = [("run", "state", "duration", "sessions", "GPU-h", "CPU-core-h", "queued")]
    rows += [
        (
            s.run_id,
            s.state,
            format_seconds(s.duration_seconds),
            str(len(s.usage.sessions)),
            f"{s.usage.gpu_hours:.3f}",
            f"{s.usage.cpu_core_hours:.3f}",
            format_seconds(s.usage.queued_seconds),
        )
        for s in summaries
    ]
    print("\n".join(aligned(rows, left=(0, 1))))
    total = sum(counts.values())
    outcomes = ", ".join(f"{n} {state}" for state, n in counts.items())
    print(f"{args.dag_id}: {total} run{'s' if total != 1 else ''}: {outcomes}")
    return 0


def register_usage(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "usage",
        help="what a pipeline run used (per task and in total), or the last runs of a pipeline",
        description="With --run-id: one run's sessions (queued, preparing and running time, slots, GPU-hours, "
        "CPU-core-hours, peak memory), totals, wall time and critical path. With --last: the pipeline's latest "
        f"runs with their state, duration and totals, and its runs counted by state. {USAGE_SOURCE}",
    )
    parser.add_argument("--dag-id", required=True, help="the pipeline's DAG id")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--run-id", help="one run")
    which.add_argument("--last", type=_positive, metavar="N", help="the N most recent runs")
    parser.set_defaults(handler=_cmd_usage)


#: One entry per subcommand.
SUBCOMMANDS: list[Register] = [
    register_validate,
    register_schema,
    register_graph,
    register_export,
    register_pools,
    register_stage,
    register_usage,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fasttrack", description="FastTrack pipelines on Apache Airflow")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fasttrack`` console script."""
    from airflow_provider_fasttrack.exceptions import BackendAIError, PipelineSpecError

    args = build_parser().parse_args(argv)
    with contextlib.redirect_stdout(sys.stderr):  # Airflow's start-up logging must not mix into exports
        import airflow.sdk  # noqa: F401
    try:
        return int(args.handler(args))
    except PipelineSpecError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return 1
    except (LookupError, OSError, ValueError, BackendAIError) as exc:
        print(f"fasttrack: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
