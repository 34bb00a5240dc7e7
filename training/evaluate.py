"""``python -m training evaluate``: the base model against the fine-tuned one on the held-out test split.

Both models answer every test prompt (batched greedy generation); the answers are scored with SemScore, the
novel-token F1 and, when a judge is configured, with a 1-5 truthfulness judge. ``--definitions`` adds a second
set of plain definitional questions (the shipped English one: ``--definitions en``), reported in its own
section. Writes ``report.json``, ``report.md``, ``truthfulness.png`` (with a judge), ``semscore.png``,
``definitions_semscore.png`` (with ``--definitions``), ``answer_lengths.png`` and ``result.json`` (the headline
numbers, which a pipeline task returns) into the output folder.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from training.data import load_splits, read_definitions
from training.exceptions import BaseModelError, ConfigError, DatasetError, EvaluationError
from training.judge import Judge, JudgeItem, LocalJudge, OpenAIJudge, Verdict
from training.launch import log_format
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
from training.prepare import SAMPLES_DIR
from training.report import MODELS, ModelResult, build_report, headline, sections, write_outputs
from training.semscore import PACKAGED_MODEL, load_embedder, semscores

log = logging.getLogger("training.evaluate")


@dataclass(frozen=True)
class FinetunedModel:
    """A fine-tuned model: a LoRA adapter on a base model, or a full (merged) model folder."""

    path: Path
    is_adapter: bool
    recorded_base: str | None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=default_input_dir(1), help="prepared dataset folder")
    parser.add_argument(
        "--finetuned",
        type=Path,
        default=default_input_dir(2),
        help="the finetune output folder, an adapter folder, or a merged model folder",
    )
    parser.add_argument("--base-model", help="base model (default: the one the fine-tuning recorded)")
    parser.add_argument("--output", type=Path, default=default_output_dir(), help="output folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N items of each set")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts generated together")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument(
        "--embedding-model",
        default=PACKAGED_MODEL,
        help="sentence-transformers model for SemScore (paper: sentence-transformers/all-mpnet-base-v2; "
        "Korean: a multilingual model)",
    )
    parser.add_argument(
        "--definitions",
        help="a second evaluation set: a JSONL of {question, answer} rows, or 'en' for the shipped English "
        "definitional questions (training/samples/en/definitions_eval/)",
    )
    parser.add_argument("--judge", choices=("none", "openai", "local"), default="none")
    parser.add_argument("--judge-url", help="OpenAI-compatible base URL, e.g. http://host:8000/v1")
    parser.add_argument("--judge-model", help="judge model name (openai) or model id/folder (local)")
    parser.add_argument(
        "--judge-api-key-env", default="OPENAI_API_KEY", help="env var holding the judge's API key"
    )
    parser.add_argument("--judge-concurrency", type=int, default=4)
    parser.add_argument("--judge-max-tokens", type=int, default=256)
    parser.add_argument(
        "--no-structured-output", action="store_true", help="don't ask the judge for JSON mode"
    )
    parser.add_argument("--model-cache", type=Path, default=None, help="where converted base models are kept")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=log_format())
    args = build_parser().parse_args(argv)
    if problem := missing_outside_pipeline(
        {"--dataset": args.dataset, "--finetuned": args.finetuned, "--output": args.output}
    ):
        print(problem, file=sys.stderr)
        return 2
    try:
        result = evaluate(args)
    except (ConfigError, DatasetError, BaseModelError, EvaluationError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run the evaluation described by the parsed arguments; return the headline result."""
    rows = test_rows(args.dataset, args.split, args.limit)
    finetuned = locate_finetuned(args.finetuned)
    base_name = args.base_model or finetuned.recorded_base
    if finetuned.is_adapter and not base_name:
        raise EvaluationError(f"{finetuned.path}: the base model is not recorded; pass --base-model")
    judge_settings = judge_description(args)
    extra_rows, definitions_file = [], None
    if args.definitions:
        definitions_file = definitions_path(args.definitions)
        extra_rows = read_definitions(definitions_file, prompt_template(args.dataset, rows[0]))
        extra_rows = extra_rows[: args.limit] if args.limit is not None else extra_rows

    answers = generate_answers([*rows, *extra_rows], finetuned, base_name, args)
    log.info("scoring with %s", args.embedding_model)
    embedder = load_embedder(args.embedding_model)
    scored = {
        name: (answers[name], semscores(embedder, answers[name], [r["answer"] for r in rows + extra_rows]))
        for name in MODELS
    }
    del embedder
    n = len(rows)
    results = {name: ModelResult(a[:n], s[:n]) for name, (a, s) in scored.items()}
    definitions = None
    if extra_rows:
        definitions = (extra_rows, {name: ModelResult(a[n:], s[n:]) for name, (a, s) in scored.items()})

    judge = make_judge(args)
    if judge is not None:
        verdicts = run_judge(judge, rows, answers)
        for name in MODELS:
            results[name].verdicts = verdicts[name]

    settings = {
        "split": args.split,
        "base_model": base_name or "(merged model only)",
        "finetuned_model": str(finetuned.path),
        "embedding_model": args.embedding_model,
        "judge": judge_settings,
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "definitions": str(definitions_file) if definitions_file else None,
    }
    report = build_report(rows, results, settings=settings, definitions=definitions)
    write_outputs(report, args.output)
    write_plots(report, args.output)
    return headline(report)


def test_rows(dataset: Path, split: str, limit: int | None) -> list[dict[str, Any]]:
    rows = [dict(row) for row in load_splits(dataset, (split,))[split]]
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise DatasetError(f"{dataset}: split {split!r} has no rows")
    return rows


def definitions_path(value: str) -> Path:
    """The file of ``--definitions``: a shipped set by language (``en``) or a path."""
    shipped = SAMPLES_DIR / value / "definitions_eval" / "definitions.jsonl"
    if shipped.is_file():
        return shipped
    path = Path(value)
    if not path.is_file():
        raise DatasetError(f"--definitions {value}: no such file (and no shipped set of that name)")
    return path


def prompt_template(dataset: Path, row: dict[str, Any]) -> str:
    """The instruction template the dataset was prepared with: ``stats.json`` of ``prepare``, else read back
    from a row (its prompt with the question replaced by ``{question}``)."""
    for folder in (dataset, dataset.parent):
        stats = folder / "stats.json"
        if stats.is_file():
            template = (
                json.loads(stats.read_text(encoding="utf-8")).get("settings", {}).get("prompt_template")
            )
            if isinstance(template, str) and "{question}" in template:
                return template
    content = str(row["prompt"][-1]["content"])
    if content.count(row["question"]) != 1:
        raise DatasetError(
            f"{dataset}: cannot tell the prompt template (no stats.json); pass a prepared dataset"
        )
    return content.replace(row["question"], "{question}")


def locate_finetuned(path: Path) -> FinetunedModel:
    """Recognise a finetune output folder, an adapter folder or a full model folder."""
    if (path / "adapter" / "adapter_config.json").is_file():
        recorded = None
        config_file = path / "finetune-config.yaml"
        if config_file.is_file():
            recorded = (yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}).get("base_model")
        if recorded is None:
            recorded = _adapter_base(path / "adapter")
        return FinetunedModel(path / "adapter", True, recorded)
    if (path / "adapter_config.json").is_file():
        return FinetunedModel(path, True, _adapter_base(path))
    if (path / "config.json").is_file():
        return FinetunedModel(path, False, None)
    raise EvaluationError(f"{path}: no adapter (adapter_config.json) or model (config.json) found")


def _adapter_base(adapter: Path) -> str | None:
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    value = config.get("base_model_name_or_path")
    return str(value) if value else None


def _load_model(path: str, model_cache: Path | None) -> Any:
    from transformers import AutoModelForCausalLM

    hardware = Hardware.detect()
    family = model_family(path)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        dtype=torch_dtype(choose_precision("auto", hardware)),
        attn_implementation=choose_attention("auto", family, hardware),
        device_map=hardware.device,
    )
    return model


def generate_answers(
    rows: Sequence[dict[str, Any]], finetuned: FinetunedModel, base_name: str | None, args: argparse.Namespace
) -> dict[str, list[str]]:
    """Answers of the base and the fine-tuned model; an adapter is switched off for the base answers."""
    from training.generate import generate

    conversations = [list(row["prompt"]) for row in rows]
    options = {"batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}
    answers: dict[str, list[str]] = {}
    if finetuned.is_adapter:
        from peft import PeftModel

        assert base_name is not None
        base_path = resolve_base_model(base_name, args.model_cache)
        tokenizer = load_tokenizer(str(finetuned.path))
        model = PeftModel.from_pretrained(_load_model(base_path, args.model_cache), str(finetuned.path))
        log.info("generating %d answers with the base model %s", len(rows), base_path)
        with model.disable_adapter():
            answers["base"] = generate(model, tokenizer, conversations, **options)
        log.info("generating %d answers with the adapter %s", len(rows), finetuned.path)
        answers["finetuned"] = generate(model, tokenizer, conversations, **options)
    else:
        if not base_name:
            raise EvaluationError(f"{finetuned.path}: a merged model needs --base-model to compare against")
        for name, path in (
            ("base", resolve_base_model(base_name, args.model_cache)),
            ("finetuned", str(finetuned.path)),
        ):
            model = _load_model(path, args.model_cache)
            log.info("generating %d answers with %s", len(rows), path)
            answers[name] = generate(model, load_tokenizer(path), conversations, **options)
            del model
            gc.collect()
    del model
    gc.collect()
    return answers


def judge_description(args: argparse.Namespace) -> str | None:
    if args.judge == "none":
        return None
    if not args.judge_model:
        raise EvaluationError(f"--judge {args.judge} needs --judge-model")
    if args.judge == "openai":
        if not args.judge_url:
            raise EvaluationError("--judge openai needs --judge-url (an OpenAI-compatible base URL)")
        return f"{args.judge_model} @ {args.judge_url}"
    return f"{args.judge_model} (local)"


def make_judge(args: argparse.Namespace) -> Judge | None:
    if args.judge == "openai":
        return OpenAIJudge(
            args.judge_url,
            args.judge_model,
            os.environ.get(args.judge_api_key_env),
            concurrency=args.judge_concurrency,
            max_tokens=args.judge_max_tokens,
            structured=not args.no_structured_output,
        )
    if args.judge == "local":
        return LocalJudge(
            resolve_base_model(args.judge_model, args.model_cache),
            batch_size=args.batch_size,
            max_new_tokens=args.judge_max_tokens,
        )
    return None


def run_judge(
    judge: Judge, rows: Sequence[dict[str, Any]], answers: dict[str, list[str]]
) -> dict[str, list[Verdict]]:
    """Judge both models' answers in one pass; failures are logged and counted."""
    items = [
        JudgeItem(row["question"], row["answer"], answers[name][i])
        for name in MODELS
        for i, row in enumerate(rows)
    ]
    log.info("judging %d answers with %s", len(items), judge.name)
    verdicts = judge.judge(items)
    failures = sum(v.score is None for v in verdicts)
    if failures:
        log.warning("the judge gave no score for %d of %d answers", failures, len(items))
    n = len(rows)
    return {"base": verdicts[:n], "finetuned": verdicts[n:]}


def write_plots(report: dict[str, Any], folder: Path) -> None:
    from training.plots import plot_answer_lengths, plot_semscore, plot_truthfulness

    plot_semscore(report, folder / "semscore.png")
    titled = [
        ("held-out split" if not prefix else "definitional questions", section)
        for prefix, section in sections(report)
    ]
    if len(titled) > 1:
        plot_semscore(report, folder / "definitions_semscore.png", titled[1][1])
    plot_answer_lengths(titled, folder / "answer_lengths.png")
    if all(report["summary"][name]["truthfulness"] is not None for name in MODELS):
        plot_truthfulness(report, folder / "truthfulness.png")
