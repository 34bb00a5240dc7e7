"""Training throughput (tokens/s): the preset's settings against the articles' settings, same model and data.

The articles' settings: no packing, batch 2 x gradient accumulation 4, loss on the whole text, measured with the
preset's LoRA adapter and once more with the articles' adapter (rank 256, dropout 0.05). Ours: the preset's
``sft`` section. Model, data, precision and attention are shared. Tokens are real (non-padding) tokens as TRL
counts them; the first optimizer step of each run is warm-up and not timed.

    PYTHONPATH=. python bench/train_throughput.py [--preset smollm2-135m-cpu] [--dataset DIR] [--steps 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.token_clock import token_clock  # noqa: E402

ARTICLE_SETTINGS = {
    "packing": False,
    "per_device_train_batch_size": 2,
    "gradient_accumulation_steps": 4,
    "completion_only_loss": False,
    "train_sampling_strategy": "random",
}
ARTICLE_LORA = {"r": 256, "lora_alpha": 32, "lora_dropout": 0.05}


def measure(
    label: str,
    sft: dict[str, Any],
    lora: dict[str, Any],
    config: Any,
    dataset: Path,
    steps: int,
    workdir: Path,
) -> dict[str, Any]:
    from training.data import load_splits
    from training.finetune import TRAIN_COLUMNS, build_trainer, load_base

    base = load_base(config)
    run_config = config.model_copy(
        update={
            "sft": {**config.sft, **sft, "max_steps": steps + 1, "logging_steps": 1, "save_strategy": "no"},
            "lora": {**config.lora, **lora},
        }
    )
    train = load_splits(dataset, ("train",))["train"].select_columns(list(TRAIN_COLUMNS))
    trainer = build_trainer(
        run_config,
        base.model,
        base.tokenizer,
        train,
        None,
        workdir / label,
        base.precision,
        base.attention,
        None,
    )
    clock = token_clock()
    trainer.add_callback(clock)
    trainer.train()
    (t0, n0), (t1, n1) = clock.marks[0], clock.marks[-1]
    keys = (
        "packing",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "completion_only_loss",
        "train_sampling_strategy",
        "max_length",
    )
    settings = {k: getattr(trainer.args, k, None) for k in keys} | {"lora_r": run_config.lora.get("r")}
    return {
        "label": label,
        "settings": settings,
        "tokens": n1 - n0,
        "seconds": t1 - t0,
        "tokens_per_s": (n1 - n0) / (t1 - t0),
        "device": base.hardware.device,
    }


def main() -> int:
    from tests.training.qa_fixture import write_dataset
    from training.config import load_config, preset_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smollm2-135m-cpu")
    parser.add_argument(
        "--dataset", type=Path, help="prepared dataset (default: the test fixture's trade Q/A)"
    )
    parser.add_argument("--steps", type=int, default=2, help="timed optimizer steps per run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating runs per setting (median and best reported)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    config = load_config(preset_path(args.preset))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    setups: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "articles": (ARTICLE_SETTINGS, {}),
        "articles+lora": (ARTICLE_SETTINGS, ARTICLE_LORA),
        "preset": ({}, {}),
        "preset+packing": ({"packing": True, "per_device_train_batch_size": 2, "max_length": 512}, {}),
    }
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in setups}
    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset or write_dataset(Path(tmp) / "data")
        for _ in range(args.rounds):
            for label, (sft, lora) in setups.items():
                runs[label].append(measure(label, sft, lora, config, dataset, args.steps, Path(tmp)))
    medians, best = {}, {}
    for label, rows in runs.items():
        medians[label] = statistics.median(r["tokens_per_s"] for r in rows)
        best[label] = max(r["tokens_per_s"] for r in rows)
        each = ", ".join(f"{r['tokens_per_s']:.1f}" for r in rows)
        print(
            f"{label:>14}: median {medians[label]:7.1f}, best {best[label]:7.1f} tokens/s (runs: {each}) "
            f"{json.dumps(rows[0]['settings'])}"
        )
    device = runs["preset"][0]["device"]
    for label in ("articles", "articles+lora"):
        print(
            f"ratio preset/{label}: median {medians['preset'] / medians[label]:.2f}x, "
            f"best {best['preset'] / best[label]:.2f}x on {device}"
        )
    print(
        f"ratio preset+packing/preset: median {medians['preset+packing'] / medians['preset']:.2f}x, "
        f"best {best['preset+packing'] / best['preset']:.2f}x on {device}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
