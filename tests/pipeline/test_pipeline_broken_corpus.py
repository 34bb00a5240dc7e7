"""Every file in ``broken/`` fails with one line per problem: file:line:column, field path, reason.

The offending line of each file carries the comment ``# <-``; the first error must point at that line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.validate import load_pipeline

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((Path(__file__).resolve().parent / "broken").glob("*.yaml"))
NO_FIELD = {
    "yaml_syntax",
    "not_mapping",
    "integer_too_long",
}  # refused while parsing: there is no field to name

#: (field path of the first error, a fragment of its reason)
EXPECTED = {
    "airflow_bad_cron": ("airflow.schedule", "is not a cron expression"),
    "airflow_bad_dag_id": ("airflow.dag_id", "is not a DAG id"),
    "airflow_dag_id_newline": ("airflow.dag_id", "'demo\\n' is not a DAG id"),
    "airflow_bad_preset": ("airflow.schedule", "is not a schedule preset"),
    "airflow_max_runs_no_schedule": ("airflow.max_runs", "needs a cron or preset schedule"),
    "airflow_max_runs_no_start": ("airflow.max_runs", "needs start_date"),
    "airflow_max_runs_zero": ("airflow.max_runs", "greater than or equal to 1"),
    "airflow_pool_policy": ("airflow.pool_policy", "'all' is not allowed"),
    "airflow_retries_negative": ("airflow.retries", "greater than or equal to 0"),
    "airflow_retry_delay_inf": ("airflow.retry_delay_seconds", "finite number"),
    "airflow_start_date": ("airflow.start_date", "valid datetime"),
    "airflow_timezone": ("airflow.timezone", "is not a time zone"),
    "airflow_unknown_field": ("airflow.schedul", "unknown field"),
    "airflow_vfolder": ("airflow.vfolder", "is not a vfolder name"),
    "airflow_vfolder_newline": ("airflow.vfolder", "'data\\n' is not a vfolder name"),
    "command_template": ("tasks[0].command", "template syntax error"),
    "bad_cluster_mode": ("tasks[0].cluster_mode", "'multi' is not allowed"),
    "bad_type": ("tasks[0].type", "'Batch' is not allowed"),
    "blank_command": ("tasks[0].command", "command is empty"),
    "cluster_size_word": ("tasks[0].cluster_size", "valid integer"),
    "cluster_size_zero": ("tasks[0].cluster_size", "greater than or equal to 1"),
    "cpu_fraction": ("tasks[1].resources.cpu", "not a whole number of CPU cores"),
    "cpu_word": ("tasks[0].resources.cpu", "not a whole number of CPU cores"),
    "cpu_zero": ("tasks[0].resources.cpu", "at least 1 cpu"),
    "cycle": ("tasks[0].dependencies", "dependency cycle: prepare -> train -> prepare"),
    "dependencies_not_list": ("tasks[1].dependencies", "valid list"),
    "duplicate_key": ("tasks[0].command", "duplicate key 'command'"),
    "duplicate_task": ("tasks[1].name", "duplicate task name 'prepare'"),
    "empty_command": ("tasks[0].command", "command is empty"),
    "env_name": ("tasks[0].environment.envs.1BAD", "not an environment variable name"),
    "env_name_newline": ("tasks[0].environment.envs['TOKEN_DIR\\n']", "not an environment variable name"),
    "env_null": ("environment.envs.TOKEN", "needs a value"),
    "env_template": ("environment.envs.TOKEN", "template syntax error"),
    "integer_too_long": ("", "the integer has more than 4300 digits"),
    "image_space": ("tasks[0].environment.image", "not an image reference"),
    "mem_gb": ("tasks[1].resources.mem", "'16gb' is not a memory size (use 16g or 512m)"),
    "missing_command": ("tasks[0].command", "command is empty"),
    "missing_image": ("tasks[0].environment.image", "required field is missing"),
    "missing_name": ("name", "required field is missing"),
    "param_default_type": ("airflow.params.max_steps.default", "'many' is not of type 'integer'"),
    "param_name": ("airflow.params.max-steps", "is not a param name"),
    "param_undeclared": ("tasks[0].command", "params.max_step is not declared in params or airflow.params"),
    "params_default_type_26": ("params[0].default", "'three' is not of type 'integer'"),
    "params_duplicate": ("params[1].name", "param 'steps' is declared twice (first at params[0])"),
    "params_no_name": ("params[0].name", "required field is missing"),
    "params_not_list": ("params", "valid list"),
    "continue_gate_name": (
        "tasks[1].name",
        "is the name of the task that continue_on_failure adds after tasks[0]",
    ),
    "continue_word": ("tasks[0].continue_on_failure", "valid boolean"),
    "ownership_scope": ("ownership.scope", "'team' is not allowed"),
    "ownership_two_domains": ("ownership.domain", "differs from domain_name 'research'"),
    "retry_attempts_bool": ("tasks[0].retry.max_attempts", "must be a whole number"),
    "retry_attempts_fraction": ("tasks[0].retry.max_attempts", "valid integer"),
    "retry_attempts_zero": ("tasks[0].retry.max_attempts", "greater than or equal to 1"),
    "retry_delay_negative": ("tasks[0].retry.delay", "greater than or equal to 0"),
    "retry_delay_word": ("tasks[0].retry.delay", "'soon' is not a duration such as '30s', '5m'"),
    "retry_no_attempts": ("tasks[0].retry.max_attempts", "required field is missing"),
    "secret_in_command": (
        "tasks[0].command",
        "secret references (${{ secrets.NAME }}) work only in environment",
    ),
    "secret_ref_typo": ("environment.envs.API_KEY", "'${{ secret.API_KEY }}' is not a secret reference"),
    "type_deployment": ("tasks[1].type", "a serving task needs a 'service:' block"),  # 26.x's spelling
    "param_unknown_keyword": ("airflow.params.max_steps.typ", "unknown field"),
    "mount_dotdot": ("tasks[1].mounts[0]", "is not a mount alias"),
    "mount_empty_alias": ("tasks[1].mounts[0]", "alias after ':' is empty"),
    "mount_space": ("tasks[1].mounts[0]", "is not a mount"),
    "mount_twice": ("tasks[1].mounts[1]", "mounted twice"),
    "multi_node_size1": ("tasks[0].cluster_size", "multi-node cluster needs cluster_size >= 2"),
    "no_tasks": ("tasks", "at least one task"),
    "not_mapping": ("", "must be a mapping"),
    "resources_not_mapping": ("tasks[0].resources", "valid dictionary"),
    "self_cycle": ("tasks[1].dependencies", "dependency cycle: train -> train"),
    "serving_task": ("tasks[1].type", "a serving task needs a 'service:' block"),
    "service_bad_name": ("tasks[0].service.name", "'ab' is not a service name"),
    "service_no_model": ("tasks[0].service.model", "the model folder is missing"),
    "service_unknown_variant": ("tasks[0].service.runtime_variant", "unknown runtime variant 'tensorrt'"),
    "service_mount_destination": ("tasks[0].service.model_mount_destination", "must be /models"),
    "service_subpath_absolute": ("tasks[0].service.vfolder_subpath", "'/etc/models' is not a folder inside"),
    "service_subpath_dotdot": ("tasks[0].service.vfolder_subpath", "(a relative path without '..')"),
    "shares_negative": ("tasks[1].resources['cuda.shares']", "cannot be negative"),
    "shares_word": ("tasks[1].resources['cuda.shares']", "not a number of fractional GPUs"),
    "shmem_bad": ("tasks[1].resource_opts.shmem", "is not a memory size"),
    "shmem_too_big": ("tasks[1].resource_opts.shmem", "must be smaller than mem"),
    "skip_word": ("tasks[0].skip", "valid boolean"),
    "slack_template": ("airflow.notifications.slack.on_success", "template syntax error"),
    "slack_unknown_field": ("airflow.notifications.slack.username", "unknown field"),
    "task_name_bad": ("tasks[0].name", "is not a task name"),
    "task_name_newline": ("tasks[0].name", "'prepare\\n' is not a task name"),
    "type_empty": (
        "tasks[0].type",
        "'' is not allowed (use 'Custom Task', 'custom', 'default', 'deployment' or 'serving')",
    ),
    "type_null": (
        "tasks[0].type",
        "None is not allowed (use 'Custom Task', 'custom', 'default', 'deployment' or 'serving')",
    ),
    "type_zero": (
        "tasks[0].type",
        "0 is not allowed (use 'Custom Task', 'custom', 'default', 'deployment' or 'serving')",
    ),
    "unknown_dependency": ("tasks[1].dependencies[0]", "unknown dependency 'prepair'"),
    "unknown_slot": ("tasks[1].resources.gpu", "unknown resource slot 'gpu'"),
    "yaml_syntax": ("", "YAML syntax error"),
}


def test_corpus_is_large_and_fully_described() -> None:
    assert len(BROKEN) >= 30
    assert {p.stem for p in BROKEN} == set(EXPECTED)


def _marker_line(path: Path) -> int:
    lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if "# <-" in line]
    assert len(lines) == 1, f"{path.name} must mark exactly one line"
    return lines[0]


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_pipeline_gives_one_line_error(path: Path) -> None:
    with pytest.raises(PipelineSpecError) as info:
        load_pipeline(path)
    first = info.value.issues[0]
    field, fragment = EXPECTED[path.stem]
    text = str(first)
    assert "\n" not in text and "Traceback" not in text
    assert (first.file, first.line) == (path.name, _marker_line(path)), text
    if path.stem in NO_FIELD:
        assert re.match(rf"^{re.escape(path.name)}:\d+:\d+: \S", text), text
    else:
        assert text.startswith(f"{path.name}:{first.line}:{first.column} {field}: "), text
    assert fragment in text


def test_validate_cli_reports_every_file_without_traceback(run_cli) -> None:
    code, out, err = run_cli("validate", *map(str, BROKEN))
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert "Traceback" not in err
    for path in BROKEN:
        mine = [line for line in lines if line.startswith(f"{path}:")]
        assert mine, f"no error line for {path.name}"
        assert all(re.match(rf"^{re.escape(str(path))}:\d+:\d+:? ", line) for line in mine)
    assert len(lines) == sum(1 for line in lines if re.match(r"^\S+\.yaml:\d+:\d+:? ", line))


def test_console_script_exit_status(example_path: Path) -> None:
    """The installed entry point's module, run as a process: non-zero on error, zero on success."""
    command = [sys.executable, "-m", "airflow_provider_fasttrack.cli", "validate"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AIRFLOW__CORE__UNIT_TEST_MODE": "False"}
    bad = subprocess.run([*command, str(BROKEN[0])], capture_output=True, text=True, env=env, cwd=ROOT)
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"{BROKEN[0]}:") and "Traceback" not in bad.stderr
    good = subprocess.run([*command, str(example_path)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert good.returncode == 0, good.stderr
    assert good.stdout == f"{example_path}: ok (4 tasks, DAG speech-asr)\n"
