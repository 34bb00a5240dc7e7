"""``python -m training prepare``: build the Q/A fine-tuning dataset from exams, glossaries and transcripts.

Input folder layout (any part may be absent)::

    exam_data/        *.txt or *.json ({"fixed_text": "질문: ... 정답: ..."}) exam files
    term_data/        *.json (lists, nested lists too) or *.jsonl glossaries
    transcript_data/  *.jsonl ({context, json_output}) extraction results, or its success/ subfolder
    transcript_raw/   *.txt raw transcripts, sent to an LLM with --extract

Output (``--output DIR``): ``dataset/`` (DatasetDict via save_to_disk), ``train.jsonl``, ``validation.jsonl``,
``test.jsonl``, ``stats.json`` (counts and every skipped record with its reason) and ``result.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from training.dedup import DEFAULT_NEAR_THRESHOLD, deduplicate
from training.exceptions import PrepareError
from training.extract import add_extraction_arguments, run_extraction, settings_from_args
from training.formats.exam import read_exam_folder
from training.formats.terms import read_term_folder
from training.formats.transcripts import read_transcript_folder
from training.prompts import INSTRUCTION_PROMPTS, LANGUAGES, TERM_TEMPLATES, TermTemplates, fill
from training.records import SOURCES, QAPair, SkipLog, collapse_spaces, normalize_key
from training.split import DEFAULT_RELATED_THRESHOLD, SPLITS, split_pairs

log = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
SOURCE_FOLDERS = {"exam": "exam_data", "term": "term_data", "transcript": "transcript_data"}
RAW_TRANSCRIPTS = "transcript_raw"


def row_id(source: str, question: str) -> str:
    """Stable row id: sha1 of source and question."""
    return hashlib.sha1(f"{source}\n{question}".encode()).hexdigest()


def to_row(pair: QAPair, prompt_template: str) -> dict[str, Any]:
    """A conversational prompt-completion row as TRL expects, plus the plain fields."""
    return {
        "prompt": [{"role": "user", "content": fill(prompt_template, question=pair.question)}],
        "completion": [{"role": "assistant", "content": pair.answer}],
        "question": pair.question,
        "answer": pair.answer,
        "source": pair.source,
        "id": row_id(pair.source, pair.question),
    }


def read_local(
    folder: Path, sources: Iterable[str], templates: TermTemplates, skips: SkipLog
) -> list[QAPair]:
    """Pairs of an input folder's source subfolders, in a fixed order (exam, term, transcript)."""
    if not folder.is_dir():
        raise PrepareError(f"{folder}: input folder does not exist")
    pairs: list[QAPair] = []
    for source in sources:
        sub = folder / SOURCE_FOLDERS[source]
        if not sub.is_dir():
            continue
        if source == "exam":
            pairs.extend(read_exam_folder(sub, skips))
        elif source == "term":
            pairs.extend(read_term_folder(sub, templates, skips))
        else:
            pairs.extend(read_transcript_folder(sub, skips))
    return pairs


def read_hub(dataset_id: str, default_source: str | None, skips: SkipLog) -> list[QAPair]:
    """Pairs of a Hugging Face dataset with ``question``/``answer`` columns (and ``source``, if any)."""
    from datasets import load_dataset

    try:
        loaded = load_dataset(dataset_id)
    except Exception as exc:  # offline, unknown id, no access: one clear message
        raise PrepareError(f"cannot load Hugging Face dataset '{dataset_id}': {exc}") from exc
    pairs: list[QAPair] = []
    for split_name in sorted(loaded):
        for index, row in enumerate(loaded[split_name]):
            where = f"{split_name}[{index}]"
            source = row.get("source") if row.get("source") in SOURCES else default_source
            question, answer = row.get("question"), row.get("answer")
            if isinstance(answer, list):
                answer = answer[0] if answer else None
            if source is None:
                skips.add("hub", dataset_id, where, "missing_field", "no valid 'source'; pass --hub-source")
            elif not isinstance(question, str) or not question.strip():
                skips.add(source, dataset_id, where, "missing_field", "missing or empty 'question'")
            elif not isinstance(answer, str) or not answer.strip():
                skips.add(source, dataset_id, where, "missing_field", "missing or empty 'answer'")
            else:
                q = collapse_spaces(question)
                pairs.append(
                    QAPair(source, q, collapse_spaces(answer), f"{dataset_id}:{where}", normalize_key(q))
                )
    return pairs


def save_outputs(splits: dict[str, list[dict[str, Any]]], output: Path) -> None:
    """``dataset/`` with save_to_disk and one JSONL per split."""
    from datasets import Dataset, DatasetDict, Features, Value

    message = {"role": Value("string"), "content": Value("string")}
    features = Features(
        {
            "prompt": [message],
            "completion": [message],
            "question": Value("string"),
            "answer": Value("string"),
            "source": Value("string"),
            "id": Value("string"),
        }
    )
    output.mkdir(parents=True, exist_ok=True)
    columns = list(features)
    dataset = DatasetDict(
        {
            name: Dataset.from_dict({key: [row[key] for row in rows] for key in columns}, features=features)
            for name, rows in splits.items()
        }
    )
    dataset.save_to_disk(str(output / "dataset"))
    for name, rows in splits.items():
        with (output / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_stats(
    read: list[QAPair],
    kept: list[QAPair],
    splits: dict[str, list[QAPair]],
    skips: SkipLog,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Counts per source and split, and every skipped record."""
    duplicate_reasons = {"exact_duplicate", "conflicting_answer", "near_duplicate"}
    per_source: dict[str, Any] = {}
    for source in sorted({p.source for p in read} | {s.source for s in skips.items}):
        removed = sum(1 for s in skips.items if s.source == source and s.reason in duplicate_reasons)
        per_source[source] = {
            "pairs_read": sum(1 for p in read if p.source == source),
            "input_records_skipped": skips.count(source) - removed,
            "duplicates_removed": removed,
            "rows": sum(1 for p in kept if p.source == source),
            "splits": {name: sum(1 for p in splits[name] if p.source == source) for name in SPLITS},
            "skipped_by_reason": skips.by_reason(source),
        }
    return {
        "settings": settings,
        "total_rows": len(kept),
        "splits": {name: len(splits[name]) for name in SPLITS},
        "sources": per_source,
        "skipped_total": skips.count(),
        "skipped_by_reason": skips.by_reason(),
        "skipped": skips.as_dicts(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training prepare", description=__doc__.split("\n\n")[0])
    where = parser.add_argument_group("input and output")
    where.add_argument("--input", type=Path, action="append", default=[], help="input folder (repeatable)")
    where.add_argument("--sample", choices=LANGUAGES, help="use the shipped sample of this language")
    where.add_argument("--hub-dataset", help="Hugging Face dataset id (needs the hub)")
    where.add_argument("--hub-source", choices=SOURCES, help="source of hub rows without a 'source' column")
    where.add_argument("--output", type=Path, default=os.environ.get("BACKENDAI_PIPELINE_OUTPUTS"))
    where.add_argument(
        "--sources", default=",".join(SOURCES), help="comma-separated subset of exam,term,transcript"
    )
    shape = parser.add_argument_group("rows and split")
    shape.add_argument(
        "--language",
        choices=LANGUAGES,
        help="default prompt and term templates (default: the --sample's language, else ko)",
    )
    shape.add_argument("--prompt-template", help="instruction prompt with {question}")
    shape.add_argument("--term-templates", help="'ko', 'en' or a JSON file of term question templates")
    shape.add_argument("--seed", type=int, default=42)
    shape.add_argument("--validation-fraction", type=float, default=0.1)
    shape.add_argument("--test-fraction", type=float, default=0.1)
    shape.add_argument("--near-duplicate-threshold", type=float, default=DEFAULT_NEAR_THRESHOLD)
    shape.add_argument("--no-near-duplicates", action="store_true", help="remove exact duplicates only")
    shape.add_argument(
        "--related-threshold",
        type=float,
        default=DEFAULT_RELATED_THRESHOLD,
        help="fact cosine at which pairs of different groups or sources are kept in one split",
    )
    extraction = parser.add_argument_group("extraction of raw transcripts")
    extraction.add_argument(
        "--extract", action="store_true", help=f"run LLM extraction on {RAW_TRANSCRIPTS}/"
    )
    extraction.add_argument("--extraction-dir", type=Path, help="default: OUTPUT/transcript_extraction")
    add_extraction_arguments(parser)
    return parser


def _term_templates(value: str | None, language: str) -> TermTemplates:
    if value is None:
        return TERM_TEMPLATES[language]
    if value in TERM_TEMPLATES:
        return TERM_TEMPLATES[value]
    return TermTemplates.from_json(Path(value))


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole preparation; returns the stats written to ``stats.json``."""
    if args.output is None:
        raise PrepareError("no output folder: pass --output or set BACKENDAI_PIPELINE_OUTPUTS")
    if getattr(args, "language", None) is None:
        args.language = args.sample or "ko"
    inputs: list[Path] = list(args.input) + ([SAMPLES_DIR / args.sample] if args.sample else [])
    if not inputs and not args.hub_dataset:
        raise PrepareError("no input: pass --input DIR, --sample LANG or --hub-dataset ID")
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise PrepareError(f"--sources: unknown source(s) {unknown}; choose from {list(SOURCES)}")
    prompt_template = args.prompt_template or INSTRUCTION_PROMPTS[args.language]
    if "{question}" not in prompt_template:
        raise PrepareError("--prompt-template must contain the {question} placeholder")
    try:
        templates = _term_templates(args.term_templates, args.language)
    except ValueError as exc:
        raise PrepareError(str(exc)) from exc
    near = None if args.no_near_duplicates else args.near_duplicate_threshold
    if near is not None and not 0 < near <= 1:
        raise PrepareError("--near-duplicate-threshold must be in (0, 1]")
    if not 0 < args.related_threshold <= 1:
        raise PrepareError("--related-threshold must be in (0, 1]")

    skips = SkipLog()
    extra_transcripts: list[Path] = []
    extraction_reports: list[dict[str, Any]] = []
    if args.extract and "transcript" in sources:
        try:
            settings = settings_from_args(args)
        except ValueError as exc:
            raise PrepareError(str(exc)) from exc
        work_dir = args.extraction_dir or args.output / "transcript_extraction"
        for index, folder in enumerate(inputs):
            raw = folder / RAW_TRANSCRIPTS
            if not raw.is_dir():
                log.warning("--extract: %s has no %s/ folder", folder, RAW_TRANSCRIPTS)
            else:
                target = work_dir if len(inputs) == 1 else work_dir / str(index)
                report = run_extraction(raw, target, settings)
                extraction_reports.append({"input": str(raw), **report.as_dict()})
                for failure in report.failures:
                    skips.add(
                        "transcript", str(raw), failure["chunk_id"], "extraction_failed", failure["error"]
                    )
                extra_transcripts.append(target / "success")

    read: list[QAPair] = []
    for folder in inputs:
        read.extend(read_local(folder, sources, templates, skips))
    for folder in extra_transcripts:
        if folder.is_dir():
            read.extend(read_transcript_folder(folder, skips))
    if args.hub_dataset:
        read.extend(p for p in read_hub(args.hub_dataset, args.hub_source, skips) if p.source in sources)
    if not read:
        raise PrepareError(f"no Q/A pairs found in {[str(p) for p in inputs] or args.hub_dataset}")

    kept = deduplicate(read, skips, near)
    try:
        splits = split_pairs(
            kept, args.seed, args.validation_fraction, args.test_fraction, args.related_threshold
        )
    except ValueError as exc:
        raise PrepareError(str(exc)) from exc
    save_outputs(
        {name: [to_row(p, prompt_template) for p in pairs] for name, pairs in splits.items()}, args.output
    )
    settings_record = {
        "inputs": [str(p) for p in inputs],
        "hub_dataset": args.hub_dataset,
        "sources": sources,
        "language": args.language,
        "prompt_template": prompt_template,
        "seed": args.seed,
        "validation_fraction": args.validation_fraction,
        "test_fraction": args.test_fraction,
        "near_duplicate_threshold": near,
        "related_threshold": args.related_threshold,
        "split_unit": "related groups (a glossary term's two pairs share a group; groups stating a related fact "
        "share a unit, across sources)",
    }
    stats = build_stats(read, kept, splits, skips, settings_record)
    if extraction_reports:
        stats["extraction"] = extraction_reports
    (args.output / "stats.json").write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    result = {"rows": stats["total_rows"], **stats["splits"], "skipped": stats["skipped_total"]}
    (args.output / "result.json").write_text(json.dumps(result) + "\n")
    return stats


def main(argv: list[str] | None = None) -> int:
    """Exit 0 on success, 2 on bad usage or unusable input."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        stats = run(args)
    except PrepareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    splits = ", ".join(f"{name} {count}" for name, count in stats["splits"].items())
    print(
        f"prepared {stats['total_rows']} rows ({splits}); skipped {stats['skipped_total']}: "
        f"{stats['skipped_by_reason']}; written to {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
