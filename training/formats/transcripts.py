"""Transcript extraction results: JSONL of ``{context, json_output}`` -> one pair per extracted Q/A.

``json_output`` is the LLM's reply, a JSON string (or an already parsed object) with ``{"qa_pairs": [...]}``.
An answer given as a list takes its first item.
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from training.formats import JSONProblem, list_files, load_json, read_text
from training.records import QAPair, SkipLog, collapse_spaces, normalize_key

SOURCE = "transcript"
SUFFIXES = (".jsonl",)


def _answer_text(answer: Any) -> tuple[str | None, str]:
    """(answer, problem): a list answer takes its first item."""
    if answer is None:
        return None, "missing_field"
    if isinstance(answer, list):
        if not answer:
            return None, "empty_answer"
        answer = answer[0]
    if not isinstance(answer, str):
        return None, "wrong_type"
    answer = collapse_spaces(answer)
    return (answer, "") if answer else (None, "empty_answer")


def record_pairs(record: Any, file: str, location: str, skips: SkipLog) -> list[QAPair]:
    """Pairs of one extraction record; unusable records and pairs are recorded."""
    if not isinstance(record, dict):
        skips.add(SOURCE, file, location, "not_an_object", f"got {type(record).__name__}")
        return []
    output = record.get("json_output")
    if output is None:
        skips.add(SOURCE, file, location, "missing_field", "missing 'json_output'")
        return []
    if isinstance(output, str):
        try:
            output = load_json(output, broken="broken_json_output")
        except JSONProblem as bad:
            skips.add(SOURCE, file, location, bad.reason, bad.detail)
            return []
    qa_pairs = output.get("qa_pairs") if isinstance(output, dict) else None
    if not isinstance(qa_pairs, list):
        skips.add(SOURCE, file, location, "missing_field", "'json_output' has no 'qa_pairs' list")
        return []
    pairs: list[QAPair] = []
    for index, item in enumerate(qa_pairs):
        where = f"{location} qa_pairs[{index}]"
        if not isinstance(item, dict):
            skips.add(SOURCE, file, where, "not_an_object", f"got {type(item).__name__}")
            continue
        question = item.get("question")
        if not isinstance(question, str) or not collapse_spaces(question):
            skips.add(SOURCE, file, where, "missing_field", "missing or empty 'question'")
            continue
        answer, problem = _answer_text(item.get("answer"))
        if answer is None:
            skips.add(SOURCE, file, where, problem, f"answer {reprlib.repr(item.get('answer'))}"[:80])
            continue
        question = collapse_spaces(question)
        pairs.append(QAPair(SOURCE, question, answer, f"{file}:{where}", normalize_key(question)))
    return pairs


def read_transcript_file(path: Path, skips: SkipLog) -> list[QAPair]:
    """Pairs of one JSONL file; a broken line is recorded and reading goes on."""
    text = read_text(path, SOURCE, skips)
    if text is None:
        return []
    pairs: list[QAPair] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = load_json(line)
        except JSONProblem as problem:
            skips.add(SOURCE, str(path), f"line {number}", problem.reason, problem.detail)
            continue
        pairs.extend(record_pairs(record, str(path), f"line {number}", skips))
    return pairs


def read_transcript_folder(folder: Path, skips: SkipLog) -> list[QAPair]:
    """Pairs of a folder's ``success/`` subfolder when there is one, else of the folder's own JSONL files."""
    success = folder / "success"
    root = success if success.is_dir() else folder
    pairs: list[QAPair] = []
    for path in list_files(root, SUFFIXES, SOURCE, skips):
        pairs.extend(read_transcript_file(path, skips))
    return pairs
