"""The hook's model-service calls against each server: create, list, delete, and what each server refuses.

Backend.AI's manager creates the endpoint but keeps it deploying (it needs the app-proxy, which the test manager
does not run), so what follows a create there is checked on backendai-lite only.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_fasttrack.exceptions import BackendAIBadRequestError, BackendAINotFoundError
from airflow_provider_fasttrack.service_request import ServiceRequest
from tests.contract.conftest import Backend
from tests.helpers import wait_for
from tests.model_service import ECHO_SERVER, MODEL_DEFINITION

#: above the test image's minimum memory plus the default shared memory (the manager checks both)
RESOURCES = {"cpu": 1, "mem": "512m"}
#: the harness seeds the runtime variants into the database as `schema oneshot` leaves them out, without the
#: permission rows the manager's own write path adds, so a USER's lookup of `custom` is refused
NO_RUNTIME_VARIANT = (
    "a USER's POST /services stops at the runtime-variant lookup (400 'Cannot resolve the given runtime_variant "
    "key'): the harness's seeded variants have no permission rows"
)
NO_APP_PROXY = "the manager keeps a service deploying without Backend.AI's app-proxy"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def echo_folder(hook: Any, *, usage_mode: str | None = "model") -> str:
    """A vfolder holding the echo server and its model definition (created model-type unless told)."""
    name = unique("svc-folder")
    if usage_mode is None:
        hook.ensure_vfolder(name)
    else:
        hook.ensure_vfolder(name, usage_mode=usage_mode)
    hook.upload_file(name, "server.py", ECHO_SERVER.encode())
    hook.upload_file(name, "greeting.txt", b"Echo:\n")
    hook.upload_file(name, "model-definition.yaml", MODEL_DEFINITION.encode())
    return name


def body(backend: Backend, hook: Any, name: str, model: str, **fields: Any) -> dict[str, Any]:
    request = ServiceRequest(name=name, model=model, image=backend.image, resources=RESOURCES, **fields)
    return request.body(defaults=hook.settings)


def test_a_service_on_a_general_folder_is_refused(backend: Backend, contract_hook: Any) -> None:
    folder = echo_folder(contract_hook, usage_mode=None)  # a model definition, but not a model folder
    name = unique("svc-general")
    with pytest.raises(BackendAINotFoundError, match="(?i)cannot find model folder"):
        contract_hook.create_service(body(backend, contract_hook, name, folder))
    assert contract_hook.find_service(name) is None


def test_a_model_folder_is_not_an_extra_mount(backend: Backend, contract_hook: Any) -> None:
    model, extra = echo_folder(contract_hook), echo_folder(contract_hook)
    name = unique("svc-extra")
    with pytest.raises(BackendAIBadRequestError, match="MODEL type VFolders cannot be added"):
        ids = {
            str(f["name"]): str(f["id"]) for f in contract_hook.list_vfolders()
        }  # keyed by id, as the operator does
        request = ServiceRequest(
            name=name, model=model, image=backend.image, resources=RESOURCES, extra_mounts=[f"{extra}:/data"]
        )
        contract_hook.create_service(request.body(defaults=contract_hook.settings, extra_mount_ids=ids))
    assert contract_hook.find_service(name) is None


def test_a_service_of_a_missing_folder_is_not_found(backend: Backend, contract_hook: Any) -> None:
    with pytest.raises(BackendAINotFoundError):
        contract_hook.create_service(body(backend, contract_hook, unique("svc-nofolder"), unique("missing")))


def test_a_service_is_created_listed_and_deleted(backend: Backend, contract_hook: Any) -> None:
    backend.skip_unless("lite", why=NO_RUNTIME_VARIANT)
    folder = echo_folder(contract_hook)
    name = unique("svc-life")
    answer = contract_hook.create_service(body(backend, contract_hook, name, folder))
    service_id = str(answer["endpoint_id"])
    try:
        assert answer["created"] is True
        assert contract_hook.find_service(name)["id"] == service_id
        again = contract_hook.create_service(body(backend, contract_hook, name, folder))
        assert again["created"] is False and str(again["endpoint_id"]) == service_id
        backend.skip_unless("lite", why=NO_APP_PROXY)
        info = wait_for(lambda: (i := contract_hook.get_service(service_id))["service_endpoint"] and i, 60)
        assert info["name"] == name and info["endpoint_id"] == service_id
        assert contract_hook.delete_service(service_id) is True
        assert contract_hook.find_service(name) is None
        assert contract_hook.delete_service(service_id) is False
        with pytest.raises(BackendAINotFoundError):
            contract_hook.get_service(service_id)
    finally:
        contract_hook.delete_service(service_id)  # False when already gone
