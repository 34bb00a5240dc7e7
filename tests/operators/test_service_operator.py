"""The model-service operator against backendai-lite: checks before creation, kill, trigger, faults."""

from __future__ import annotations

import asyncio
import signal

import pytest

from airflow_provider_fasttrack.exceptions import ModelDefinitionError, ServiceFailedError
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.lite.testing import LiteServer
from airflow_provider_fasttrack.operators.service import BackendAIModelServiceOperator
from airflow_provider_fasttrack.service_request import ServiceRequest
from airflow_provider_fasttrack.triggers.service import BackendAIServiceTrigger
from tests.dags.service_dags import STUCK_MODEL
from tests.helpers import LOG_FILES, SECRETS, connection_env, lite_sessions_named, session_processes, wait_for
from tests.model_service import MODEL_DEFINITION, write_echo_model
from tests.operators.test_kill_and_durability import mark_task_failed, start_dag_test

pytestmark = pytest.mark.usefixtures("airflow_db", "backendai_conn")


def operator(**fields: object) -> BackendAIModelServiceOperator:
    request = ServiceRequest(**{"name": "checked", "model": "echo-model", "image": "python:3.11", **fields})  # type: ignore[arg-type]
    return BackendAIModelServiceOperator(task_id="serve", request=request)


def test_a_missing_model_folder_fails_before_any_service(lite, hook) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        ServiceFailedError, match=r"^Task serve: the model folder 'no-such-model' does not exist"
    ):
        operator(model="no-such-model")._check_folders()
    assert hook.find_service("checked") is None


def test_a_general_folder_fails_before_any_service(lite, hook) -> None:  # type: ignore[no-untyped-def]
    """Backend.AI serves only model-type vfolders: the task says which folder is of which type, and starts nothing."""
    write_echo_model(lite, "extra-model")
    hook.ensure_vfolder("general-weights")
    folder = lite.vfolder_path("general-weights")
    # a usable model, in a folder of the wrong type
    for name in ("server.py", "greeting.txt", "model-definition.yaml"):
        (folder / name).write_bytes((lite.vfolder_path("extra-model") / name).read_bytes())
    with pytest.raises(
        ServiceFailedError,
        match=r"^Task serve: the model folder 'general-weights' is a 'general' vfolder; .*usage_mode: model",
    ):
        operator(model="general-weights")._check_folders()
    with pytest.raises(
        ServiceFailedError, match=r"^Task serve: the mount 'extra-model' is a model-type vfolder"
    ):
        operator(model="extra-model", extra_mounts=["extra-model:/extra"])._check_folders()
    assert hook.find_service("checked") is None


def test_a_custom_service_needs_a_model_definition(lite, hook) -> None:  # type: ignore[no-untyped-def]
    write_echo_model(lite, "bare-model", definition=None)
    with pytest.raises(ServiceFailedError, match="has no model-definition.yaml or model-definition.yml"):
        operator(model="bare-model")._check_folders()
    # another variant brings its own server: no model definition needed
    operator(model="bare-model", runtime_variant="vllm")._check_folders()


def test_the_model_definition_is_looked_up_in_the_vfolder_subpath(lite, hook) -> None:  # type: ignore[no-untyped-def]
    write_echo_model(lite, "runs-model", definition=None)  # none at the top of the vfolder
    run = lite.vfolder_path("runs-model") / "served" / "run-1"
    run.mkdir(parents=True, exist_ok=True)
    (run / "model-definition.yaml").write_text(MODEL_DEFINITION)
    operator(model="runs-model", vfolder_subpath="served/run-1")._check_folders()
    with pytest.raises(ServiceFailedError, match="has no model-definition.yaml"):
        operator(model="runs-model", vfolder_subpath="served/run-2")._check_folders()
    with pytest.raises(
        ServiceFailedError, match=r"^Task serve: vfolder_subpath 'served/\.\./\.\.' is not a folder inside"
    ):
        operator(model="runs-model", vfolder_subpath="served/../..")._check_folders()
    assert hook.find_service("checked") is None


def test_a_model_definition_without_start_command_names_file_line_and_field(lite) -> None:  # type: ignore[no-untyped-def]
    broken = MODEL_DEFINITION.replace("      start_command:", "      # start_command:")
    write_echo_model(lite, "no-command-model", definition=broken)
    with pytest.raises(ModelDefinitionError) as info:
        operator(model="no-command-model")._check_folders()
    assert str(info.value).startswith(
        "no-command-model:/model-definition.yaml:5:7 models[0].service.start_command: required field is missing"
    )


def test_trigger_on_kill_deletes_the_service_it_created(lite, hook) -> None:  # type: ignore[no-untyped-def]
    write_echo_model(lite, "echo-model")
    service_id = hook.create_service(ServiceRequest("trigger-kill", "echo-model", "python:3.11").body())[
        "endpoint_id"
    ]
    sessions = wait_for(
        lambda: [r["session_id"] for r in hook.get_service(service_id)["active_routes"]], timeout=60
    )
    kept = BackendAIServiceTrigger(service_id, "backendai_default", delete_on_kill=False)
    asyncio.run(kept.on_kill())
    assert hook.get_service(service_id)["endpoint_id"] == service_id  # a reused service is not this task's
    asyncio.run(BackendAIServiceTrigger(service_id, "backendai_default", delete_on_kill=True).on_kill())
    assert hook.find_service("trigger-kill") is None
    wait_for(lambda: not any(session_processes(s) for s in sessions), timeout=15)


def test_killing_the_task_deletes_its_service(lite, hook, tmp_path) -> None:  # type: ignore[no-untyped-def]
    never_healthy = MODEL_DEFINITION.replace("path: /health", "path: /not-there")
    write_echo_model(lite, STUCK_MODEL, definition=never_healthy)
    log = tmp_path / "worker.log"
    worker = start_dag_test("svc_kill_sync", output=log)
    try:
        wait_for(lambda: "svc-kill-victim" in log.read_text(errors="replace"), timeout=90)
        assert hook.find_service("svc-kill-victim"), log.read_text()[-3000:]
        mark_task_failed("svc_kill_sync", "victim")
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert "the service was deleted" in log.read_text(errors="replace"), log.read_text()[-3000:]
    assert hook.find_service("svc-kill-victim") is None
    for session in lite_sessions_named(lite, "svc-svc-kill-victim-"):
        wait_for(lambda s=session: not session_processes(s["id"]), timeout=15)


@pytest.fixture
def faulty(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    faults = {"error_rate": 0.3, "error_phase": "both", "retry_after_seconds": 0.05, "seed": 11}
    with LiteServer(data_dir=tmp_path / "lite", faults=faults) as server:
        SECRETS.add(server.secret_key)
        LOG_FILES.append(server.log_path)
        monkeypatch.setenv("AIRFLOW_CONN_BACKENDAI_FAULTY", connection_env(server))
        yield server


def test_faults_never_make_a_second_service(faulty) -> None:  # type: ignore[no-untyped-def]
    hook = BackendAIHook("backendai_faulty", retry_limit=12, retry_delay=0.02, max_retry_delay=0.2)
    write_echo_model(faulty, "echo-model")
    body = ServiceRequest("faulty-svc", "echo-model", "python:3.11", replicas=1).body()
    ids = {hook.create_service(body)["endpoint_id"] for _ in range(4)}  # retried and repeated creations
    assert len(ids) == 1
    assert [s["name"] for s in hook.list_services()] == ["faulty-svc"]
    service_id = ids.pop()
    wait_for(lambda: hook.get_service(service_id)["service_endpoint"], timeout=60)
    assert hook.service_token(service_id)
    assert hook.delete_service(service_id) in (True, False)  # a lost answer's retry finds it gone
    assert hook.list_services() == []
    assert hook.retries >= 3
    hook.close()
