"""Presets and hardware-dependent choices, without loading a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import load_config, preset_names, preset_path
from training.exceptions import ConfigError
from training.fastpaths import packing_helps, resolve_auto
from training.models import Hardware, choose_attention, choose_precision


def test_seed_preset_is_the_articles_recipe() -> None:
    config = load_config(preset_path("gemma2-2b-seed"))
    assert config.base_model == "google/gemma-2-2b-it"
    assert config.attn_implementation == "eager" and config.precision == "bf16"
    assert {k: config.lora[k] for k in ("r", "lora_alpha", "lora_dropout")} == {
        "r": 256,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
    }
    assert sorted(config.lora["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    sft = config.sft
    assert (sft["learning_rate"], sft["num_train_epochs"]) == (2e-4, 3)
    assert (sft["per_device_train_batch_size"], sft["gradient_accumulation_steps"]) == (2, 4)
    assert sft["packing"] is False


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_accepted_by_trl_and_peft(name: str, tmp_path: Path) -> None:
    from peft import LoraConfig
    from trl import SFTConfig

    config = load_config(preset_path(name))
    gpu = Hardware("cuda", True, memory_gib=80.0, flex_attention=True, liger_kernel=True)
    for hardware, attention in ((Hardware("cpu", False), "eager"), (gpu, "flex_attention")):
        sft = resolve_auto(config.sft, attention, hardware)
        assert "auto" not in sft.values()
        SFTConfig(output_dir=str(tmp_path), bf16=False, **sft)
    LoraConfig(**config.lora)


def test_overrides_parse_values_as_yaml() -> None:
    config = load_config(
        preset_path("smollm2-135m-cpu"), ["sft.max_steps=5", "lora.r=4", "base_model=/models/x"]
    )
    assert config.sft["max_steps"] == 5 and config.lora["r"] == 4 and config.base_model == "/models/x"
    with pytest.raises(ConfigError, match="key=value"):
        load_config(preset_path("smollm2-135m-cpu"), ["sft.max_steps"])


def test_unknown_top_level_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("base_model: x\nlearning_rate: 1\n")
    with pytest.raises(ConfigError, match=r"r.yaml:2:1 learning_rate: "):
        load_config(path)


def test_attention_and_precision_follow_hardware_and_family() -> None:
    cpu, gpu, old_gpu = Hardware("cpu", False), Hardware("cuda", True), Hardware("cuda", False)
    assert choose_attention("auto", "gemma2", gpu) == "eager"
    assert choose_attention("auto", "llama", cpu) == "sdpa"
    assert choose_attention("sdpa", "gemma2", gpu) == "sdpa"  # an explicit choice wins
    assert choose_precision("auto", gpu) == "bf16"
    assert choose_precision("auto", cpu) == "fp32"
    assert choose_precision("bf16", old_gpu) == "fp32"
    assert packing_helps("flash_attention_2") and not packing_helps("sdpa") and not packing_helps("eager")


def test_native_bf16_cpu_detection(tmp_path: Path) -> None:
    from training.models import cpu_has_native_bf16

    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n")
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert cpu_has_native_bf16(zen4) and not cpu_has_native_bf16(old)
    assert not cpu_has_native_bf16(tmp_path / "missing")


def test_bad_value_is_named_by_line_or_by_its_override(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("base_model: x\nprecision: half\n")
    with pytest.raises(ConfigError, match=r"r.yaml:2:12 precision: "):
        load_config(path)
    with pytest.raises(ConfigError, match=r"--set precision=int8: precision: 'int8' is not allowed"):
        load_config(preset_path("smollm2-135m-cpu"), ["precision=int8"])
    with pytest.raises(ConfigError, match=r"r.yaml:1:1: a fine-tuning recipe must be a mapping"):
        path.write_text("- a list\n")
        load_config(path)


def test_duplicate_key_is_an_error_not_a_silent_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("base_model: x\nsft:\n  learning_rate: 1.0e-4\n  learning_rate: 2.0e-4\n")
    with pytest.raises(ConfigError, match=r"r.yaml:4:3 sft.learning_rate: duplicate key 'learning_rate'"):
        load_config(path)


def test_unknown_sft_and_lora_names_are_found_before_any_weights_load(tmp_path: Path) -> None:
    """TRL's ``SFTConfig`` and PEFT's ``LoraConfig`` own fields decide; a typo is named by its line."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "base_model: x\nsft:\n  learning_rate: 1.0e-4\n  num_train_epoch: 3\nlora:\n  r: 8\n  lora_alpa: 16\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).splitlines() == [
        f"{path}:4:3 sft.num_train_epoch: unknown field",
        f"{path}:7:3 lora.lora_alpa: unknown field",
    ]


def test_unknown_name_from_an_override_names_the_override() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(preset_path("smollm2-135m-cpu"), ["sft.max_step=5"])
    assert str(caught.value) == "--set sft.max_step=5: sft.max_step: unknown field"


def test_cli_reports_an_unknown_sft_name_without_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.finetune import main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("base_model: /nonexistent/model\nsft:\n  learning_rat: 1.0e-4\n")
    missing = tmp_path / "no-dataset"
    assert main(["--config", str(recipe), "--dataset", str(missing), "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {recipe}:3:3 sft.learning_rat: unknown field"
    assert not (tmp_path / "o").exists()
