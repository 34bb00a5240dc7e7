"""How the operator takes, templates and serialises its SessionRequest (no session runs here)."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_fasttrack.operators.session import BackendAISessionOperator
from airflow_provider_fasttrack.session_request import SessionRequest

START = pendulum.datetime(2026, 1, 1, tz="UTC")


def make_dag(**default_args: object) -> DAG:
    return DAG("request_api", schedule=None, start_date=START, default_args=default_args)


def test_fields_as_keywords_make_the_request_and_resources_stay_the_sessions() -> None:
    with make_dag():
        op = BackendAISessionOperator(
            task_id="t", image="python:3.11", command="true", resources={"cpu": 2}, cluster_size=2, retries=4
        )
    assert op.request == SessionRequest(
        image="python:3.11", command="true", resources={"cpu": 2}, cluster_size=2
    )
    assert op.resources is None  # Airflow's own executor resources are untouched
    assert op.retries == 4


def test_request_object_or_fields_not_both() -> None:
    request = SessionRequest(image="python:3.11", command="true")
    with make_dag():
        assert BackendAISessionOperator(task_id="a", request=request).request is request
        with pytest.raises(
            TypeError, match=r"give request= or the request's fields, not both \(got command\)"
        ):
            BackendAISessionOperator(task_id="b", request=request, command="false")
        with pytest.raises(TypeError, match="image"):
            BackendAISessionOperator(task_id="c", command="true")
        with pytest.raises(ValueError, match="cluster_mode"):
            BackendAISessionOperator(task_id="d", image="i", command="true", cluster_mode="mesh")


def test_default_args_fill_request_fields() -> None:
    with make_dag(image="python:3.11", env={"A": "1"}):
        op = BackendAISessionOperator(task_id="t", command="true")
    assert (op.request.image, op.request.env) == ("python:3.11", {"A": "1"})


def test_gpu_pool_slots_count_every_kernel() -> None:
    with make_dag():
        op = BackendAISessionOperator(
            task_id="t", image="i", command="c", resources={"cuda.shares": 5}, cluster_size=2, gpu_pool=True
        )
    assert (op.pool, op.pool_slots) == ("backendai-gpu-default", 100)


def test_request_fields_are_rendered_in_place() -> None:
    with make_dag() as dag:
        op = BackendAISessionOperator(
            task_id="t",
            image="python:{{ params.version }}",
            command="echo {{ run_id }}",
            env={"RUN": "{{ run_id }}"},
            mounts=["data-{{ params.version }}"],
            resources={"cpu": "{{ params.cpus }}"},
            tag="{{ run_id }}",  # not a template field: stays as written
        )
    op.render_template_fields({"run_id": "manual__1", "params": {"version": "3.11", "cpus": 2}})
    request = op.request
    assert (request.image, request.command, request.env) == (
        "python:3.11",
        "echo manual__1",
        {"RUN": "manual__1"},
    )
    assert (request.mounts, request.resources, request.tag) == (["data-3.11"], {"cpu": "2"}, "{{ run_id }}")
    assert dag.get_task("t") is op


def test_serialized_dag_and_rendered_fields_show_the_request() -> None:
    from airflow.serialization.helpers import serialize_template_field
    from airflow.serialization.serialized_objects import DagSerialization

    with make_dag() as dag:
        BackendAISessionOperator(
            task_id="t", image="python:3.11", command="echo {{ run_id }}", cluster_size=2
        )
    data = DagSerialization.to_dict(dag)
    (task,) = data["dag"]["tasks"]
    assert task["__var"]["request"]["command"] == "echo {{ run_id }}"
    assert task["__var"]["request"]["cluster_size"] == 2
    restored = DagSerialization.from_dict(data).get_task("t")
    assert list(restored.template_fields) == ["request"]
    rendered = serialize_template_field(dag.get_task("t").request, "request")
    assert isinstance(rendered, dict) and rendered["image"] == "python:3.11"


def test_xcom_arg_in_a_request_field_sets_the_upstream() -> None:
    with make_dag():
        first = BackendAISessionOperator(task_id="first", image="i", command="true")
        second = BackendAISessionOperator(task_id="second", image="i", command=first.output)
    assert second.upstream_task_ids == {"first"}


def test_mapped_over_a_request_field() -> None:
    with make_dag() as dag:
        BackendAISessionOperator.partial(task_id="m", image="python:3.11").expand(
            command=["echo 1", "echo 2"]
        )
    assert dag.get_task("m").is_mapped
