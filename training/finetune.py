"""``python -m training finetune``: LoRA supervised fine-tuning with TRL's ``SFTTrainer``.

Trains on the ``prompt``/``completion`` pairs of the ``train`` split (loss on the completion only, rendered with
the tokenizer's own chat template), reports the loss on ``validation``, checkpoints as it goes and resumes from
the last checkpoint after an interruption. Writes into the output folder:
``adapter/`` (LoRA weights + tokenizer; ``python -m training merge`` merges it into its base), ``checkpoints/``,
``metrics.json``, ``result.json`` (steps, losses, tokens per second: a pipeline task's result) and ``finetune-config.yaml`` (the
recipe as run).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from training.config import FinetuneConfig, add_run_arguments, load_config, preset_names, preset_path
from training.data import load_splits
from training.exceptions import BaseModelError, ConfigError, DatasetError
from training.fastpaths import resolve_auto
from training.launch import Rank, log_format
from training.models import (
    Hardware,
    choose_attention,
    choose_precision,
    load_tokenizer,
    model_family,
    resolve_base_model,
    torch_dtype,
)
from training.paths import default_input_dir, default_output_dir, missing_outside_pipeline

log = logging.getLogger("training.finetune")

TRAIN_COLUMNS = ("prompt", "completion")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training finetune", description=__doc__.splitlines()[0])
    recipe = parser.add_mutually_exclusive_group()
    recipe.add_argument("--preset", default="smollm2-135m-cpu", help=f"one of: {', '.join(preset_names())}")
    recipe.add_argument("--config", type=Path, help="a YAML recipe file instead of a preset")
    parser.add_argument("--dataset", type=Path, default=default_input_dir(), help="prepared dataset folder")
    parser.add_argument("--output", type=Path, default=default_output_dir(), help="output folder")
    add_run_arguments(
        parser,
        base_model_help="override the recipe's base model (model id, local folder, or a pretrain output folder)",
        set_example="--set sft.max_steps=20 --set lora.r=8",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=log_format())
    args = build_parser().parse_args(argv)
    if problem := missing_outside_pipeline({"--dataset": args.dataset, "--output": args.output}):
        print(problem, file=sys.stderr)
        return 2
    try:
        overrides = list(args.overrides)
        if args.base_model:
            overrides.append(f"base_model={args.base_model}")
        config = load_config(args.config or preset_path(args.preset), overrides)
        metrics = finetune(
            config,
            args.dataset,
            args.output,
            resume=args.resume,
            report_to=args.report_to,
            model_cache=args.model_cache,
        )
    except (ConfigError, DatasetError, BaseModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info(
        "done: %s",
        json.dumps({k: metrics[k] for k in ("global_step", "train_loss", "eval_loss") if k in metrics}),
    )
    return 0


def finetune(
    config: FinetuneConfig,
    dataset: Path,
    output: Path,
    *,
    resume: str = "auto",
    report_to: str | None = None,
    model_cache: Path | None = None,
) -> dict[str, Any]:
    """Run one fine-tuning; return (and write) its metrics.

    Under a data-parallel launch (``python -m training launch finetune``) every rank trains on its share of the
    batches and rank 0 alone writes the output folder.
    """
    rank = Rank.current()
    splits = load_splits(dataset)
    train_set = splits["train"].select_columns(list(TRAIN_COLUMNS))
    eval_set = splits["validation"].select_columns(list(TRAIN_COLUMNS)) if len(splits["validation"]) else None

    output.mkdir(parents=True, exist_ok=True)
    if rank.is_main:
        (output / "finetune-config.yaml").write_text(
            yaml.safe_dump(config.model_dump(), sort_keys=False, allow_unicode=True)
        )
    base = load_base(config, model_cache)
    tokenizer = base.tokenizer
    trainer = build_trainer(
        config,
        base.model,
        tokenizer,
        train_set,
        eval_set,
        output,
        base.precision,
        base.attention,
        report_to,
        hardware=base.hardware,
    )
    args = trainer.args
    log.info(
        "rank %d of %d: %d training rows, %d per optimizer step (%d per device x %d accumulated x %d); "
        "packing=%s liger=%s gradient_checkpointing=%s",
        rank.rank,
        rank.world_size,
        len(train_set),
        args.per_device_train_batch_size * args.gradient_accumulation_steps * rank.world_size,
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
        rank.world_size,
        args.packing,
        args.use_liger_kernel,
        args.gradient_checkpointing,
    )
    checkpoint = resume_checkpoint(resume, output / "checkpoints")
    if checkpoint:
        log.info("resuming from %s", checkpoint)
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    elapsed = time.perf_counter() - started

    adapter_dir = output / "adapter"
    trainer.save_model(str(adapter_dir))  # rank 0 writes; the others wait for it
    if rank.is_main:
        tokenizer.save_pretrained(str(adapter_dir))

    metrics: dict[str, Any] = dict(result.metrics)
    metrics.update(
        base_model=config.base_model,
        base_model_path=base.path,
        model_family=base.family,
        device=base.hardware.device,
        attn_implementation=base.attention,
        precision=base.precision,
        packing=bool(args.packing),
        use_liger_kernel=bool(args.use_liger_kernel),
        gradient_checkpointing=bool(args.gradient_checkpointing),
        world_size=rank.world_size,
        global_step=trainer.state.global_step,
        resumed_from=checkpoint,
        train_rows=len(train_set),
        wall_seconds=round(elapsed, 2),
        num_tokens=last_logged(trainer.state.log_history, "num_tokens"),
    )
    if eval_set is not None:
        metrics.update(trainer.evaluate())
    if not rank.is_main:
        return metrics
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    (output / "result.json").write_text(json.dumps(headline(metrics)) + "\n")
    return metrics


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a pipeline passes on as the task's result: steps, losses, training throughput."""
    result = {key: metrics.get(key) for key in ("global_step", "train_loss", "eval_loss", "num_tokens")}
    runtime = metrics.get("train_runtime")
    tokens = metrics.get("num_tokens")
    result["train_seconds"] = runtime
    result["train_tokens_per_second"] = round(tokens / runtime, 1) if tokens and runtime else None
    return result


@dataclass(frozen=True)
class TrainingBase:
    """The recipe's base model and tokenizer, loaded for this machine, with the choices made for it."""

    path: str
    family: str
    hardware: Hardware
    attention: str
    precision: str
    model: Any
    tokenizer: Any


def load_base(config: FinetuneConfig, model_cache: Path | None = None) -> TrainingBase:
    """Resolve the base model, pick attention and precision for the hardware, and load model and tokenizer.

    The frozen base weights load in the training precision; PEFT keeps the LoRA adapter (the only trained
    weights, and with them the optimizer state) in fp32.
    """
    from transformers import AutoModelForCausalLM

    hardware = Hardware.detect()
    path = resolve_base_model(config.base_model, model_cache)
    family = model_family(path)
    attention = choose_attention(config.attn_implementation, family, hardware, training=True)
    precision = choose_precision(config.precision, hardware)
    log.info(
        "base model %s (%s) on %s: attention=%s precision=%s",
        path,
        family,
        hardware.device,
        attention,
        precision,
    )
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch_dtype(precision), attn_implementation=attention
    )
    model.config.use_cache = False
    return TrainingBase(path, family, hardware, attention, precision, model, load_tokenizer(path))


def build_trainer(
    config: FinetuneConfig,
    model: Any,
    tokenizer: Any,
    train_set: Any,
    eval_set: Any,
    output: Path,
    precision: str,
    attention: str,
    report_to: str | None,
    *,
    hardware: Hardware | None = None,
    lora: bool = True,
    logger: logging.Logger = log,
) -> Any:
    """An ``SFTTrainer`` for the recipe: LoRA via PEFT (every weight with ``lora=False``), precision from the
    hardware, trackers off unless asked, progress lines to ``logger``.

    The ``sft`` values written ``auto`` (packing, Liger kernels, gradient checkpointing) are chosen for the
    hardware by ``training.fastpaths``.
    """
    from peft import LoraConfig
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig

    sft_values: dict[str, Any] = {
        "output_dir": str(output / "checkpoints"),
        "report_to": "none",
        "logging_first_step": True,
        "save_total_limit": 2,
        "disable_tqdm": True,
    }
    hardware = hardware or Hardware.detect()
    sft_values.update(resolve_auto(config.sft, attention, hardware))
    sft_values.update(bf16=precision == "bf16", fp16=precision == "fp16")
    if hardware.device == "cpu":
        sft_values["use_cpu"] = True  # lets the Trainer run bf16 autocast on a CPU
    if report_to:
        sft_values["report_to"] = [name.strip() for name in report_to.split(",") if name.strip()]
    if eval_set is None:
        sft_values["eval_strategy"] = "no"
    try:
        sft_config = SFTConfig(**sft_values)
    except TypeError as e:
        raise ConfigError(f"section 'sft': {e}") from None
    try:
        peft_config = LoraConfig(**config.lora) if lora else None
    except TypeError as e:
        raise ConfigError(f"section 'lora': {e}") from None
    trainer = sft_trainer_class()(
        model=model,
        args=sft_config,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[progress_callback(logger)],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to the log instead of bare prints
    return trainer


@functools.cache
def sft_trainer_class() -> type:
    """TRL's ``SFTTrainer``, projecting only the labelled positions through the LM head on every device (in eager
    mode: under ``torch_compile`` the varying number of positions would recompile the graph)."""
    from trl import SFTTrainer

    class LabelledPositionsSFTTrainer(SFTTrainer):
        def compute_loss(self, *args: Any, **kwargs: Any) -> Any:
            if self.args.torch_compile:
                return super().compute_loss(*args, **kwargs)
            with lm_head_on_labelled_positions_only():
                return super().compute_loss(*args, **kwargs)

    return LabelledPositionsSFTTrainer


@contextmanager
def lm_head_on_labelled_positions_only() -> Iterator[None]:
    """Make TRL's fused LM head skip positions without a label (prompt and padding) on a CPU too.

    TRL projects only the labelled positions where its Triton kernel runs, and every position elsewhere, so that
    tile shapes stay fixed for graph compilers. Eager CPU training compiles nothing. With the loss on the answers
    only, the skipped prompt and padding positions are most of the head's work: the head over a 49k vocabulary
    costs more than the rest of a small model's step (docs/benchmarks.md). The result is the same loss; only the
    positions whose log-probability is discarded anyway are no longer computed.
    """
    import trl.trainer.utils as trl_utils

    decides_compaction = getattr(trl_utils, "_use_triton", None)
    if decides_compaction is None:  # a TRL without the fused head: nothing to change
        yield
        return
    trl_utils._use_triton = lambda device: True
    try:
        yield
    finally:
        trl_utils._use_triton = decides_compaction


def resume_checkpoint(resume: str, checkpoints: Path) -> str | None:
    """The checkpoint to resume from: the newest one for ``auto``, none for ``no``, else the given folder."""
    from transformers.trainer_utils import get_last_checkpoint

    if resume == "no":
        return None
    if resume == "auto":
        return get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if not Path(resume).is_dir():
        raise ConfigError(f"--resume {resume}: no such checkpoint folder")
    return resume


def progress_callback(logger: logging.Logger = log) -> Any:
    """A ``TrainerCallback`` that writes each logged step (step/total, loss, learning rate, tokens) to the log."""
    from transformers import TrainerCallback

    class ProgressLog(TrainerCallback):
        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if not logs:
                return
            shown = {
                k: (round(v, 5) if isinstance(v, float) else v) for k, v in logs.items() if k != "total_flos"
            }
            logger.info("step %d/%d %s", state.global_step, state.max_steps, json.dumps(shown))

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            logger.info("checkpoint saved at step %d", state.global_step)

    return ProgressLog()


def last_logged(history: list[dict[str, Any]], key: str) -> Any:
    """The most recent value of ``key`` in a trainer's log history (``None`` when it was never logged)."""
    for entry in reversed(history):
        if key in entry:
            return entry[key]
    return None
