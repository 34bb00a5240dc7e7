"""Continual pre-training of SmolLM2-135M offline on the English sample's domain text: a few steps, resume from a
checkpoint, the held-out facts kept out, and the written model as ``finetune``'s base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Fixtures (pytest registers them under their ``name``).
from tests.training.model_fixtures import (
    TINY_TRAINING,
    model_cache_fixture,  # noqa: F401
    qa_dataset_fixture,  # noqa: F401
    smollm2_fixture,  # noqa: F401
)
from training.pretrain import main
from training.results import RESULT_KEYS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "training" / "samples" / "en"
DOMAIN_TEXT = [SAMPLE / "transcript_raw", SAMPLE / "exam_data", SAMPLE / "term_data"]
TINY_PRETRAINING = [
    *("--set", "sft.max_length=64"),
    *("--set", "sft.per_device_train_batch_size=2"),
    *("--set", "sft.per_device_eval_batch_size=16"),
    *("--set", "sft.logging_steps=1"),
    *("--set", "lora.r=4"),
    *("--set", "lora.lora_alpha=8"),
]


def _argv(output: Path, cache: Path, *extra: str) -> list[str]:
    inputs = [arg for folder in DOMAIN_TEXT for arg in ("--input", str(folder))]
    return [*inputs, "--output", str(output), "--model-cache", str(cache), *TINY_PRETRAINING, *extra]


def test_pretrain_resumes_keeps_held_out_facts_out_and_feeds_finetune(
    qa_dataset: Path, model_cache: Path, smollm2: str, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    from training import finetune

    output = tmp_path / "pretrain"
    exclude = ("--exclude", str(qa_dataset), "--exclude", "en")
    # First run stops after 2 steps, as an interrupted run would leave it.
    assert (
        main(_argv(output, model_cache, *exclude, "--set", "sft.max_steps=2", "--set", "sft.save_steps=1"))
        == 0
    )
    first = json.loads((output / "result.json").read_text())
    assert first["global_step"] == 2 and set(first) == RESULT_KEYS["pretrain"]
    assert (output / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").is_file()
    assert first["perplexity_before"] > 1 and first["perplexity_after"] > 1
    assert first["documents_validation"] > 0 and first["documents_train"] > first["documents_validation"]

    assert first["documents_excluded"] > 0  # the held-out facts (test below)

    # Resumed: continues from checkpoint-2 to step 3 (the history before the interruption is kept).
    assert main(_argv(output, model_cache, *exclude, "--set", "sft.max_steps=3")) == 0
    second = json.loads((output / "metrics.json").read_text())
    assert second["global_step"] == 3 and second["resumed_from"].endswith("checkpoint-2")
    state = json.loads((output / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2, 3]

    # The written model is the base with the trained LoRA merged in: a full model, other weights than the base.
    model_dir = output / "model"
    assert not (model_dir / "adapter_config.json").exists()
    pretrained = load_file(str(model_dir / "model.safetensors"))
    original = load_file(str(Path(smollm2) / "model.safetensors"))
    name = next(k for k in original if k.endswith("self_attn.q_proj.weight"))
    assert pretrained[name].shape == original[name].shape and not torch.equal(
        pretrained[name], original[name]
    )
    assert json.loads((model_dir / "config.json").read_text()).get("use_cache", True) is True

    # finetune takes the pretrain output folder as its base
    tuned = tmp_path / "finetune"
    argv = ["--dataset", str(qa_dataset), "--output", str(tuned), "--base-model", str(output)]
    assert finetune.main([*argv, *TINY_TRAINING, "--set", "sft.max_steps=2", "--set", "lora.r=4"]) == 0
    tuned_metrics = json.loads((tuned / "metrics.json").read_text())
    assert tuned_metrics["global_step"] == 2 and tuned_metrics["base_model_path"] == str(model_dir)
    adapter = json.loads((tuned / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(model_dir)


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "deep.jsonl",
            '{"text": "ok"}\n' + "[" * 100_000 + "]" * 100_000 + "\n",
            ", line 2: nested too deeply to read",
        ),
        ("broken.jsonl", '{"text": "ok"}\n{"text": \n', ", line 2: not valid JSON (Expecting value)"),
        (
            "notext.jsonl",
            '{"text": "ok"}\n{"body": "x"}\n',
            ", line 2: no text (expected a string, an object",
        ),
        ("latin1.txt", b"fine\n\ncaf\xe9\n", ", line 3: not UTF-8 text (invalid continuation byte)"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, ": nested too deeply to read"),
        ("long.txt", "short\n" + "x" * 300_000 + "\n", ", line 2: longer than 250,000 bytes"),
    ],
)
def test_bad_domain_text_is_one_line_naming_file_and_line(
    name: str,
    content: str | bytes,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("training.domain_text.MAX_LINE_BYTES", 250_000)  # above the deep lines
    path = _write(tmp_path / "text" / name, content)
    assert main(["--input", str(tmp_path / "text"), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}{expected}"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written before the input is read


def test_text_stating_a_held_out_fact_is_removed(qa_dataset: Path) -> None:
    """Every held-out glossary description (the prompt of its description->term question) is in no training
    document, and in a removed one (its glossary entry); the lecture sentences that state one are removed too."""
    from training.data import load_splits
    from training.domain_text import held_out_facts, read_documents, remove_held_out
    from training.records import normalize_key
    from training.split import DEFAULT_RELATED_THRESHOLD

    documents = read_documents(DOMAIN_TEXT)
    kept, removed = remove_held_out(documents, held_out_facts([str(qa_dataset)]), DEFAULT_RELATED_THRESHOLD)
    assert kept and removed.documents and removed.sentences
    assert len(kept) + len(removed.documents) <= len(documents)
    splits = load_splits(qa_dataset, ("validation", "test"))
    prefix = "Which trade term is described as follows: "
    descriptions = [
        normalize_key(row["question"].removeprefix(prefix))
        for name in ("validation", "test")
        for row in splits[name]
        if row["question"].startswith(prefix)
    ]
    assert descriptions
    for description in descriptions:
        assert not any(description in normalize_key(d.text) for d in kept), description
        assert any(description in normalize_key(d.text) for d in removed.documents), description
    assert any("transcript_raw" in d.origin for d in removed.sentences)


def test_domain_text_documents_and_glossary_entries(tmp_path: Path) -> None:
    from training.domain_text import read_documents, split_documents

    _write(tmp_path / "a.md", "# Title\n\nFirst paragraph\nstill first.\n\n\nSecond.\n")
    _write(tmp_path / "b.jsonl", '{"text": "A record."}\n\n"a string record"\n')
    _write(
        tmp_path / "sub" / "c.json",
        json.dumps([[{"term": "Free Carrier", "eng_term": "FCA", "description": "A rule."}], {"text": "T"}]),
    )
    _write(tmp_path / ".hidden" / "d.txt", "not read")
    _write(tmp_path / "e.csv", "not,read")
    documents = read_documents([tmp_path])
    assert [d.text for d in documents] == [
        "# Title",
        "First paragraph\nstill first.",
        "Second.",
        "A record.",
        "a string record",
        "Free Carrier (FCA): A rule.",
        "T",
    ]
    assert documents[1].origin == f"{tmp_path / 'a.md'}, line 3"
    assert documents[4].origin == f"{tmp_path / 'b.jsonl'}, line 3"
    assert documents[5].origin == f"{tmp_path / 'sub' / 'c.json'}, item [0][0]"
    train, validation = split_documents(documents, 0.3, seed=1)
    assert len(validation) == 2 and sorted(train + validation, key=documents.index) == documents
    assert split_documents(documents, 0.3, seed=1) == (train, validation)  # seeded


@pytest.mark.parametrize("name", ["gemma2-2b", "smollm2-135m-cpu"])
def test_pretrain_presets_build_their_trainer_configs(name: str, tmp_path: Path) -> None:
    from peft import LoraConfig
    from trl import SFTConfig

    from training.config import PRETRAIN_PRESETS_DIR, load_pretrain_config, preset_names, preset_path

    assert name in preset_names(PRETRAIN_PRESETS_DIR)
    assert preset_path(name, PRETRAIN_PRESETS_DIR).parent == PRETRAIN_PRESETS_DIR  # apart from fine-tuning's
    config = load_pretrain_config(preset_path(name, PRETRAIN_PRESETS_DIR))
    assert config.method == "lora" and 0 < config.validation_fraction < 1
    sft = SFTConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, **config.sft)  # as on this CPU
    assert sft.packing and sft.packing_strategy == "wrapped" and sft.completion_only_loss is None
    assert LoraConfig(**config.lora).r == config.lora["r"]


def test_unknown_recipe_key_and_unknown_exclude_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _write(tmp_path / "text" / "a.txt", "Some domain text.\n")
    argv = ["--input", str(text), "--output", str(tmp_path / "out")]
    assert main([*argv, "--set", "method=partial"]) == 2
    assert "--set method=partial: method: " in capsys.readouterr().err
    assert main([*argv, "--exclude", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: --exclude {tmp_path / 'missing'}: no such dataset folder")
        and "Traceback" not in err
    )
