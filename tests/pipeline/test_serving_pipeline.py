"""Pipelines that end in a model service and a task that queries it, run with dag.test() on backendai-lite."""

from __future__ import annotations

import pytest

from tests.conftest import load_test_dag
from tests.helpers import lite_sessions_named, session_processes, wait_for
from tests.model_service import write_echo_model
from tests.training.model_fixtures import model_cache_fixture, smollm2_fixture  # noqa: F401  (the real model)

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")


def states(dag_run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def assert_replicas_gone(lite, service_name: str) -> None:  # type: ignore[no-untyped-def]
    replicas = lite_sessions_named(lite, f"svc-{service_name}")
    assert replicas, "the service had replica sessions"
    for session in replicas:
        wait_for(lambda s=session: not session_processes(s["id"]), timeout=20)


def test_the_query_task_gets_an_answer_and_the_ephemeral_service_is_gone(lite, hook) -> None:  # type: ignore[no-untyped-def]
    write_echo_model(lite, "echo-model", greeting="Served from echo-model:")
    dag_run = load_test_dag("serve-and-query").test()
    assert states(dag_run) == {"serve": "success", "query": "success", "serve-teardown": "success"}
    assert dag_run.state == "success"
    query = dag_run.get_task_instance("query")
    assert query.xcom_pull(task_ids="query") == {"answer": "Served from echo-model: What is FOB?"}
    served = query.xcom_pull(task_ids="serve")
    assert served["service_endpoint"].endswith("/serve/" + served["service_id"])
    assert "token" not in str(served).lower()
    assert hook.list_services() == []
    assert_replicas_gone(lite, served["service_name"])


def test_a_failed_run_deletes_its_ephemeral_service_too(lite, hook) -> None:  # type: ignore[no-untyped-def]
    write_echo_model(lite, "echo-model")
    dag_run = load_test_dag("serve-and-query").test(run_conf={"fail": True})
    assert states(dag_run) == {"serve": "success", "query": "failed", "serve-teardown": "success"}
    assert dag_run.state == "failed"
    assert hook.list_services() == []


def test_a_kept_service_is_reused_by_the_next_run(lite, hook) -> None:  # type: ignore[no-untyped-def]
    write_echo_model(lite, "echo-model")
    first = load_test_dag("serve-keep").test()
    second = load_test_dag("serve-keep").test()
    try:
        assert first.state == second.state == "success"
        ids = [
            run.get_task_instance("serve").xcom_pull(task_ids="serve")["service_id"]
            for run in (first, second)
        ]
        assert ids[0] == ids[1]
        assert [s["name"] for s in hook.list_services()] == ["echo-kept"]
        assert second.get_task_instance("serve").xcom_pull(task_ids="serve", key="service_created") is False
    finally:
        for service in hook.list_services():
            hook.delete_service(service["id"])


SMOLLM2_DEFINITION = """\
models:
  - name: smollm2
    model_path: /models
    service:
      start_command: ["transformers", "serve", "{model_path}", "--host", "127.0.0.1", "--port", "8000",
                      "--device", "cpu", "--dtype", "float32"]
      port: 8000
      health_check: {path: /health, interval: 0.5, initial_delay: 0, max_retries: 600, max_wait_time: 10}
"""


def test_a_real_model_served_by_transformers_serve_answers(lite, hook, smollm2) -> None:  # type: ignore[no-untyped-def]
    """SmolLM2 from a model folder, served by ``transformers serve`` (OpenAI API), asked through the OpenAI client."""
    import os
    import shutil
    from pathlib import Path

    with lite.client() as http:
        http.post("/folders", json={"name": "smollm2-model", "usage_mode": "model"})
    folder = lite.vfolder_path("smollm2-model")
    for source in Path(smollm2).iterdir():
        target = folder / source.name
        if source.is_file() and not target.exists():
            try:
                os.link(source, target)  # the weights are large: a hard link where the file system allows
            except OSError:
                shutil.copyfile(source, target)
    (folder / "model-definition.yaml").write_text(SMOLLM2_DEFINITION)
    dag_run = load_test_dag("serve-real-model").test()
    assert states(dag_run) == {"serve": "success", "ask": "success", "serve-teardown": "success"}
    answer = dag_run.get_task_instance("ask").xcom_pull(task_ids="ask")["answer"]
    assert isinstance(answer, str) and answer.strip()
    assert hook.list_services() == []
