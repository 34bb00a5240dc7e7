"""Data-parallel fine-tuning over the two kernels of a multi-node backendai-lite session (CPU, gloo).

The batch command runs on the main kernel only, as on a cluster; ``python -m training launch`` starts the sub
kernel's torchrun over the session's SSH and its own, with the rendezvous from the cluster variables. One thread
per rank. The adapter must match a single-process run of the same recipe (``tiny_finetune``) in names and shapes
and load the same way.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from airflow_provider_fasttrack.lite.sandbox import namespaces_available
from tests.conftest import ROOT
from tests.lite.conftest import compute_session, create_session, session_logs, terminated, wait_for
from tests.training.model_fixtures import (
    TINY_TRAINING,
    model_cache_fixture,  # noqa: F401
    qa_dataset_fixture,  # noqa: F401
    smollm2_fixture,  # noqa: F401
    tiny_finetune_fixture,  # noqa: F401
)


def _tensor_shapes(adapter: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as tensors:
        return {name: tuple(tensors.get_slice(name).get_shape()) for name in tensors.keys()}  # noqa: SIM118


def test_two_kernels_finetune_data_parallel(  # type: ignore[no-untyped-def]
    lite, qa_dataset: Path, model_cache: Path, smollm2: str, tiny_finetune: Path
) -> None:
    if not namespaces_available()[0]:
        pytest.skip("the kernels' hostnames resolve only in private mount namespaces")
    with lite.client() as http:
        for name in ("mn-code", "mn-data", "mn-out"):
            assert http.post("/folders", json={"name": name}).status_code in (201, 400)
        shutil.rmtree(lite.vfolder_path("mn-out"), ignore_errors=True)
        lite.vfolder_path("mn-out").mkdir()
        shutil.copytree(
            ROOT / "training",
            lite.vfolder_path("mn-code") / "training",
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "samples"),
            dirs_exist_ok=True,
        )
        shutil.copytree(qa_dataset, lite.vfolder_path("mn-data"), dirs_exist_ok=True)
        step_args = " ".join(
            [
                "--preset smollm2-135m-cpu --dataset /home/work/data --output /pipeline/outputs",
                f"--model-cache {model_cache}",
                *TINY_TRAINING,
                "--set sft.max_steps=2 --set lora.r=8",
            ]
        )
        command = (
            "set -euo pipefail\n"
            "export PYTHONPATH=/home/work/code OMP_NUM_THREADS=1\n"
            f"python -m training launch finetune {step_args}\n"
        )
        config = {
            "resources": {"cpu": 1, "mem": "3g"},
            "mounts": ["mn-code", "mn-data", "mn-out"],
            "mount_map": {"mn-code": "code", "mn-data": "data", "mn-out": "/pipeline/outputs"},
        }
        created = create_session(
            http, command, config=config, image="python:3.11", clusterMode="multi-node", clusterSize=2
        )
        sid = created["sessionId"]
        wait_for(http, sid, terminated, timeout=300)
        logs = session_logs(http, sid)
        assert compute_session(http, sid)["result"] == "SUCCESS", logs[-6000:]

    # both ranks trained every step; the sub kernel's output reached main's log through SSH
    for rank in (0, 1):
        steps = re.findall(rf"\[rank {rank}/2\] training.finetune: step (\d)/2 ", logs)
        assert {"1", "2"} <= set(steps), logs[-6000:]
        assert re.search(rf"\[rank {rank}/2\] training.finetune: rank {rank} of 2: \d+ training rows", logs)
    output = lite.vfolder_path("mn-out")
    metrics = json.loads((output / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["global_step"]) == (2, 2)
    assert json.loads((tiny_finetune / "metrics.json").read_text())["world_size"] == 1

    # the same adapter as one process writes, and it loads the same way
    assert _tensor_shapes(output / "adapter") == _tensor_shapes(tiny_finetune / "adapter")
    parallel_config, single_config = (
        json.loads((run / "adapter" / "adapter_config.json").read_text()) for run in (output, tiny_finetune)
    )
    for config in (parallel_config, single_config):  # PEFT writes a set as a list, in no fixed order
        config["target_modules"] = sorted(config["target_modules"])
    assert parallel_config == single_config
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm2), output / "adapter")
    trained_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert trained_b and any(float(p.abs().sum()) > 0 for p in trained_b)
