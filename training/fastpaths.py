"""The hardware-dependent settings of a recipe's ``sft`` section: the values written ``auto``.

A recipe may write ``auto`` for four ``SFTConfig`` fields; they are resolved on the machine the step runs on:

- ``packing``: padding-free packing where the attention kernel skips the other sequences of a packed row
  (flash-attention, ``flex_attention``). Elsewhere the packed row is attended as one long sequence under a
  block-diagonal mask, which is correct but slower than padded batches (docs/benchmarks.md).
- ``use_liger_kernel``: Liger's Triton kernels (RMSNorm, GeGLU, RoPE) on CUDA devices where ``liger_kernel`` is
  installed.
- ``gradient_checkpointing``: on for accelerators with less than :data:`CHECKPOINTING_BELOW_GIB` of memory (it
  trades about a fifth more compute for the activations of a long packed batch), off on larger ones and on CPUs.
- ``bf16``/``fp16`` follow the recipe's ``precision`` (``training.models.choose_precision``), never ``auto`` here.
"""

from __future__ import annotations

from typing import Any

from training.models import Hardware

__all__ = ["AUTO", "CHECKPOINTING_BELOW_GIB", "packing_helps", "resolve_auto"]

AUTO = "auto"
#: accelerators smaller than this train with gradient checkpointing (the gemma-2-2b preset's 4 x 1024-token
#: packed micro-batch needs about 30 GiB with LoRA r=256 without it)
CHECKPOINTING_BELOW_GIB = 48.0


def packing_helps(attention: str) -> bool:
    """Padding-free packing pays off with kernels that skip the masked-out blocks of a packed row."""
    return (
        attention.startswith("flash_attention")
        or attention.startswith("kernels-community/flash")
        or attention == "flex_attention"
    )


def resolve_auto(sft: dict[str, Any], attention: str, hardware: Hardware) -> dict[str, Any]:
    """A copy of the ``sft`` values with every ``auto`` replaced by the choice for this hardware."""
    on_cuda = hardware.device == "cuda"
    choices = {
        "packing": packing_helps(attention),
        "use_liger_kernel": on_cuda and hardware.liger_kernel,
        "gradient_checkpointing": on_cuda and hardware.memory_gib < CHECKPOINTING_BELOW_GIB,
    }
    resolved = dict(sft)
    for name, choice in choices.items():
        if resolved.get(name) == AUTO:
            resolved[name] = choice
    return resolved
