"""Term glossaries: JSON lists (nested lists too) or JSONL of ``{term | kor_term, eng_term?, description}``.

Each entry gives two pairs: description -> term and term -> description, worded by :class:`TermTemplates`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.formats import JSONProblem, flatten_lists, list_files, load_json, read_text
from training.prompts import TermTemplates, description_answer, fill
from training.records import QAPair, SkipLog, collapse_spaces, normalize_key

SOURCE = "term"
SUFFIXES = (".json", ".jsonl")
TERM_KEYS = ("term", "kor_term")


def _text_field(entry: dict[str, Any], names: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(value, problem) of the first present field among ``names``."""
    for name in names:
        if name in entry and entry[name] is not None:
            value = entry[name]
            if not isinstance(value, str):
                return None, f"'{name}' is {type(value).__name__}, not a string"
            value = collapse_spaces(value)
            return (value, None) if value else (None, f"'{name}' is empty")
    return None, f"missing '{' or '.join(names)}'"


def _reason(problem: str | None) -> str:
    return "wrong_type" if problem and "not a string" in problem else "missing_field"


def entry_pairs(
    entry: Any, templates: TermTemplates, file: str, location: str, skips: SkipLog
) -> list[QAPair]:
    """The two Q/A pairs of one glossary entry, or none (recorded) when the entry is unusable."""
    if not isinstance(entry, dict):
        skips.add(SOURCE, file, location, "not_an_object", f"got {type(entry).__name__}")
        return []
    term, problem = _text_field(entry, TERM_KEYS)
    if term is None:
        skips.add(SOURCE, file, location, _reason(problem), problem or "")
        return []
    description, problem = _text_field(entry, ("description",))
    if description is None:
        skips.add(SOURCE, file, location, _reason(problem), problem or "")
        return []
    eng_term, problem = _text_field(entry, ("eng_term",))
    if problem and "not a string" in problem:
        skips.add(SOURCE, file, location, "wrong_type", problem)
        return []
    if eng_term is None:
        label, answer_term = term, term
    else:
        label = fill(templates.term_label_with_eng, term=term, eng_term=eng_term)
        answer_term = fill(templates.answer_with_eng, term=term, eng_term=eng_term)
    origin = f"{file}:{location}"
    group = normalize_key(term)
    return [
        QAPair(
            SOURCE, fill(templates.description_to_term, description=description), answer_term, origin, group
        ),
        QAPair(
            SOURCE,
            fill(templates.term_to_description, term=label),
            description_answer(templates, label, description),
            origin,
            group,
        ),
    ]


def read_term_file(path: Path, templates: TermTemplates, skips: SkipLog) -> list[QAPair]:
    """Q/A pairs of one glossary file."""
    text = read_text(path, SOURCE, skips)
    if text is None:
        return []
    file = str(path)
    items: list[tuple[str, Any]] = []
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = load_json(line)
            except JSONProblem as problem:
                skips.add(SOURCE, file, f"line {number}", problem.reason, problem.detail)
                continue
            items.extend(flatten_lists(value, f"line {number} "))
    else:
        try:
            data = load_json(text)
        except JSONProblem as problem:
            skips.add(SOURCE, file, problem.location, problem.reason, problem.detail)
            return []
        items.extend(flatten_lists(data, "item "))
    pairs: list[QAPair] = []
    for location, entry in items:
        pairs.extend(entry_pairs(entry, templates, file, location.strip(), skips))
    return pairs


def read_term_folder(folder: Path, templates: TermTemplates, skips: SkipLog) -> list[QAPair]:
    """Q/A pairs of every glossary file of a folder, in file-name order."""
    pairs: list[QAPair] = []
    for path in list_files(folder, SUFFIXES, SOURCE, skips):
        pairs.extend(read_term_file(path, templates, skips))
    return pairs
