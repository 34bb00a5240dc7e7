"""Hostile and careless input files: each becomes a counted skip with its reason, and ``prepare`` goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training import prepare
from training.formats.exam import read_exam_folder
from training.formats.terms import read_term_folder
from training.formats.transcripts import read_transcript_file
from training.prompts import TERM_TEMPLATES
from training.records import SkipLog

DEPTH = 100_000
DEEP = "[" * DEPTH + "]" * DEPTH  # valid JSON, nested far deeper than a recursive reader can follow


def _record(question: str, answer: Any) -> str:
    return json.dumps(
        {"context": "c", "json_output": json.dumps({"qa_pairs": [{"question": question, "answer": answer}]})}
    )


def _skips(stats: dict[str, Any], name: str) -> list[tuple[str, str]]:
    return [(s["location"], s["reason"]) for s in stats["skipped"] if Path(s["file"]).name == name]


def test_deeply_nested_json_files_are_skipped_and_prepare_goes_on(tmp_path: Path) -> None:
    source = tmp_path / "in"
    for folder in ("exam_data", "term_data", "transcript_data"):
        (source / folder).mkdir(parents=True)
    (source / "exam_data" / "a_good.txt").write_text("Question: What is FOB? Answer: Free On Board.\n")
    (source / "exam_data" / "b_deep.json").write_text(DEEP)
    terms = [
        {"term": "Laytime", "description": "time to load a ship"},
        {"term": "Embargo", "description": "a ban"},
    ]
    (source / "term_data" / "a_good.json").write_text(json.dumps(terms))
    (source / "term_data" / "b_deep.json").write_text(DEEP)
    (source / "term_data" / "c_deep.jsonl").write_text(DEEP + "\n")
    (source / "transcript_data" / "a_good.jsonl").write_text(
        _record("When is duty paid?", "On import.") + "\n"
    )
    (source / "transcript_data" / "b_deep.jsonl").write_text(DEEP + "\n")
    out = tmp_path / "out"
    assert prepare.main(["--input", str(source), "--output", str(out), "--language", "en"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert _skips(stats, "b_deep.json") == [("file", "too_deeply_nested")] * 2  # the exam and the term file
    assert _skips(stats, "c_deep.jsonl") == [("line 1", "too_deeply_nested")]
    assert _skips(stats, "b_deep.jsonl") == [("line 1", "too_deeply_nested")]
    assert {s: stats["sources"][s]["pairs_read"] for s in ("exam", "term", "transcript")} == {
        "exam": 1,
        "term": 4,
        "transcript": 1,
    }
    assert stats["skipped_by_reason"] == {"too_deeply_nested": 4}
    assert stats["total_rows"] == 6


def test_deep_json_inside_a_transcript_record_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "lecture.jsonl"
    deep_output = json.dumps({"context": "c", "json_output": DEEP})
    deep_answer = _record("Which list?", json.loads("[" * 400 + "1" + "]" * 400))
    path.write_text("\n".join([deep_output, deep_answer, _record("Q?", "A.")]) + "\n")
    skips = SkipLog()
    pairs = read_transcript_file(path, skips)
    assert [(p.question, p.answer) for p in pairs] == [("Q?", "A.")]
    assert [(s.location, s.reason) for s in skips.items] == [
        ("line 1", "too_deeply_nested"),
        ("line 2 qa_pairs[0]", "wrong_type"),
    ]
    assert len(skips.items[1].detail) <= 80


def test_nested_term_lists_as_deep_as_the_reader_allows(tmp_path: Path) -> None:
    depth = 600
    entry = {"term": "Laytime", "description": "time to load a ship"}
    (tmp_path / "nested.json").write_text("[" * depth + json.dumps(entry) + "]" * depth)
    skips = SkipLog()
    pairs = read_term_folder(tmp_path, TERM_TEMPLATES["en"], skips)
    assert [p.answer for p in pairs] == ["Laytime", "Laytime is time to load a ship"]
    assert pairs[0].origin == f"{tmp_path / 'nested.json'}:item {'[0]' * depth}"
    assert skips.items == []


def test_an_empty_exam_text_is_a_skip(tmp_path: Path) -> None:
    (tmp_path / "a_empty.txt").write_text("")
    (tmp_path / "b_blank.txt").write_text(" \n\n\t\n")
    (tmp_path / "c_good.txt").write_text("Question: What is CIF? Answer: Cost, Insurance and Freight.")
    skips = SkipLog()
    pairs = read_exam_folder(tmp_path, skips)
    assert [p.answer for p in pairs] == ["Cost, Insurance and Freight."]
    assert [(Path(s.file).name, s.location, s.reason) for s in skips.items] == [
        ("a_empty.txt", "file", "empty_file"),
        ("b_blank.txt", "file", "empty_file"),
    ]


def test_a_directory_named_like_an_input_file_is_a_skip(tmp_path: Path) -> None:
    (tmp_path / "a_folder.txt").mkdir()
    (tmp_path / "b_folder.json").mkdir()
    (tmp_path / "plain-folder").mkdir()  # not named as an input: not an input
    (tmp_path / "c_good.txt").write_text("Question: What is CIF? Answer: Cost, Insurance and Freight.")
    skips = SkipLog()
    pairs = read_exam_folder(tmp_path, skips)
    assert [p.answer for p in pairs] == ["Cost, Insurance and Freight."]
    assert [(Path(s.file).name, s.location, s.reason) for s in skips.items] == [
        ("a_folder.txt", "file", "not_a_file"),
        ("b_folder.json", "file", "not_a_file"),
    ]


def test_a_missing_answer_is_a_missing_field(tmp_path: Path) -> None:
    path = tmp_path / "lecture.jsonl"
    qa_pairs = [
        {"question": "No answer?"},
        {"question": "Null answer?", "answer": None},
        {"question": "Q?", "answer": 3},
    ]
    path.write_text(json.dumps({"context": "c", "json_output": json.dumps({"qa_pairs": qa_pairs})}) + "\n")
    skips = SkipLog()
    assert read_transcript_file(path, skips) == []
    assert [(s.location, s.reason) for s in skips.items] == [
        ("line 1 qa_pairs[0]", "missing_field"),
        ("line 1 qa_pairs[1]", "missing_field"),
        ("line 1 qa_pairs[2]", "wrong_type"),
    ]


def test_a_deep_line_in_extraction_results_is_redone_not_fatal(tmp_path: Path) -> None:
    from training.extract import SUCCESS_DIR, done_chunk_ids

    (tmp_path / SUCCESS_DIR).mkdir()
    good = json.dumps({"chunk_id": "lecture#0-abc", "context": "c", "json_output": "{}"})
    (tmp_path / SUCCESS_DIR / "lecture.jsonl").write_text(f"{DEEP}\n{good}\n")
    assert done_chunk_ids(tmp_path) == {"lecture#0-abc"}
