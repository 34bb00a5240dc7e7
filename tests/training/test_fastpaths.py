"""Which fast paths the gemma-2-2b recipes get: on this machine, and on the hardware that other machines report."""

from __future__ import annotations

from typing import Any

import pytest

from training.config import load_config, preset_path
from training.fastpaths import CHECKPOINTING_BELOW_GIB, resolve_auto
from training.models import Hardware, choose_attention, choose_precision

CPU = Hardware("cpu", False)
H200 = Hardware("cuda", True, memory_gib=139.8, name="NVIDIA H200", flex_attention=True, liger_kernel=True)
#: a 24 GiB card whose Python has neither Triton nor liger-kernel
SMALL_GPU = Hardware("cuda", True, memory_gib=22.0, name="NVIDIA L4")


def _choices(preset: str, hardware: Hardware) -> dict[str, Any]:
    config = load_config(preset_path(preset))
    attention = choose_attention(config.attn_implementation, "gemma2", hardware, training=True)
    sft = resolve_auto(config.sft, attention, hardware)
    return {
        "attention": attention,
        "precision": choose_precision(config.precision, hardware),
        **{k: sft.get(k) for k in ("packing", "use_liger_kernel", "gradient_checkpointing")},
    }


@pytest.mark.parametrize(
    ("hardware", "expected"),
    [
        (CPU, ("eager", "fp32", False, False, False)),
        (H200, ("flex_attention", "bf16", True, True, False)),
        (SMALL_GPU, ("eager", "bf16", False, False, True)),
    ],
    ids=["cpu", "h200", "small-gpu"],
)
def test_gpu_preset_follows_the_hardware(hardware: Hardware, expected: tuple[Any, ...]) -> None:
    keys = ("attention", "precision", "packing", "use_liger_kernel", "gradient_checkpointing")
    assert _choices("gemma2-2b", hardware) == dict(zip(keys, expected, strict=True))


def test_the_articles_settings_stay_fixed_on_any_hardware() -> None:
    for hardware in (CPU, H200, SMALL_GPU):
        choices = _choices("gemma2-2b-seed", hardware)
        assert (choices["attention"], choices["packing"], choices["gradient_checkpointing"]) == (
            "eager",
            False,
            False,
        )
        assert "use_liger_kernel" not in load_config(preset_path("gemma2-2b-seed")).sft


def test_checkpointing_threshold_is_on_the_accelerator_memory() -> None:
    below = Hardware("cuda", True, memory_gib=CHECKPOINTING_BELOW_GIB - 1)
    at = Hardware("cuda", True, memory_gib=CHECKPOINTING_BELOW_GIB)
    sft = {"gradient_checkpointing": "auto"}
    assert resolve_auto(sft, "eager", below)["gradient_checkpointing"] is True
    assert resolve_auto(sft, "eager", at)["gradient_checkpointing"] is False


def test_generation_keeps_eager_attention_for_gemma2() -> None:
    assert choose_attention("auto", "gemma2", H200) == "eager"
    assert choose_attention("auto", "llama", Hardware("cuda", True, flash_attn=True)) == "flash_attention_2"
    assert resolve_auto({"packing": "auto"}, "flash_attention_2", H200)["packing"] is True


def test_this_machine_is_probed_not_assumed() -> None:
    import importlib.util

    import torch

    hardware = Hardware.detect()
    assert hardware.device == ("cuda" if torch.cuda.is_available() else "cpu")
    if hardware.device == "cpu":
        assert (hardware.memory_gib, hardware.flex_attention, hardware.liger_kernel) == (0.0, False, False)
    else:
        assert hardware.memory_gib > 0 and hardware.name
        assert hardware.liger_kernel == (importlib.util.find_spec("liger_kernel") is not None)
