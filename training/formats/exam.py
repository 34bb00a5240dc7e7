"""Exam files: ``질문: ... 정답: ...`` (or ``Question: ... Answer: ...``) blocks -> question with options -> answer.

Files are plain text (``.txt``) or JSON (``.json``) holding the text under ``fixed_text`` (or ``text``), as one
object or a list of objects.
"""

from __future__ import annotations

import re
from pathlib import Path

from training.formats import JSONProblem, list_files, load_json, read_text
from training.records import QAPair, SkipLog, collapse_spaces, normalize_key

SOURCE = "exam"
SUFFIXES = (".txt", ".json")
TEXT_KEYS = ("fixed_text", "text")

_QUESTION_MARK = re.compile(r"(?:질문|Question)\s*:")
_ANSWER_MARK = re.compile(r"(?:정답|Answer)\s*:")
# An option number glued to the end of the previous sentence ("...한다.2. 타 법..." -> "...한다. 2. 타 법...").
# The character before the punctuation must not be a digit, so decimals such as "8471.30." stay intact.
_GLUED_OPTION = re.compile(r"(?<=[^\s\d])([.?!)])\s*(\d{1,2})\.(?!\d)\s*")
_OPTION_START = re.compile(r"(?:^|(?<=\s))(\d{1,2})\.\s")
_BARE_OPTION_NUMBER = re.compile(r"^\(?(\d{1,2})\s*[.)]?$")


def normalize_options(text: str) -> str:
    """Collapse whitespace and give every numbered option the form ``" N. "``."""
    return collapse_spaces(_GLUED_OPTION.sub(r"\1 \2. ", text))


def split_options(question: str) -> tuple[str, list[str]]:
    """Stem and option texts of a normalised question (options numbered 1, 2, 3, ... in order)."""
    chosen: list[re.Match[str]] = []
    for match in _OPTION_START.finditer(question):
        if int(match.group(1)) == len(chosen) + 1:
            chosen.append(match)
    if len(chosen) < 2:
        return question, []
    ends = [m.start() for m in chosen[1:]] + [len(question)]
    options = [question[m.end() : end].strip() for m, end in zip(chosen, ends, strict=True)]
    return question[: chosen[0].start()].strip(), options


def parse_exam_text(text: str, file: str, skips: SkipLog, where: str = "line") -> list[QAPair]:
    """Split exam text into Q/A pairs; blocks without an answer, question or answer text are recorded."""
    pairs: list[QAPair] = []
    marks = list(_QUESTION_MARK.finditer(text))
    if not marks:
        if text.strip():
            skips.add(SOURCE, file, f"{where} 1", "no_question_marker", "no '질문:' or 'Question:' found")
        return pairs
    if text[: marks[0].start()].strip():
        line = 1
        skips.add(SOURCE, file, f"{where} {line}", "text_before_first_question", text[:60].strip())
    ends = [m.start() for m in marks[1:]] + [len(text)]
    for mark, end in zip(marks, ends, strict=True):
        location = f"{where} {text.count(chr(10), 0, mark.start()) + 1}"
        block = text[mark.end() : end]
        answer_mark = _ANSWER_MARK.search(block)
        if answer_mark is None:
            skips.add(SOURCE, file, location, "no_answer_marker", collapse_spaces(block)[:80])
            continue
        question = normalize_options(block[: answer_mark.start()])
        answer = normalize_options(block[answer_mark.end() :])
        if not question:
            skips.add(SOURCE, file, location, "empty_question")
            continue
        if not answer:
            skips.add(SOURCE, file, location, "empty_answer", question[:80])
            continue
        number = _BARE_OPTION_NUMBER.match(answer)
        if number:
            _, options = split_options(question)
            index = int(number.group(1))
            if not 1 <= index <= len(options):
                skips.add(SOURCE, file, location, "answer_option_not_found", f"answer {answer!r}")
                continue
            answer = options[index - 1]
        pairs.append(QAPair(SOURCE, question, answer, f"{file}:{location}", normalize_key(question)))
    return pairs


def read_exam_file(path: Path, skips: SkipLog) -> list[QAPair]:
    """Q/A pairs of one exam file (``.txt`` or ``.json``)."""
    text = read_text(path, SOURCE, skips)
    if text is None:
        return []
    if path.suffix.lower() == ".txt":
        return parse_exam_text(text, str(path), skips)
    try:
        data = load_json(text)
    except JSONProblem as problem:
        skips.add(SOURCE, str(path), problem.location, problem.reason, problem.detail)
        return []
    documents = data if isinstance(data, list) else [data]
    pairs: list[QAPair] = []
    for index, document in enumerate(documents):
        where = f"item [{index}]" if isinstance(data, list) else "document"
        key = next((k for k in TEXT_KEYS if isinstance(document, dict) and k in document), None)
        if key is None or not isinstance(document[key], str):
            skips.add(
                SOURCE, str(path), where, "missing_field", "expected a string under 'fixed_text' or 'text'"
            )
            continue
        pairs.extend(parse_exam_text(document[key], str(path), skips, where=f"{where} {key} line"))
    return pairs


def read_exam_folder(folder: Path, skips: SkipLog) -> list[QAPair]:
    """Q/A pairs of every exam file of a folder, in file-name order."""
    pairs: list[QAPair] = []
    for path in list_files(folder, SUFFIXES, SOURCE, skips):
        pairs.extend(read_exam_file(path, skips))
    return pairs
