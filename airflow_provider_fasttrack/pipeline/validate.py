"""Load a pipeline file into a checked :class:`PipelineSpec`, or collect one-line errors with file:line:column.

Reading, parsing and pydantic's part go through :func:`training.yamldoc.load_model`; this module adds what the
field types cannot say (names, the task graph, slots, mounts, templates, the schedule). Checking never changes
the parsed spec: the checked spec, with canonical resource values, is a new one.
"""

from __future__ import annotations

import graphlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, get_args

import jinja2
import jinja2.nodes
import jsonschema
from pydantic import BaseModel

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.mounts import VFOLDER_NAME, Mount
from airflow_provider_fasttrack.pipeline.assets import ASSET_KINDS, asset_name, asset_uri, is_asset_uri
from airflow_provider_fasttrack.pipeline.entities import gate_task_id, teardown_task_id
from airflow_provider_fasttrack.pipeline.references import ReferencePolicy, template_tree
from airflow_provider_fasttrack.pipeline.schedule import UNTIMED_PRESETS, schedule_problem
from airflow_provider_fasttrack.pipeline.serving import service_issues
from airflow_provider_fasttrack.pipeline.spec import ParamSpec, PipelineParam, PipelineSpec, TaskSpec
from airflow_provider_fasttrack.secret_refs import SECRET_REF, bad_references
from airflow_provider_fasttrack.service_request import ServiceRequest
from airflow_provider_fasttrack.session_request import SessionRequest
from airflow_provider_fasttrack.slots import normalize_memory, normalize_slot, parse_memory
from training.results import RESULT_KEYS, step_of_command
from training.yamldoc import Issue, Loc, YamlDocument, load_model

__all__ = ["LoadedPipeline", "load_pipeline", "load_pipeline_text"]

# Names are matched in full (``re.fullmatch``): a trailing newline is not part of a name.
TASK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")
DAG_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PARAM_NAME = ENV_NAME
#: the longest asset name or URI Airflow stores
ASSET_NAME_MAX = 1500
SECRET_NAME = re.compile(
    r"TOKEN(?!IZER)|SECRET|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY", re.IGNORECASE
)


@dataclass
class LoadedPipeline:
    """A checked pipeline, the document it came from, and the warnings found on the way."""

    spec: PipelineSpec
    document: YamlDocument
    warnings: list[Issue] = field(default_factory=list)


def load_pipeline(
    path: str | Path, *, display_name: str | None = None, references: ReferencePolicy | None = None
) -> LoadedPipeline:
    """Read and check one pipeline file; raises :class:`PipelineSpecError`.

    ``display_name`` is the name used in messages (default: the file name); ``references``: the connections
    and variables its templates may read (default: the deployment's Airflow configuration).
    """
    path = Path(path)
    return _load(path, display_name or path.name, references)


def load_pipeline_text(text: str, name: str, *, references: ReferencePolicy | None = None) -> LoadedPipeline:
    """Check the pipeline in ``text``; ``name`` is the file name used in messages."""
    return _load(text, name, references)


def _load(source: Path | str, name: str, references: ReferencePolicy | None) -> LoadedPipeline:
    parsed, doc = load_model(
        source,
        PipelineSpec,
        name=name,
        what="a pipeline file",
        secret=lambda loc: "envs" in loc,  # environment values may be secrets: never echo them
        error=PipelineSpecError,
    )
    spec, normalized = _normalized(parsed, doc)
    policy = references if references is not None else ReferencePolicy.from_airflow_config()
    templates = list(_templates(spec))
    checked = [*normalized, *_check(spec, doc, templates), *_check_references(spec, doc, policy, templates)]
    errors = sorted((i for i in checked if i.severity == "error"), key=lambda i: (i.line, i.column))
    if errors:
        raise PipelineSpecError(errors)
    warnings = [i for i in checked if i.severity == "warning"]
    warnings.extend(_unknown_fields(spec, (), doc))
    return LoadedPipeline(spec=spec, document=doc, warnings=warnings)


def _normalized(spec: PipelineSpec, doc: YamlDocument) -> tuple[PipelineSpec, list[Issue]]:
    """A copy of ``spec`` whose resources are in canonical form, and the problems found on the way."""
    issues: list[Issue] = []
    tasks: list[TaskSpec] = []
    for index, task in enumerate(spec.tasks):
        loc: Loc = ("tasks", index)
        resources = dict(task.resources)
        for slot, value in task.resources.items():
            try:
                resources[slot] = normalize_slot(str(slot), value)
            except ValueError as exc:
                issues.append(doc.issue((*loc, "resources", str(slot)), str(exc)))
        options = dict(task.resource_opts)
        if "shmem" in options:
            try:
                options["shmem"] = normalize_memory(options["shmem"])
            except ValueError as exc:
                issues.append(doc.issue((*loc, "resource_opts", "shmem"), str(exc)))
        tasks.append(task.model_copy(update={"resources": resources, "resource_opts": options}))
    return spec.model_copy(update={"tasks": tasks}), issues


def _check(spec: PipelineSpec, doc: YamlDocument, templates: list[tuple[Loc, str]]) -> Iterator[Issue]:
    """Everything pydantic's field types cannot say: names, graph, slots, mounts, templates, schedule."""
    if not spec.tasks:
        yield doc.issue(("tasks",), "a pipeline needs at least one task")
    if not spec.name.strip():
        yield doc.issue(("name",), "the pipeline name is empty")
    yield from _check_ownership(spec, doc)
    yield from _check_envs(spec.environment.envs, ("environment", "envs"), doc)
    first_index: dict[str, int] = {}
    for index, task in enumerate(spec.tasks):
        loc: Loc = ("tasks", index)
        if not TASK_NAME.fullmatch(task.name):
            yield doc.issue(
                (*loc, "name"), f"{task.name!r} is not a task name (letters, digits, '_', '.', '-')"
            )
        if task.name in first_index:
            yield doc.issue(
                (*loc, "name"),
                f"duplicate task name {task.name!r} (first at tasks[{first_index[task.name]}])",
            )
        first_index.setdefault(task.name, index)
        yield from _check_task(task_index=index, spec=spec, doc=doc)
    for index, task in enumerate(spec.tasks):
        gate = gate_task_id(task.name)
        if task.continue_on_failure and gate in first_index:
            yield doc.issue(
                ("tasks", first_index[gate], "name"),
                f"{gate!r} is the name of the task that continue_on_failure adds after tasks[{index}]; rename it",
            )
    yield from _check_graph(spec, doc, first_index)
    yield from _check_quality_gates(spec, doc, first_index)
    yield from _check_approvals(spec, doc)
    yield from _check_airflow(spec, doc)
    yield from _check_assets(spec, doc)
    yield from _check_params(spec, doc, templates)
    yield from _check_secret_places(templates, doc)


def _check_task(*, task_index: int, spec: PipelineSpec, doc: YamlDocument) -> Iterator[Issue]:
    task = spec.tasks[task_index]
    loc: Loc = ("tasks", task_index)
    if task.is_serving:
        yield from service_issues(task, loc, doc, model_storage=spec.airflow.model_storage)
    elif not task.command.strip():
        yield doc.issue((*loc, "command"), "command is empty")
    elif "{{" in task.command or "{%" in task.command:
        try:
            template_tree(task.command)
        except jinja2.TemplateSyntaxError as exc:
            yield doc.issue((*loc, "command"), f"template syntax error: {exc.message}")
    if len(task.environment.image.split()) != 1:  # empty, or with spaces inside
        yield doc.issue(
            (*loc, "environment", "image"), f"{task.environment.image!r} is not an image reference"
        )
    if task.cluster_mode == "multi-node" and task.cluster_size < 2:
        yield doc.issue(
            (*loc, "cluster_size"), f"a multi-node cluster needs cluster_size >= 2 (got {task.cluster_size})"
        )
    if task.module_uri.strip():
        yield doc.issue(
            (*loc, "module_uri"), "module_uri is ignored: the command runs as written", severity="warning"
        )
    yield from _check_shmem(task.resources.get("mem"), task.resource_opts.get("shmem"), loc, doc)
    seen_vfolders: set[str] = set()
    for m_index, text in enumerate(task.mounts):
        mount_loc = (*loc, "mounts", m_index)
        try:
            mount = Mount.parse(text)
        except ValueError as exc:
            yield doc.issue(mount_loc, str(exc))
            continue
        if mount.name in seen_vfolders:
            yield doc.issue(mount_loc, f"vfolder {mount.name!r} is mounted twice")
        seen_vfolders.add(mount.name)
    yield from _check_envs(task.environment.envs, (*loc, "environment", "envs"), doc)
    if spec.ownership.scope == "project" and not (task.environment.project or "").strip():
        yield doc.issue(
            (*loc, "environment"),
            "the pipeline is project-scoped but this task names no project; "
            "its session runs in the connection's project",
            severity="warning",
        )


def _check_ownership(spec: PipelineSpec, doc: YamlDocument) -> Iterator[Issue]:
    ownership = spec.ownership
    if ownership.domain and ownership.domain_name and ownership.domain != ownership.domain_name:
        yield doc.issue(
            ("ownership", "domain"),
            f"domain {ownership.domain!r} differs from domain_name {ownership.domain_name!r}; give one of them",
        )


def _check_shmem(mem: Any, shmem: Any, loc: Loc, doc: YamlDocument) -> Iterator[Issue]:
    if mem is None or shmem is None:
        return
    try:
        mem_bytes, shmem_bytes = parse_memory(mem), parse_memory(shmem)
    except ValueError:
        return
    if shmem_bytes >= mem_bytes > 0:
        yield doc.issue((*loc, "resource_opts", "shmem"), f"shmem {shmem} must be smaller than mem {mem}")


def _check_envs(envs: dict[str, str], loc: Loc, doc: YamlDocument) -> Iterator[Issue]:
    for key, value in envs.items():
        if not ENV_NAME.fullmatch(key):
            yield doc.issue((*loc, key), f"{key!r} is not an environment variable name", key=True)
        for bad in bad_references(value):
            yield doc.issue((*loc, key), f"{bad!r} is not a secret reference (write ${{{{ secrets.NAME }}}})")
        if "{{" in value or "{%" in value:
            try:
                template_tree(value)
            except jinja2.TemplateSyntaxError as exc:
                yield doc.issue((*loc, key), f"template syntax error: {exc.message}")
        elif value and SECRET_NAME.search(key):
            yield doc.issue(
                (*loc, key),
                f"{key} looks like a secret written in the file; use a template such as "
                f"'{{{{ conn.<conn_id>.password }}}}' so that Airflow keeps it out of the file and masks it in logs",
                severity="warning",
            )


def _check_graph(spec: PipelineSpec, doc: YamlDocument, index_of: dict[str, int]) -> Iterator[Issue]:
    graph: dict[str, list[str]] = {}
    for index, task in enumerate(spec.tasks):
        deps: list[str] = []
        for d_index, dep in enumerate(task.dependencies):
            loc = ("tasks", index, "dependencies", d_index)
            if dep not in index_of:
                known = ", ".join(sorted(index_of)) or "none"
                yield doc.issue(loc, f"unknown dependency {dep!r} (tasks: {known})")
            elif dep in deps:
                yield doc.issue(loc, f"dependency {dep!r} is listed twice", severity="warning")
            else:
                deps.append(dep)
        graph.setdefault(task.name, deps)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))
        start = cycle[0]
        yield doc.issue(("tasks", index_of[start], "dependencies"), f"dependency cycle: {' -> '.join(cycle)}")


def _added_task_ids(spec: PipelineSpec) -> set[str]:
    """The tasks the pipeline adds beside its own: continue_on_failure stand-ins and ephemeral services' teardowns."""
    added = {gate_task_id(t.name) for t in spec.tasks if t.continue_on_failure}
    added |= {
        teardown_task_id(t.name) for t in spec.tasks if t.is_serving and t.service and t.service.ephemeral
    }
    return added


def _check_quality_gates(spec: PipelineSpec, doc: YamlDocument, index_of: dict[str, int]) -> Iterator[Issue]:
    """Each quality gate: its own name, a task to read whose result has its key, and tasks it can hold back."""
    if not spec.airflow.quality_gates:
        return
    upstream = {task.name: set(task.dependencies) for task in spec.tasks}
    known = ", ".join(sorted(index_of)) or "none"
    params = {p.name: p for p in spec.params} | spec.airflow.params
    added = _added_task_ids(spec)
    held_back_issues = 0
    for name, gate in spec.airflow.quality_gates.items():
        loc: Loc = ("airflow", "quality_gates", name)
        if name in index_of:
            yield doc.issue(
                loc,
                f"{name!r} is the name of a task (tasks[{index_of[name]}]); a quality gate needs its own",
                key=True,
            )
        elif name in added:
            yield doc.issue(
                loc,
                f"{name!r} is the name of a task the pipeline adds; a quality gate needs its own",
                key=True,
            )
        elif not TASK_NAME.fullmatch(name):
            yield doc.issue(loc, f"{name!r} is not a task name (letters, digits, '_', '.', '-')", key=True)
        if gate.after not in index_of:
            yield doc.issue((*loc, "after"), f"unknown task {gate.after!r} (tasks: {known})")
        ancestors = _ancestors(gate.after, upstream)
        for position, held in enumerate(gate.before):
            where = (*loc, "before", position)
            if held not in index_of:
                yield doc.issue(where, f"unknown task {held!r} (tasks: {known})")
            elif held == gate.after or held in ancestors:
                held_back_issues += 1
                runs = "it is that task" if held == gate.after else f"it runs after {held}"
                yield doc.issue(
                    where,
                    f"{gate.after} is not upstream of {held} ({runs}), so {name} cannot hold {held} back",
                )
        above = gate.above.strip()
        if "{{" in above or "{%" in above:
            try:
                template_tree(above)
            except jinja2.TemplateSyntaxError as exc:
                yield doc.issue((*loc, "above"), f"template syntax error: {exc.message}")
        elif not _is_number(above):
            yield doc.issue((*loc, "above"), f"{gate.above!r} is not a number or a template")
        if gate.after in index_of:
            step = step_of_command(spec.tasks[index_of[gate.after]].command)
            if step is not None:
                yield from _check_result_key(gate.key, step, params, (*loc, "key"), doc)
    if not held_back_issues:
        yield from _check_gate_cycles(spec, doc, upstream)


def _check_gate_cycles(
    spec: PipelineSpec, doc: YamlDocument, upstream: dict[str, set[str]]
) -> Iterator[Issue]:
    """Gates that each could hold their tasks back may still, together, make a cycle."""
    graph = {task: set(deps) for task, deps in upstream.items()}
    for name, gate in spec.airflow.quality_gates.items():
        graph[name] = {gate.after}
        for held in gate.before:
            graph.setdefault(held, set()).add(name)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))
        first = next((n for n in cycle if n in spec.airflow.quality_gates), None)
        if first is not None:
            yield doc.issue(
                ("airflow", "quality_gates", first),
                f"the quality gates make a cycle: {' -> '.join(cycle)}",
                key=True,
            )


def _ancestors(node: str, upstream: dict[str, set[str]]) -> set[str]:
    """Every node upstream of ``node``, directly or not (a cycle is reported elsewhere)."""
    found: set[str] = set()
    todo = list(upstream.get(node, ()))
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(upstream.get(name, ()))
    return found


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


PARAM_TEMPLATE = re.compile(r"\{\{\s*params(?:\.(\w+)|\[\s*['\"](\w+)['\"]\s*\])\s*\}\}")


def _check_result_key(
    key: str, step: str, params: dict[str, ParamSpec | PipelineParam], loc: Loc, doc: YamlDocument
) -> Iterator[Issue]:
    """``key`` (or each value its param may take) is one that ``python -m training <step>`` writes."""
    keys = RESULT_KEYS[step]
    listed = ", ".join(sorted(keys))
    if match := PARAM_TEMPLATE.fullmatch(key.strip()):
        name = match.group(1) or match.group(2)
        param = params.get(name)
        if param is None:
            return  # reported by the params check
        values = [*([param.default] if param.default is not None else []), *(param.enum or [])]
        for value in dict.fromkeys(map(str, values)):
            if value not in keys:
                yield doc.issue(
                    loc,
                    f"{value!r} (a value of params.{name}) is not a key of the result of "
                    f"python -m training {step} (keys: {listed})",
                )
    elif "{{" not in key and "{%" not in key and key not in keys:
        yield doc.issue(
            loc, f"{key!r} is not a key of the result of python -m training {step} (keys: {listed})"
        )


def _check_approvals(spec: PipelineSpec, doc: YamlDocument) -> Iterator[Issue]:
    """Each approval has a name of its own and waits between tasks (or quality gates, or approvals) of this
    pipeline: its ``after`` upstream of each of its ``before``, without counting the approval itself."""
    approvals = spec.airflow.approvals
    if not approvals:
        return
    tasks = {task.name for task in spec.tasks}
    added = _added_task_ids(spec)
    gates = spec.airflow.quality_gates
    upstream: dict[str, set[str]] = {task.name: set(task.dependencies) for task in spec.tasks}
    nodes = {
        **{name: (g.after, g.before) for name, g in gates.items()},
        **{n: (a.after, a.before) for n, a in approvals.items()},
    }
    for node, (after, _) in nodes.items():
        upstream[node] = {after}
    for node, (_, before) in nodes.items():
        for task in before:
            if task in upstream:
                upstream[task].add(node)
    known = ", ".join(sorted(upstream))
    for name, approval in approvals.items():
        loc: Loc = ("airflow", "approvals", name)
        if not TASK_NAME.fullmatch(name):
            yield doc.issue(loc, f"{name!r} is not a task name (letters, digits, '_', '.', '-')", key=True)
        elif name in tasks or name in added or name in gates:
            what = (
                "a quality gate"
                if name in gates
                else "a task the pipeline adds"
                if name in added
                else "a task"
            )
            yield doc.issue(
                loc, f"{name!r} is the name of {what}; an approval needs a name of its own", key=True
            )
        if approval.after not in upstream or approval.after == name:
            yield doc.issue(
                (*loc, "after"), f"unknown task {approval.after!r} (tasks, quality gates, approvals: {known})"
            )
        if not approval.before:
            yield doc.issue((*loc, "before"), "name the tasks that wait for the approval")
        without = {node: ups - {name} for node, ups in upstream.items() if node != name}
        for index, task in enumerate(approval.before):
            if task not in upstream or task == name:
                yield doc.issue(
                    (*loc, "before", index),
                    f"unknown task {task!r} (tasks, quality gates, approvals: {known})",
                )
            elif approval.after in upstream and approval.after not in _ancestors(task, without):
                yield doc.issue((*loc, "before", index), f"{approval.after!r} is not upstream of {task!r}")
        for place in ("subject", "body"):
            text = getattr(approval, place)
            if text and ("{{" in text or "{%" in text):
                try:
                    template_tree(text)
                except jinja2.TemplateSyntaxError as exc:
                    yield doc.issue((*loc, place), f"template syntax error: {exc.message}")


def _check_airflow(spec: PipelineSpec, doc: YamlDocument) -> Iterator[Issue]:
    options = spec.airflow
    loc: Loc = ("airflow",)
    if options.dag_id is not None and not DAG_ID.fullmatch(options.dag_id):
        yield doc.issue(
            (*loc, "dag_id"), f"{options.dag_id!r} is not a DAG id (letters, digits, '_', '.', '-')"
        )
    elif not DAG_ID.fullmatch(spec.dag_id):
        yield doc.issue(("name",), f"{spec.name!r} gives no valid DAG id; set airflow.dag_id")
    if options.vfolder is not None and not VFOLDER_NAME.fullmatch(options.vfolder):
        yield doc.issue((*loc, "vfolder"), f"{options.vfolder!r} is not a vfolder name")
    try:
        import pendulum

        pendulum.timezone(options.timezone)
    except Exception:
        yield doc.issue(
            (*loc, "timezone"), f"{options.timezone!r} is not a time zone (e.g. UTC or Asia/Seoul)"
        )
    schedule = options.schedule
    if schedule is not None:
        problem = schedule_problem(schedule)
        if problem:
            yield doc.issue((*loc, "schedule"), problem)
    if options.max_runs is not None:
        if schedule is None or schedule in UNTIMED_PRESETS:
            yield doc.issue((*loc, "max_runs"), "max_runs needs a cron or preset schedule (e.g. '@daily')")
        elif options.start_date is None:
            yield doc.issue((*loc, "max_runs"), "max_runs needs start_date: the runs are counted from it")
    slack = options.notifications.slack
    if slack is not None and not (slack.on_success or slack.on_failure):
        yield doc.issue(
            (*loc, "notifications", "slack"), "neither on_success nor on_failure is set", severity="warning"
        )
    for event in ("on_success", "on_failure"):
        message = getattr(slack, event, None) if slack else None
        if isinstance(message, str) and ("{{" in message or "{%" in message):
            try:
                template_tree(message)
            except jinja2.TemplateSyntaxError as exc:
                yield doc.issue(
                    (*loc, "notifications", "slack", event), f"template syntax error: {exc.message}"
                )


def _check_assets(spec: PipelineSpec, doc: YamlDocument) -> Iterator[Issue]:
    """``airflow.assets``: outlets name session tasks, one task per kind; the schedule names other assets and
    replaces ``airflow.schedule``. Whether a named asset exists is known only to Airflow: a run starts once a
    pipeline or DAG that produces it has recorded an event."""
    assets = spec.airflow.assets
    if assets is None:
        return
    loc: Loc = ("airflow", "assets")
    tasks = {task.name: task for task in spec.tasks}
    producer: dict[str, str] = {}
    for name, kind in assets.outlets.items():
        where = (*loc, "outlets", name)
        if name not in tasks:
            known = ", ".join(tasks) or "none"
            yield doc.issue(where, f"unknown task {name!r} (tasks: {known})", key=True)
            continue
        if tasks[name].is_serving:
            yield doc.issue(
                where, f"{name!r} is a serving task; only session tasks produce artefacts", key=True
            )
            continue
        if kind in producer:
            yield doc.issue(
                where, f"the {kind} asset is already produced by {producer[kind]!r}; one task per kind"
            )
        producer.setdefault(kind, name)
    if assets.schedule is None:
        return
    if spec.airflow.schedule is not None:
        yield doc.issue((*loc, "schedule"), "give airflow.schedule or airflow.assets.schedule, not both")
    if not assets.schedule:
        yield doc.issue((*loc, "schedule"), "name at least one asset (an asset name or URI)")
    own = {asset_name(spec.dag_id, kind) for kind in ASSET_KINDS}
    own |= {asset_uri(spec.vfolder, spec.dag_id, kind) for kind in ASSET_KINDS}
    seen: set[str] = set()
    for index, entry in enumerate(assets.schedule):
        where = (*loc, "schedule", index)
        if not entry.strip() or entry != entry.strip() or len(entry) > ASSET_NAME_MAX:
            yield doc.issue(where, f"{entry!r} is not an asset name or URI")
        elif is_asset_uri(entry) and entry.split("://", 1)[0].lower() == "airflow":
            yield doc.issue(where, f"{entry!r}: the URI scheme 'airflow' is reserved by Airflow")
        elif entry in own:
            yield doc.issue(where, f"{entry!r} is this pipeline's own asset: each run would start the next")
        elif entry in seen:
            yield doc.issue(where, f"asset {entry!r} is listed twice", severity="warning")
        seen.add(entry)


def _check_params(spec: PipelineSpec, doc: YamlDocument, templates: list[tuple[Loc, str]]) -> Iterator[Issue]:
    """Declared params (FastTrack's ``params`` list and ``airflow.params``): names, each declared once,
    defaults that fit their schema; templates may read only declared params."""
    from airflow_provider_fasttrack.operators.session import SKIP_TASKS_PARAM

    built_in = {SKIP_TASKS_PARAM}  # the run parameter every pipeline DAG has; it cannot be declared again
    first: dict[str, str] = {}
    declared: list[tuple[Loc, Loc, bool, str, str, ParamSpec | PipelineParam]] = [
        (("params", index), ("params", index, "name"), False, f"params[{index}]", param.name, param)
        for index, param in enumerate(spec.params)
    ]
    declared += [
        (
            ("airflow", "params", name),
            ("airflow", "params", name),
            True,
            f"airflow.params.{name}",
            name,
            param,
        )
        for name, param in spec.airflow.params.items()
    ]
    for loc, name_loc, key, where, name, param in declared:
        if not PARAM_NAME.fullmatch(name):
            yield doc.issue(name_loc, f"{name!r} is not a param name (letters, digits, '_')", key=key)
        elif name in built_in:
            yield doc.issue(name_loc, f"{name!r} is a built-in param of every pipeline", key=key)
        elif name in first:
            yield doc.issue(name_loc, f"param {name!r} is declared twice (first at {first[name]})", key=key)
        first.setdefault(name, where)
        if param.default is None:
            continue
        try:
            jsonschema.validate(param.default, param.keywords())
        except jsonschema.ValidationError as exc:
            yield doc.issue((*loc, "default"), f"the default does not fit the param: {exc.message}")
        except jsonschema.SchemaError as exc:
            yield doc.issue(loc, f"not a valid param schema: {exc.message}")
    known = set(first) | built_in
    for loc, text in templates:
        for used in sorted(_params_read(text) - known):
            listed = ", ".join(sorted(first)) or "none"
            yield doc.issue(
                loc, f"params.{used} is not declared in params or airflow.params (declared: {listed})"
            )


def _check_secret_places(templates: list[tuple[Loc, str]], doc: YamlDocument) -> Iterator[Issue]:
    """``${{ secrets.NAME }}`` is resolved in environment values only; elsewhere it would reach Jinja."""
    for loc, text in templates:
        if loc[-2] != "envs" and SECRET_REF.search(text):
            yield doc.issue(loc, "secret references (${{ secrets.NAME }}) work only in environment values")


def _check_references(
    spec: PipelineSpec, doc: YamlDocument, policy: ReferencePolicy, templates: list[tuple[Loc, str]]
) -> Iterator[Issue]:
    """Templates read only the connections and variables the deployment allows."""
    if not policy.restricts:
        return
    for loc, text in templates:
        whose = f" of task {spec.tasks[int(loc[1])].name!r}" if loc[0] == "tasks" else ""
        for reason in policy.refusals(text):
            yield doc.issue(loc, f"the template{whose} {reason}")


def _templates(spec: PipelineSpec) -> Iterator[tuple[Loc, str]]:
    """Every text Airflow renders as a template: each ``template_fields`` entry of the task's request (session
    or service) and the Slack messages. The pipeline's own environment values, which every task's request
    holds, are given once."""
    for key, value in spec.environment.envs.items():
        yield ("environment", "envs", key), value
    for index, task in enumerate(spec.tasks):
        places = _template_places(("tasks", index), task)
        fields = ServiceRequest.template_fields if task.is_serving else SessionRequest.template_fields
        for name in fields:
            yield from places[name]  # a template field without a place here fails every pipeline's check
    slack = spec.airflow.notifications.slack
    for event in ("on_success", "on_failure"):
        message = getattr(slack, event, None) if slack else None
        if isinstance(message, str):
            yield ("airflow", "notifications", "slack", event), message
    for name, gate in spec.airflow.quality_gates.items():
        for field_name in ("key", "above"):
            yield ("airflow", "quality_gates", name, field_name), getattr(gate, field_name)
    for name, approval in spec.airflow.approvals.items():
        for place in ("subject", "body"):
            if (text := getattr(approval, place)) is not None:
                yield ("airflow", "approvals", name, place), text


def _template_places(loc: Loc, task: TaskSpec) -> dict[str, list[tuple[Loc, str]]]:
    """Where in the file each request template field of ``task`` comes from, with its text."""
    envs = [((*loc, "environment", "envs", key), value) for key, value in task.environment.envs.items()]
    command = [((*loc, "command"), task.command)]
    service = task.service
    return {
        "image": [((*loc, "environment", "image"), task.environment.image)],
        "command": command,
        "startup_command": command,
        "env": envs,
        "mounts": [((*loc, "mounts", position), mount) for position, mount in enumerate(task.mounts)],
        "resources": [
            ((*loc, "resources", slot), amount)
            for slot, amount in task.resources.items()
            if isinstance(amount, str)
        ],
        "name": [((*loc, "service", "name"), service.name)] if service else [],
        "model": [((*loc, "service", "model"), service.model)] if service else [],
        "vfolder_subpath": [((*loc, "service", "vfolder_subpath"), service.vfolder_subpath)]
        if service
        else [],
    }


def _params_read(text: str) -> set[str]:
    """Names read as ``params.<name>`` or ``params['<name>']`` in a template (nothing when it does not parse)."""
    if "params" not in text or ("{{" not in text and "{%" not in text):
        return set()
    try:
        tree = template_tree(text)
    except jinja2.TemplateSyntaxError:
        return set()  # reported where the text's syntax is checked
    names = {
        node.attr
        for node in tree.find_all(jinja2.nodes.Getattr)
        if isinstance(node.node, jinja2.nodes.Name) and node.node.name == "params"
    }
    for node in tree.find_all(jinja2.nodes.Getitem):
        if (
            isinstance(node.node, jinja2.nodes.Name)
            and node.node.name == "params"
            and isinstance(node.arg, jinja2.nodes.Const)
        ):
            names.add(str(node.arg.value))
    return names


def _unknown_fields(model: BaseModel, loc: Loc, doc: YamlDocument) -> Iterator[Issue]:
    for key in model.model_extra or {}:
        yield doc.issue((*loc, key), f"unknown field {key!r} is ignored", severity="warning", key=True)
    for name, key in _nested_fields(type(model)):
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _unknown_fields(value, (*loc, key), doc)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _unknown_fields(item, (*loc, key, index), doc)


@cache
def _nested_fields(model_type: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(attribute, key in the file) of each field of ``model_type`` whose type can hold models."""
    return tuple(
        (name, info.alias or name)
        for name, info in model_type.model_fields.items()
        if _may_hold_models(info.annotation)
    )


def _may_hold_models(annotation: Any) -> bool:
    if annotation is Any or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return True
    return any(_may_hold_models(arg) for arg in get_args(annotation))
