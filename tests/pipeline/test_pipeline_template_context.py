"""A deployment's allow-list of connections and variables holds in what pipeline templates can reach.

``tests/dags/pipelines/template-restriction.yaml`` holds one task per way around a check of the template text
(through ``ti``, ``task``, ``dag_run``, ``macros``, filters, computed names, a serving task's field). Each is
refused when the file is checked, and, rendered by a deployment whose configuration restricts them, fails its
task before any session or service exists.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import yaml

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.naming import session_name
from airflow_provider_fasttrack.pipeline import loader
from airflow_provider_fasttrack.pipeline.references import ReferencePolicy
from airflow_provider_fasttrack.pipeline.validate import load_pipeline, load_pipeline_text
from tests.conftest import ROOT, load_test_dag
from tests.helpers import SECRETS, lite_sessions_named

PIPELINE = ROOT / "tests" / "dags" / "pipelines" / "template-restriction.yaml"
ONLY_OPENAI = ReferencePolicy(connections=frozenset({"openai_default"}), variables=frozenset())


class Unchecked(ReferencePolicy):
    """A policy that lets every file through, whatever the configuration says."""

    @classmethod
    def from_airflow_config(cls) -> ReferencePolicy:
        return ReferencePolicy()


def task_names(path: Path = PIPELINE) -> list[str]:
    return [task["name"] for task in yaml.safe_load(path.read_text())["tasks"]]


REFUSED = [name for name in task_names() if name != "allowed"]


def test_every_way_around_is_refused_when_the_file_is_checked() -> None:
    with pytest.raises(PipelineSpecError) as caught:
        load_pipeline(PIPELINE, references=ONLY_OPENAI)
    lines = str(caught.value).splitlines()
    for index, name in enumerate(task_names()):
        mine = [line for line in lines if f"tasks[{index}]." in line]
        if name == "allowed":
            assert not mine, mine
        else:
            assert mine, f"{name} passed the check"
            assert mine[0].startswith("template-restriction.yaml:") and f"of task {name!r}" in mine[0]
    (subpath,) = [line for line in lines if "service.vfolder_subpath" in line]
    assert (
        "reads the connection 'backendai_default', which this deployment does not allow (openai_default)"
        in (subpath)
    )


@pytest.mark.parametrize(
    "template",
    [
        "{% include 'pipelines/demo-wordcount.yaml' %}",
        "{{ lipsum.__globals__ }}",
        "{% set c = conn %}{{ c.backendai_default.password }}",
        "{{ var.value.get(params.which) }}",
        "{{ conn.openai_default }}",
    ],
)
def test_more_ways_around_are_refused(template: str) -> None:
    task = {"name": "t", "type": "Custom Task", "command": "true", "environment": {"image": "x", "envs": {}}}
    task["environment"]["envs"] = {"VALUE": template}  # type: ignore[index]
    text = yaml.safe_dump({"name": "more", "tasks": [task]})
    with pytest.raises(
        PipelineSpecError, match=r"tasks\[0\]\.environment\.envs\.VALUE: the template of task 't'"
    ):
        load_pipeline_text(text, "more.yaml", references=ONLY_OPENAI)


@pytest.mark.usefixtures("airflow_db", "backendai_conn")
def test_a_restricting_deployment_fails_each_refused_task_before_its_session(  # type: ignore[no-untyped-def]
    lite, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    variable = f"db-{secrets.token_hex(12)}"
    SECRETS.add(variable)
    monkeypatch.setenv("AIRFLOW_VAR_DB_PASSWORD", variable)
    allowed = f"openai-{secrets.token_hex(12)}"
    SECRETS.add(allowed)
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPENAI_DEFAULT", json.dumps({"conn_type": "generic", "password": allowed})
    )
    # the file's check is left out (dag.test() parses the DAG file again): what is tested is the rendering
    monkeypatch.setattr(loader, "ReferencePolicy", Unchecked)
    monkeypatch.setenv("AIRFLOW__FASTTRACK__PIPELINE_CONNECTIONS", "openai_default")
    monkeypatch.setenv("AIRFLOW__FASTTRACK__PIPELINE_VARIABLES", "")
    dag = load_test_dag("template-restriction")

    dag_run = dag.test()

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {"allowed": "success", **dict.fromkeys(REFUSED, "failed")}, states
    for name in REFUSED:
        assert not lite_sessions_named(lite, session_name(dag.dag_id, dag_run.run_id, name)), name
    assert not lite_sessions_named(lite, "svc-subpath-probe")
    out = "".join(capfd.readouterr())
    for name in ("conn-get", "conn-item", "serve-subpath"):
        assert (
            f"Task {name}: the template reads the connection 'backendai_default', which this deployment does "
            "not allow (openai_default)"
        ) in out
    for name in ("var-json-get", "var-computed"):
        assert f"Task {name}: the template reads the variable 'db_password'" in out
    for value in (variable, allowed, lite.secret_key):
        assert value not in out
