"""``python -m training pretrain``: continual (domain-adaptive) pre-training with a causal-LM loss on raw text.

Reads the documents of every ``.txt``, ``.md``, ``.jsonl`` and ``.json`` file under ``--input``
(:mod:`training.domain_text`), drops those that state a held-out fact (``--exclude``: a prepared dataset's
validation and test rows, a definitional evaluation set), holds out a share of the rest (the recipe's
``validation_fraction``) and trains with TRL's ``SFTTrainer`` on the text packed into blocks of ``sft.max_length``
tokens, with the loss on every token: LoRA merged into the model (``method: lora``) or every weight
(``method: full``). The validation perplexity on the held-out domain text is measured before and after training.
Checkpoints as it goes and resumes from the last checkpoint after an interruption. Writes into the output folder:
``model/`` (the domain-adapted model and its tokenizer; ``finetune --base-model OUTPUT`` takes it),
``checkpoints/``, ``metrics.json``, ``result.json`` (steps, losses, perplexities, documents: a pipeline task's
result) and ``pretrain-config.yaml`` (the recipe as run).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from training.config import (
    PRETRAIN_PRESETS_DIR,
    PretrainConfig,
    add_run_arguments,
    load_pretrain_config,
    preset_names,
    preset_path,
)
from training.domain_text import (
    TEXT_FIELDS,
    Document,
    held_out_facts,
    read_documents,
    remove_held_out,
    split_documents,
)
from training.exceptions import BaseModelError, ConfigError, DatasetError
from training.finetune import build_trainer, last_logged, load_base, resume_checkpoint
from training.launch import log_format
from training.models import PRETRAINED_MODEL_DIR
from training.paths import default_output_dir, missing_outside_pipeline
from training.split import DEFAULT_RELATED_THRESHOLD

log = logging.getLogger("training.pretrain")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training pretrain", description=__doc__.splitlines()[0])
    recipe = parser.add_mutually_exclusive_group()
    recipe.add_argument(
        "--preset",
        default="smollm2-135m-cpu",
        help=f"one of: {', '.join(preset_names(PRETRAIN_PRESETS_DIR))}",
    )
    recipe.add_argument("--config", type=Path, help="a YAML recipe file instead of a preset")
    parser.add_argument(
        "--input",
        type=Path,
        action="append",
        required=True,
        help="a folder or file of domain text (repeatable)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="DATASET|JSONL",
        help="held-out facts kept out of training: a prepared dataset folder (its validation and test rows) or a "
        "question/answer JSONL file ('en': the shipped definitional set) (repeatable)",
    )
    parser.add_argument(
        "--exclude-threshold",
        type=float,
        default=DEFAULT_RELATED_THRESHOLD,
        help=f"fact cosine at which a document counts as stating a held-out fact (default {DEFAULT_RELATED_THRESHOLD})",
    )
    parser.add_argument(
        "--text-field",
        dest="text_fields",
        action="append",
        default=None,
        help=f"JSON field holding a record's text (repeatable; default: {', '.join(TEXT_FIELDS)})",
    )
    parser.add_argument("--output", type=Path, default=default_output_dir(), help="output folder")
    add_run_arguments(
        parser,
        base_model_help="override the recipe's base model (model id or local folder)",
        set_example="--set sft.max_steps=20 --set method=full",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=log_format())
    args = build_parser().parse_args(argv)
    if problem := missing_outside_pipeline({"--output": args.output}):
        print(problem, file=sys.stderr)
        return 2
    try:
        overrides = list(args.overrides)
        if args.base_model:
            overrides.append(f"base_model={args.base_model}")
        config = load_pretrain_config(
            args.config or preset_path(args.preset, PRETRAIN_PRESETS_DIR), overrides
        )
        result = pretrain(
            config,
            args.input,
            args.output,
            exclude=args.exclude,
            exclude_threshold=args.exclude_threshold,
            text_fields=tuple(args.text_fields or TEXT_FIELDS),
            resume=args.resume,
            report_to=args.report_to,
            model_cache=args.model_cache,
        )
    except (ConfigError, DatasetError, BaseModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info("done: %s", json.dumps(result))
    return 0


def pretrain(
    config: PretrainConfig,
    inputs: list[Path],
    output: Path,
    *,
    exclude: list[str] | None = None,
    exclude_threshold: float = DEFAULT_RELATED_THRESHOLD,
    text_fields: tuple[str, ...] = TEXT_FIELDS,
    resume: str = "auto",
    report_to: str | None = None,
    model_cache: Path | None = None,
) -> dict[str, Any]:
    """Run one continual pre-training; write the model and the metrics; return the task's result."""
    documents = read_documents(inputs, text_fields)
    kept, removed = remove_held_out(documents, held_out_facts(exclude or []), exclude_threshold)
    train_docs, validation_docs = split_documents(kept, config.validation_fraction, config.seed)
    if not train_docs:
        raise DatasetError(
            f"{', '.join(map(str, inputs))}: no document left for training "
            f"({len(documents)} read, {len(removed.documents)} state a held-out fact)"
        )
    log.info(
        "%d documents read; held-out facts: %d documents and %d sentences removed; "
        "%d documents for training, %d held out for validation",
        len(documents),
        len(removed.documents),
        len(removed.sentences),
        len(train_docs),
        len(validation_docs),
    )
    train_set = _text_dataset(train_docs)
    eval_set = _text_dataset(validation_docs) if validation_docs else None

    output.mkdir(parents=True, exist_ok=True)
    (output / "pretrain-config.yaml").write_text(
        yaml.safe_dump(config.model_dump(), sort_keys=False, allow_unicode=True)
    )
    base = load_base(config, model_cache)
    if config.method == "full":
        base.model.float()  # every weight trains: fp32 master weights, bf16/fp16 only inside autocast
    trainer = build_trainer(
        config,
        base.model,
        base.tokenizer,
        train_set,
        eval_set,
        output,
        base.precision,
        base.attention,
        report_to,
        hardware=base.hardware,
        lora=config.method == "lora",
        logger=log,
    )
    before = trainer.evaluate(metric_key_prefix="before") if eval_set is not None else {}
    checkpoint = resume_checkpoint(resume, output / "checkpoints")
    if checkpoint:
        log.info("resuming from %s", checkpoint)
    started = time.perf_counter()
    trained = trainer.train(resume_from_checkpoint=checkpoint)
    elapsed = time.perf_counter() - started
    after = trainer.evaluate() if eval_set is not None else {}

    model = trainer.model.merge_and_unload() if config.method == "lora" else trainer.model
    model.config.use_cache = True  # training turned the cache off; generation with the saved model needs it
    model_dir = output / PRETRAINED_MODEL_DIR
    model.save_pretrained(str(model_dir))
    base.tokenizer.save_pretrained(str(model_dir))

    metrics: dict[str, Any] = {**trained.metrics, **before, **after}
    metrics.update(
        base_model=config.base_model,
        base_model_path=base.path,
        model_family=base.family,
        method=config.method,
        device=base.hardware.device,
        attn_implementation=base.attention,
        precision=base.precision,
        global_step=trainer.state.global_step,
        resumed_from=checkpoint,
        wall_seconds=round(elapsed, 2),
        num_tokens=last_logged(trainer.state.log_history, "num_tokens"),
        documents_read=len(documents),
        documents_excluded=len(removed.documents),
        sentences_excluded=len(removed.sentences),
        documents_train=len(train_docs),
        documents_validation=len(validation_docs),
        excluded=[{"origin": d.origin, "text": d.text} for d in removed.documents + removed.sentences],
        model_dir=str(model_dir),
    )
    result = headline(metrics)
    metrics.update(result)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    (output / "result.json").write_text(json.dumps(result) + "\n")
    return result


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The task's result: steps, losses, validation perplexity before and after, documents, throughput."""
    keys = ("global_step", "train_loss", "before_loss", "eval_loss", "num_tokens", "documents_read")
    result = {key: metrics.get(key) for key in keys}
    result.update(
        {key: metrics[key] for key in ("documents_excluded", "documents_train", "documents_validation")}
    )
    result["perplexity_before"] = _perplexity(metrics.get("before_loss"))
    result["perplexity_after"] = _perplexity(metrics.get("eval_loss"))
    runtime, tokens = metrics.get("train_runtime"), metrics.get("num_tokens")
    result["train_seconds"] = runtime
    result["train_tokens_per_second"] = round(tokens / runtime, 1) if tokens and runtime else None
    return result


def _perplexity(loss: float | None) -> float | None:
    return round(math.exp(loss), 3) if loss is not None else None


def _text_dataset(documents: list[Document]) -> Any:
    import datasets

    return datasets.Dataset.from_dict({"text": [d.text for d in documents]})
