"""GPU check of the gemma-2-2b recipes: SFT and generation throughput, peak memory and MFU, in one offline command.

Builds a model with gemma-2-2b's architecture from the configuration values below (random weights: no hub, no
download) and measures on whatever device torch sees:

- SFT throughput of the two presets through the product's own trainer (``training.finetune.build_trainer``):
  ``gemma2-2b`` (the fast paths this machine gets: attention kernel, packing, Liger, gradient checkpointing, bf16)
  against ``gemma2-2b-seed``, the articles' settings (eager attention, no packing, batch 2 x 4, loss on the whole
  text). The data are synthetic tokenised Q/A pairs (seeded lengths of a short question and a longer answer);
  tokens are the real (non-padding) tokens TRL counts; the first optimizer steps are warm-up and not timed.
- Generation throughput as ``training.evaluate`` generates (greedy, the attention it picks): one batch against
  the same prompts one at a time.
- Peak accelerator memory of each phase, and MFU = 6 x parameters x tokens/s over the device's dense bf16 peak
  (``PEAK_BF16_TFLOPS``; the peak used is written next to the figure; none on a CPU).

Writes ``gpu-bench.json`` and ``gpu-bench.md`` (a table) into ``--output``. ``--tiny`` runs a small model of the
same architecture, so that the suite runs the whole path on a CPU.

    PYTHONPATH=. python bench/gpu.py [--tiny] [--steps 12] [--output DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.token_clock import token_clock  # noqa: E402

#: google/gemma-2-2b(-it)'s architecture (its published config.json)
GEMMA2_2B: dict[str, Any] = {
    "vocab_size": 256000,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "query_pre_attn_scalar": 256,
    "sliding_window": 4096,
    "max_position_embeddings": 8192,
    "attn_logit_softcapping": 50.0,
    "final_logit_softcapping": 30.0,
    "hidden_activation": "gelu_pytorch_tanh",
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
}
#: the same architecture, small enough for a CPU in the test suite
TINY: dict[str, Any] = GEMMA2_2B | {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "query_pre_attn_scalar": 32,
    "sliding_window": 64,
    "max_position_embeddings": 256,
}

#: dense bf16 tensor-core peaks in TFLOP/s (vendor data sheets, without sparsity), matched in this order against
#: torch's device name
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("GH200", 989.4),
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 4090", 165.2),
)
SETTINGS = {"preset": "gemma2-2b", "articles": "gemma2-2b-seed"}
SPECIAL_TOKENS = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}


@dataclass(frozen=True)
class Scale:
    """Sizes of one bench run."""

    architecture: dict[str, Any]
    rows: int
    question_tokens: tuple[int, int]
    answer_median: int
    max_length: int
    lora_r: int | None
    prompts: int
    one_at_a_time: int
    new_tokens: int


FULL = Scale(GEMMA2_2B, 2048, (24, 80), 110, 1024, None, 32, 4, 128)
SMALL = Scale(TINY, 48, (6, 16), 20, 96, 8, 8, 2, 8)


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a device from its name, or ``None`` when the table has none."""
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in device_name), None)


def mfu(parameters: int, tokens_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: 6 x parameters x tokens/s over the peak (TFLOP/s)."""
    return 6 * parameters * tokens_per_s / (peak * 1e12) if peak else None


def synthetic_rows(scale: Scale, seed: int = 0) -> list[dict[str, list[int]]]:
    """Tokenised Q/A pairs: ``input_ids`` = <bos> question answer <eos>, ``completion_mask`` on the answer."""
    rng = random.Random(seed)
    low = len(SPECIAL_TOKENS)
    vocab = scale.architecture["vocab_size"]
    rows = []
    for _ in range(scale.rows):
        question = rng.randint(*scale.question_tokens)
        answer = min(
            max(int(rng.lognormvariate(math.log(scale.answer_median), 0.6)), 4), scale.max_length // 2
        )
        ids = [SPECIAL_TOKENS["<bos>"]] + [rng.randrange(low, vocab) for _ in range(question + answer)]
        ids.append(SPECIAL_TOKENS["<eos>"])
        rows.append({"input_ids": ids, "completion_mask": [0] * (1 + question) + [1] * (answer + 1)})
    return rows


def tokenizer() -> Any:
    """A tokenizer that knows the special tokens only (the data are already token ids)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(dict(SPECIAL_TOKENS), unk_token="<unk>")),
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
    )


def build_model(architecture: dict[str, Any], attention: str, precision: str, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, Gemma2Config

    from training.models import torch_dtype

    torch.manual_seed(0)
    config = Gemma2Config(**architecture)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(
            config, dtype=torch_dtype(precision), attn_implementation=attention
        )
    model.config.use_cache = False
    return model


class Memory:
    """Peak memory of one phase: the accelerator's allocator peak, or the process's resident peak on a CPU."""

    def __init__(self, device: str) -> None:
        self.device = device

    def reset(self) -> None:
        import torch

        gc.collect()
        if self.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float:
        import torch

        if self.device == "cuda":
            return round(torch.cuda.max_memory_allocated() / 2**30, 2)
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def sft_run(
    label: str, scale: Scale, steps: int, warmup: int, hardware: Any, workdir: Path
) -> dict[str, Any]:
    """Train ``warmup + steps`` optimizer steps with one preset; tokens/s over the timed steps."""
    from datasets import Dataset

    from training.config import load_config, preset_path
    from training.finetune import build_trainer
    from training.models import choose_attention, choose_precision

    overrides = [f"sft.max_steps={warmup + steps}", "sft.logging_steps=1", "sft.save_strategy='no'"]
    overrides.append(f"sft.max_length={scale.max_length}")
    if scale.lora_r:
        overrides.append(f"lora.r={scale.lora_r}")
    config = load_config(preset_path(SETTINGS[label]), overrides)
    attention = choose_attention(config.attn_implementation, "gemma2", hardware, training=True)
    precision = choose_precision(config.precision, hardware)
    memory = Memory(hardware.device)
    memory.reset()
    model = build_model(scale.architecture, attention, precision, hardware.device)
    parameters = sum(p.numel() for p in model.parameters())
    data = Dataset.from_list(synthetic_rows(scale))
    trainer = build_trainer(
        config, model, tokenizer(), data, None, workdir / label, precision, attention, None, hardware=hardware
    )
    clock = token_clock()
    trainer.add_callback(clock)
    trainer.train()
    (t0, n0), (t1, n1) = clock.marks[warmup - 1], clock.marks[-1]
    args = trainer.args
    result = {
        "preset": SETTINGS[label],
        "attention": attention,
        "precision": precision,
        "packing": bool(args.packing),
        "use_liger_kernel": bool(args.use_liger_kernel),
        "gradient_checkpointing": bool(args.gradient_checkpointing),
        "loss_on": "answers" if args.completion_only_loss is not False else "whole text",
        "batch": f"{args.per_device_train_batch_size} x {args.gradient_accumulation_steps}",
        "parameters": parameters,
        "timed_steps": len(clock.marks) - warmup,
        "tokens": int(n1 - n0),
        "seconds": round(t1 - t0, 3),
        "tokens_per_s": round((n1 - n0) / (t1 - t0), 1),
        "peak_memory_gib": memory.peak_gib(),
    }
    del trainer, model
    return result


def generation_run(scale: Scale, hardware: Any) -> dict[str, Any]:
    """Greedy generation of ``new_tokens`` per prompt: all prompts in one batch, then some one at a time."""
    import torch

    from training.models import choose_attention, choose_precision

    attention = choose_attention("auto", "gemma2", hardware)
    precision = choose_precision("auto", hardware)
    memory = Memory(hardware.device)
    memory.reset()
    model = build_model(scale.architecture, attention, precision, hardware.device).eval()
    model.config.use_cache = True
    rows = synthetic_rows(dataclasses.replace(scale, rows=scale.prompts), seed=1)
    prompts = [row["input_ids"][: 1 + scale.question_tokens[1]] for row in rows]

    def generate(batch: list[list[int]]) -> int:
        width = max(len(p) for p in batch)
        ids = torch.tensor([[0] * (width - len(p)) + p for p in batch], device=hardware.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=hardware.device)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=scale.new_tokens,
                min_new_tokens=scale.new_tokens,
                do_sample=False,
                pad_token_id=0,
            )
        return int(out.shape[0] * (out.shape[1] - width))

    def timed(batches: list[list[list[int]]]) -> tuple[int, float]:
        if hardware.device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        tokens = sum(generate(batch) for batch in batches)
        if hardware.device == "cuda":
            torch.cuda.synchronize()
        return tokens, time.perf_counter() - started

    generate(prompts[:2])  # warm-up
    batched_tokens, batched_s = timed([prompts])
    single_tokens, single_s = timed([[p] for p in prompts[: scale.one_at_a_time]])
    result = {
        "attention": attention,
        "precision": precision,
        "new_tokens_per_prompt": scale.new_tokens,
        "batched": {"prompts": len(prompts), "tokens_per_s": round(batched_tokens / batched_s, 1)},
        "one_at_a_time": {
            "prompts": scale.one_at_a_time,
            "tokens_per_s": round(single_tokens / single_s, 1),
        },
        "peak_memory_gib": memory.peak_gib(),
    }
    result["batched_over_one_at_a_time"] = round(
        result["batched"]["tokens_per_s"] / result["one_at_a_time"]["tokens_per_s"], 2
    )
    return result


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table (one row per SFT setting) plus the generation line."""
    peak = report["peak_bf16_tflops"]
    lines = [
        f"Device: {report['device_name']} ({report['device']}); dense bf16 peak used for MFU: "
        + (f"{peak} TFLOP/s" if peak else "none (no entry for this device)")
        + f"; model: {report['model']} ({report['parameters']:,} parameters, random weights).",
        "",
        "| setting | preset | attention | packing | Liger | grad. ckpt | precision | batch | loss on | tokens/s | "
        "MFU | peak memory GiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, run in report["sft"].items():
        value = run["mfu"]
        lines.append(
            f"| {label} | {run['preset']} | {run['attention']} | {run['packing']} | {run['use_liger_kernel']} | "
            f"{run['gradient_checkpointing']} | {run['precision']} | {run['batch']} | {run['loss_on']} | "
            f"{run['tokens_per_s']} | {'-' if value is None else f'{value:.1%}'} | {run['peak_memory_gib']} |"
        )
    gen = report["generation"]
    lines += [
        "",
        f"SFT tokens/s, preset over articles: {report['sft_speedup']}x.",
        f"Generation ({gen['attention']}, {gen['precision']}, {gen['new_tokens_per_prompt']} new tokens per prompt): "
        f"batched {gen['batched']['tokens_per_s']} tokens/s ({gen['batched']['prompts']} prompts), one at a time "
        f"{gen['one_at_a_time']['tokens_per_s']} tokens/s: {gen['batched_over_one_at_a_time']}x; "
        f"peak memory {gen['peak_memory_gib']} GiB.",
    ]
    return "\n".join(lines) + "\n"


def run(
    scale: Scale, steps: int, warmup: int, output: Path, peak_override: float | None = None
) -> dict[str, Any]:
    """Both SFT settings and the generation comparison; writes and returns the report."""
    import torch

    from training.models import Hardware

    hardware = Hardware.detect()
    name = hardware.name or "CPU"
    peak = peak_override or (peak_tflops(name) if hardware.device == "cuda" else None)
    report: dict[str, Any] = {
        "device": hardware.device,
        "device_name": name,
        "torch": torch.__version__,
        "model": "gemma-2-2b architecture" if scale is FULL else "tiny gemma-2 architecture",
        "peak_bf16_tflops": peak,
        "sft": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for label in SETTINGS:
            result = sft_run(label, scale, steps, warmup, hardware, Path(tmp))
            result["mfu"] = mfu(result["parameters"], result["tokens_per_s"], peak)
            report["sft"][label] = result
            print(json.dumps({label: result}), flush=True)
    report["parameters"] = report["sft"]["preset"]["parameters"]
    report["sft_speedup"] = round(
        report["sft"]["preset"]["tokens_per_s"] / report["sft"]["articles"]["tokens_per_s"], 2
    )
    report["generation"] = generation_run(scale, hardware)
    output.mkdir(parents=True, exist_ok=True)
    (output / "gpu-bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "gpu-bench.md").write_text(markdown(report))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tiny", action="store_true", help="a tiny model of the same architecture (CPU, tests)"
    )
    parser.add_argument("--steps", type=int, default=12, help="timed optimizer steps per setting")
    parser.add_argument("--warmup", type=int, default=3, help="optimizer steps before timing (compilation)")
    parser.add_argument(
        "--output", type=Path, default=Path("gpu-bench"), help="folder for the JSON and table"
    )
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be at least 1")
    report = run(SMALL if args.tiny else FULL, args.steps, args.warmup, args.output, args.peak_tflops)
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
