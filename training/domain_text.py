"""Raw domain text for continual pre-training: documents read from folders of text, Markdown, JSONL and JSON.

A document is a paragraph of a ``.txt``/``.md`` file (blank-line separated: a lecture paragraph, an exam
question), one record of a ``.jsonl`` file, or one item of a ``.json`` file (a list, nested lists too). A record
is a string, an object with one of the text fields (``text`` by default), or a glossary entry (``term`` or
``kor_term``, optional ``eng_term``, ``description``), which reads ``Term (ENG): description``.

Bad input stops the step with one line naming the file and line: text that is not UTF-8, a line longer than
:data:`MAX_LINE_BYTES`, a ``.json`` file larger than :data:`MAX_JSON_BYTES`, JSON that is invalid or nested too
deeply, a record without text.

Held-out facts stay out of training: :func:`remove_held_out` removes every document, and every sentence of the
others, whose fact vector (the same character n-gram TF-IDF that keeps related facts on one side of the Q/A
split) is close to a held-out question and answer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.exceptions import DatasetError
from training.formats import JSONProblem, flatten_lists, load_json
from training.formats.terms import TERM_KEYS

SUFFIXES = (".txt", ".md", ".jsonl", ".json")
TEXT_FIELDS = ("text",)
#: The longest line (a JSONL record, a line of text) read, in bytes.
MAX_LINE_BYTES = 16 * 2**20
#: The largest ``.json`` file read (it is parsed whole; larger data belongs in JSONL, one record per line).
MAX_JSON_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Document:
    """One unit of domain text and where it came from (``file, line N``)."""

    text: str
    origin: str


def read_documents(inputs: Sequence[Path], text_fields: Sequence[str] = TEXT_FIELDS) -> list[Document]:
    """Every document of the input files and folders (folders searched recursively, in name order)."""
    documents: list[Document] = []
    for path in files_of(inputs):
        if path.suffix.lower() in (".txt", ".md"):
            documents.extend(_paragraphs(path))
        elif path.suffix.lower() == ".jsonl":
            documents.extend(_jsonl_records(path, text_fields))
        else:
            documents.extend(_json_items(path, text_fields))
    if not documents:
        names = ", ".join(str(p) for p in inputs)
        raise DatasetError(f"{names}: no text found (expected {', '.join(SUFFIXES)} files)")
    return documents


def files_of(inputs: Sequence[Path]) -> list[Path]:
    """The text files of the inputs: a file as given, a folder's files of the known kinds (hidden ones skipped)."""
    found: list[Path] = []
    for root in inputs:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            found.extend(
                p
                for p in sorted(root.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            )
        else:
            raise DatasetError(f"{root}: no such file or folder")
    return found


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file, read in bounded lines."""
    with path.open("rb") as handle:
        number = 0
        while line := handle.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                raise DatasetError(f"{path}, line {number}: longer than {MAX_LINE_BYTES:,} bytes")
            try:
                text = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DatasetError(f"{path}, line {number}: not UTF-8 text ({e.reason})") from None
            yield number, text


def _paragraphs(path: Path) -> Iterator[Document]:
    lines: list[str] = []
    start = 0
    for number, line in _lines(path):
        if line.strip():
            start = start or number
            lines.append(line.rstrip())
        elif lines:
            yield Document("\n".join(lines), f"{path}, line {start}")
            lines, start = [], 0
    if lines:
        yield Document("\n".join(lines), f"{path}, line {start}")


def _jsonl_records(path: Path, text_fields: Sequence[str]) -> Iterator[Document]:
    for number, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        yield Document(record_text(_parse(line, where), text_fields, where), where)


def _json_items(path: Path, text_fields: Sequence[str]) -> Iterator[Document]:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise DatasetError(
            f"{path}: {size:,} bytes, more than the {MAX_JSON_BYTES:,} a .json file may hold; "
            "write it as JSONL (one record per line)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text ({e.reason})") from None
    if not text.strip():
        return
    try:
        data = load_json(text)
    except JSONProblem as problem:
        where = f"{path}, line {problem.line}" if problem.line else str(path)
        raise DatasetError(f"{where}: {_json_problem(problem)}") from None
    for index, item in flatten_lists(data, "item "):
        where = f"{path}, {index}" if isinstance(data, list) else str(path)
        yield Document(record_text(item, text_fields, where), where)


def _parse(line: str, where: str) -> Any:
    try:
        return load_json(line)
    except JSONProblem as problem:
        raise DatasetError(f"{where}: {_json_problem(problem)}") from None


def _json_problem(problem: JSONProblem) -> str:
    return problem.detail if problem.reason != "broken_json" else f"not valid JSON ({problem.detail})"


def record_text(record: Any, text_fields: Sequence[str], where: str) -> str:
    """The text of one JSON record: a string, an object's first text field, or a glossary entry's definition."""
    if isinstance(record, str) and record.strip():
        return record.strip()
    if isinstance(record, dict):
        for name in text_fields:
            value = record.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        term = next(
            (record[k] for k in TERM_KEYS if isinstance(record.get(k), str) and record[k].strip()), None
        )
        description = record.get("description")
        if term and isinstance(description, str) and description.strip():
            english = record.get("eng_term")
            label = (
                f"{term.strip()} ({english.strip()})"
                if isinstance(english, str) and english.strip()
                else term.strip()
            )
            return f"{label}: {description.strip()}"
    fields = " or ".join(f"'{name}'" for name in text_fields)
    raise DatasetError(
        f"{where}: no text (expected a string, an object with a text field {fields}, "
        "or a glossary entry with 'term' and 'description')"
    )


def held_out_facts(sources: Sequence[str]) -> list[str]:
    """Question and answer of every held-out item: the validation and test rows of a prepared dataset folder, or
    the rows of a question/answer JSONL file (the definitional evaluation set; ``en`` names the shipped one)."""
    from training.data import load_splits, read_definitions
    from training.evaluate import definitions_path

    facts: list[str] = []
    for source in sources:
        if Path(source).is_dir():
            splits = load_splits(source, ("validation", "test"))
            rows: list[Any] = [row for name in ("validation", "test") for row in splits[name]]
        else:
            try:
                path = definitions_path(source)
            except DatasetError:
                raise DatasetError(
                    f"--exclude {source}: no such dataset folder or question/answer file (and no shipped set of that name)"
                ) from None
            rows = read_definitions(path, "{question}")
        facts.extend(f"{row['question']} {row['answer']}" for row in rows)  # as split.fact_text
    return facts


@dataclass(frozen=True)
class Removed:
    """What :func:`remove_held_out` took out: whole documents, and single sentences of the others."""

    documents: list[Document]
    sentences: list[Document]


def remove_held_out(
    documents: Sequence[Document], facts: Sequence[str], threshold: float
) -> tuple[list[Document], Removed]:
    """The documents without the text that states a held-out fact, and what was removed.

    A document whose fact cosine with a held-out fact is >= ``threshold`` is removed whole (a glossary entry, an
    exam question). From the other documents, each sentence that close to a held-out fact is removed (a lecture
    paragraph that lists a held-out term's definition among others); a document left without a sentence goes too.
    """
    from training.chunking import split_sentences
    from training.split import fact_vectors, similar_pairs

    if not documents or not facts:
        return list(documents), Removed([], [])
    by_document = [split_sentences(d.text) for d in documents]
    sentences = [s for own in by_document for s in own]
    n_docs, n_sentences = len(documents), len(sentences)
    vectors = fact_vectors([d.text for d in documents] + sentences + list(facts))
    held = vectors[n_docs + n_sentences :]
    whole = {i for i, _, _ in similar_pairs(vectors[:n_docs], held, threshold)}
    stated = {k for k, _, _ in similar_pairs(vectors[n_docs : n_docs + n_sentences], held, threshold)}
    removed = Removed([d for i, d in enumerate(documents) if i in whole], [])
    kept: list[Document] = []
    first = 0
    for i, document in enumerate(documents):
        own = list(enumerate(by_document[i], start=first))
        first += len(own)
        if i in whole:
            continue
        if not any(k in stated for k, _ in own):
            kept.append(document)
            continue
        removed.sentences.extend(Document(s, document.origin) for k, s in own if k in stated)
        rest = " ".join(s for k, s in own if k not in stated)
        if rest:
            kept.append(Document(rest, document.origin))
    return kept, removed


def split_documents(
    documents: Sequence[Document], fraction: float, seed: int
) -> tuple[list[Document], list[Document]]:
    """(train, validation): a seeded ``fraction`` of the documents (at least one of two or more) held out, both
    in reading order."""
    count = round(len(documents) * fraction)
    if fraction > 0 and count == 0 and len(documents) >= 2:
        count = 1
    held = set(random.Random(seed).sample(range(len(documents)), count))
    train = [d for i, d in enumerate(documents) if i not in held]
    validation = [d for i, d in enumerate(documents) if i in held]
    return train, validation
