"""The hook's vfolder calls against each server: create (general and model-type), list, upload, files, download, delete."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_fasttrack.exceptions import BackendAIBadRequestError, BackendAINotFoundError
from airflow_provider_fasttrack.hooks.backendai import VFolderUsageModeError
from tests.contract.conftest import Backend


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def listed(hook: Any, name: str) -> dict[str, Any]:
    return next(folder for folder in hook.list_vfolders() if folder["name"] == name)


def test_general_and_model_folders_report_their_usage_mode(backend: Backend, contract_hook: Any) -> None:
    general, model = unique("vf-general"), unique("vf-model")
    contract_hook.ensure_vfolder(general)
    contract_hook.ensure_vfolder(model, usage_mode="model")
    contract_hook.ensure_vfolder(model, usage_mode="model")  # exists already: nothing to do
    assert listed(contract_hook, general)["usage_mode"] == "general"
    assert listed(contract_hook, model)["usage_mode"] == "model"
    assert contract_hook.vfolder_info(model)["usage_mode"] == "model"
    assert contract_hook.vfolder_info(general)["usage_mode"] == "general"
    for name in (general, model):
        contract_hook.delete_vfolder(name)
        assert deleted(contract_hook, name)


def deleted(hook: Any, name: str) -> bool:
    """Gone from the caller's list (backendai-lite), or listed in the trash bin (the manager: ``delete-*``)."""
    return all(
        folder["name"] != name or str(folder.get("status", "")).startswith("delete-")
        for folder in hook.list_vfolders()
    )


def test_a_model_folder_is_not_made_of_a_general_one(backend: Backend, contract_hook: Any) -> None:
    """Backend.AI cannot change a folder's usage mode: asking for a model folder that exists as a general one
    is an error that names the folder and its type, and the folder stays as it was."""
    name = unique("vf-wrong-type")
    contract_hook.ensure_vfolder(name)
    with pytest.raises(VFolderUsageModeError, match=rf"{name}.*'general'.*'model'"):
        contract_hook.ensure_vfolder(name, usage_mode="model")
    assert listed(contract_hook, name)["usage_mode"] == "general"
    contract_hook.delete_vfolder(name)


def test_an_unknown_usage_mode_is_refused(backend: Backend, contract_hook: Any) -> None:
    name = unique("vf-bad-mode")
    with pytest.raises(BackendAIBadRequestError):
        contract_hook.create_vfolder(name, usage_mode="models")
    assert all(folder["name"] != name for folder in contract_hook.list_vfolders())


def test_files_round_trip_through_upload_listing_download_and_delete(
    backend: Backend, contract_hook: Any
) -> None:
    name = unique("vf-files")
    contract_hook.ensure_vfolder(name, usage_mode="model")
    payload = bytes(range(256)) * 1024 + b"tail"  # 256 KiB and 4 bytes, sent in several tus chunks
    contract_hook.upload_file(name, "weights/part.bin", payload, chunk_size=64 * 1024)
    contract_hook.upload_file(name, "model-definition.yaml", b"models: []\n")
    top = {item["name"]: item for item in contract_hook.list_files(name, "")}
    assert top["model-definition.yaml"]["size"] == len(b"models: []\n")
    assert top["weights"]["type"] == "DIRECTORY"
    inner = contract_hook.list_files(name, "weights")
    assert [(item["name"], item["size"]) for item in inner] == [("part.bin", len(payload))]
    assert contract_hook.download_file(name, "weights/part.bin") == payload
    with pytest.raises(BackendAINotFoundError):
        contract_hook.download_file(name, "weights/missing.bin")
    contract_hook.delete_vfolder(name)
    assert deleted(contract_hook, name)
    if backend.name == "lite":  # the manager keeps a deleted folder in its trash bin until it is purged
        with pytest.raises(BackendAINotFoundError):
            contract_hook.list_files(name, "")
        with pytest.raises(BackendAINotFoundError):
            contract_hook.delete_vfolder(name)
