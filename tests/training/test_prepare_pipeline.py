"""Deduplication, the split, and ``prepare`` end to end on the shipped samples."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from training import prepare
from training.__main__ import main as training_main
from training.dedup import deduplicate, remove_exact_duplicates, remove_near_duplicates
from training.records import QAPair, SkipLog, normalize_key
from training.results import RESULT_KEYS
from training.split import split_counts, split_pairs

SAMPLES = Path(prepare.__file__).resolve().parent / "samples"
ROW_KEYS = {"prompt", "completion", "question", "answer", "source", "id"}


def _pair(question: str, answer: str, source: str = "transcript", group: str | None = None) -> QAPair:
    return QAPair(source, question, answer, f"f.jsonl:line {len(question)}", group or normalize_key(question))


# ---------------------------------------------------------------- dedup


def test_exact_duplicates_and_conflicting_answers() -> None:
    pairs = [
        _pair("What is FOB?", "Free On Board."),
        _pair("what is  FOB", "free on board"),
        _pair("What is FOB?!", "Something else entirely."),
        _pair("What is CIF?", "Cost, Insurance and Freight."),
    ]
    skips = SkipLog()
    kept = remove_exact_duplicates(pairs, skips)
    assert [p.question for p in kept] == ["What is FOB?", "What is CIF?"]
    assert [s.reason for s in skips.items] == ["exact_duplicate", "conflicting_answer"]


def test_near_duplicates_need_similar_question_and_answer() -> None:
    pairs = [
        _pair(
            "When is an import declaration normally filed?", "After the goods arrive at the port of entry."
        ),
        _pair(
            "When is the import declaration normally filed?",
            "After the goods have arrived at the port of entry.",
        ),
        _pair("When is an export declaration normally filed?", "Before the goods are loaded for export."),
        _pair(
            "Which trade term is described as follows: Seller delivers on board.",
            "Free On Board",
            "term",
            "fob",
        ),
        _pair("What does the trade term 'Free On Board' mean?", "Seller delivers on board.", "term", "fob"),
    ]
    skips = SkipLog()
    kept = remove_near_duplicates(pairs, skips, threshold=0.9)
    assert len(kept) == 4
    assert [s.reason for s in skips.items] == ["near_duplicate"]
    assert "cosine" in skips.items[0].detail
    assert deduplicate(pairs, SkipLog(), near_threshold=None) == pairs


# ---------------------------------------------------------------- split


def test_split_counts_keep_every_split_when_possible() -> None:
    assert split_counts(100, 0.1, 0.1) == (80, 10, 10)
    assert split_counts(5, 0.1, 0.1) == (3, 1, 1)
    assert split_counts(2, 0.1, 0.1) == (2, 0, 0)
    with pytest.raises(ValueError):
        split_pairs([], 1, 0.5, 0.5)


def test_split_is_seeded_per_source_and_keeps_groups_together() -> None:
    pairs = [_pair(f"term {i} q{k}", f"a{i}{k}", "term", f"g{i}") for i in range(30) for k in range(2)]
    pairs += [_pair(f"exam {i}", f"e{i}", "exam") for i in range(20)]
    first = split_pairs(pairs, 7, 0.1, 0.2)
    assert first == split_pairs(list(pairs), 7, 0.1, 0.2)
    assert first != split_pairs(pairs, 8, 0.1, 0.2)
    assert sum(len(v) for v in first.values()) == len(pairs)
    groups = {name: {p.group for p in rows if p.source == "term"} for name, rows in first.items()}
    assert not groups["train"] & groups["test"] and not groups["train"] & groups["validation"]
    assert len(groups["test"]) == 6 and len(groups["validation"]) == 3
    assert sum(1 for p in first["test"] if p.source == "exam") == 4


# ---------------------------------------------------------------- prepare on the samples


def _count_sample(folder: Path) -> dict[str, int]:
    """Independent count of the pairs a sample holds, straight from its files."""
    exams = sum(
        len(re.findall(r"(?:질문|Question)\s*:", p.read_text())) for p in (folder / "exam_data").iterdir()
    )
    terms = 0
    for path in (folder / "term_data").iterdir():
        data = json.loads(path.read_text())
        flat = [item for sub in data for item in (sub if isinstance(sub, list) else [sub])]
        terms += 2 * len(flat)
    transcripts = 0
    for path in (folder / "transcript_data" / "success").iterdir():
        for line in path.read_text().splitlines():
            transcripts += len(json.loads(json.loads(line)["json_output"])["qa_pairs"])
    return {"exam": exams, "term": terms, "transcript": transcripts}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_prepare_english_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datasets import load_from_disk

    out = tmp_path / "out"
    assert training_main(["prepare", "--sample", "en", "--language", "en", "--output", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    expected = _count_sample(SAMPLES / "en")
    assert expected["term"] >= 300 and expected["exam"] >= 40 and expected["transcript"] >= 50
    for source, count in expected.items():
        block = stats["sources"][source]
        assert block["pairs_read"] == count
        assert block["rows"] == count - block["duplicates_removed"]
        assert sum(block["splits"].values()) == block["rows"]
        assert block["splits"]["test"] >= 4
    assert stats["skipped_total"] == len(stats["skipped"]) == sum(stats["skipped_by_reason"].values())
    assert stats["total_rows"] == sum(expected.values()) - stats["skipped_total"]

    dataset = load_from_disk(str(out / "dataset"))
    rows = {name: _jsonl(out / f"{name}.jsonl") for name in ("train", "validation", "test")}
    for name, split_rows in rows.items():
        assert len(split_rows) == dataset[name].num_rows == stats["splits"][name]
        assert dataset[name][0] == split_rows[0]
        for row in split_rows:
            assert set(row) == ROW_KEYS
            assert row["prompt"] == [
                {"role": "user", "content": f"Answer the following question: {row['question']}"}
            ]
            assert row["completion"] == [{"role": "assistant", "content": row["answer"]}]
    ids = [row["id"] for split_rows in rows.values() for row in split_rows]
    assert len(ids) == len(set(ids))

    # no glossary term has one pair in train and the other in test
    def term_of(row: dict[str, Any]) -> str:
        match = re.match(r"What does the trade term '(.*)' mean\?$", row["question"])
        return match.group(1) if match else row["answer"]

    terms = {
        name: {term_of(r) for r in split_rows if r["source"] == "term"} for name, split_rows in rows.items()
    }
    assert not terms["train"] & terms["test"]
    result = json.loads((out / "result.json").read_text())
    assert result["test"] == stats["splits"]["test"] and set(result) == RESULT_KEYS["prepare"]
    assert f"prepared {stats['total_rows']} rows" in capsys.readouterr().out


def test_prepare_korean_sample_uses_the_reference_prompt(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert prepare.main(["--input", str(SAMPLES / "ko"), "--output", str(out), "--seed", "3"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    expected = _count_sample(SAMPLES / "ko")
    assert {s: stats["sources"][s]["pairs_read"] for s in expected} == expected
    rows = [row for name in ("train", "validation", "test") for row in _jsonl(out / f"{name}.jsonl")]
    assert len(rows) == stats["total_rows"] == sum(expected.values()) - stats["skipped_total"]
    assert all(row["prompt"][0]["content"] == f"다음 질문에 대답해주세요: {row['question']}" for row in rows)
    answers = {row["question"]: row["answer"] for row in rows}
    assert answers["수입 신고에는 어떤 서류가 필요한가요?"] == "송품장, 포장명세서, 선하증권 등이 필요합니다."
    assert answers["'관세환급' 이라는 무역 용어는 어떤 의미인가요?"].startswith("수출용 원재료")
    assert any(
        q.startswith("다음 중 인코텀즈 2020") and q.endswith("1. FCA 2. DAP. 3. DDP 4. CPT") for q in answers
    )


def test_prepare_counts_bad_records_without_stopping(tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "term_data").mkdir(parents=True)
    (source / "transcript_data").mkdir()
    words = ["Laytime", "Demurrage", "Factoring", "Embargo", "Cross-docking", "Safety stock"]
    meanings = ["time to load a ship", "a charge for late containers", "selling receivables", "a trade ban"]
    meanings += ["moving goods straight between trucks", "extra inventory against variation"]
    terms: list[dict[str, str]] = [
        {"term": w, "description": m} for w, m in zip(words, meanings, strict=True)
    ]
    terms += [{"term": "No description"}, terms[0]]
    (source / "term_data" / "t.json").write_text(json.dumps([terms[:4], terms[4:]]))
    good = json.dumps(
        {"context": "c", "json_output": json.dumps({"qa_pairs": [{"question": "Q?", "answer": ["A."]}]})}
    )
    (source / "transcript_data" / "l.jsonl").write_text(f"{good}\n{{broken\n")
    out = tmp_path / "out"
    assert prepare.main(["--input", str(source), "--output", str(out), "--language", "en"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["skipped_by_reason"] == {"broken_json": 1, "exact_duplicate": 2, "missing_field": 1}
    assert stats["total_rows"] == 13
    assert {(s["reason"], s["location"]) for s in stats["skipped"]} >= {("broken_json", "line 2")}


def test_prepare_with_extraction_through_the_stub(tmp_path: Path, openai_stub: Any, monkeypatch: Any) -> None:
    source = tmp_path / "in"
    (source / "transcript_raw").mkdir(parents=True)
    (source / "transcript_raw" / "lec.txt").write_text(
        "[valid] mu talks about the bill of lading and its three functions.\n\n"
        "[always-500] nu talks about demurrage and detention charges in ports.\n"
    )
    monkeypatch.setenv("OPENAI_API_KEY", "sk-unused")
    out = tmp_path / "out"
    argv = ["--input", str(source), "--output", str(out), "--extract", "--base-url", openai_stub.base_url]
    argv += ["--model", "stub", "--chunk-chars", "80", "--max-attempts", "2", "--retry-backoff", "0"]
    assert prepare.main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["sources"]["transcript"]["pairs_read"] == 2
    assert stats["skipped_by_reason"] == {"extraction_failed": 1}
    assert stats["extraction"][0]["failed"] == 1
    assert (out / "transcript_extraction" / "success" / "lec.jsonl").exists()
    assert (out / "transcript_extraction" / "failed" / "lec.jsonl").exists()


def test_prepare_usage_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    assert prepare.main(["--input", str(missing), "--output", str(tmp_path / "o")]) == 2
    assert f"{missing}: input folder does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert prepare.main(["--input", str(empty), "--output", str(tmp_path / "o")]) == 2
    assert "no Q/A pairs found" in capsys.readouterr().err
    argv = ["--sample", "en", "--output", str(tmp_path / "o")]
    assert prepare.main([*argv, "--prompt-template", "no placeholder"]) == 2
    assert "{question}" in capsys.readouterr().err
    assert prepare.main([*argv, "--sources", "exam,video"]) == 2
    assert "video" in capsys.readouterr().err
    assert prepare.main([*argv, "--extract"]) == 2  # no model configured
    assert "--model" in capsys.readouterr().err


def test_hub_dataset_rows_through_a_local_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The --hub-dataset path (datasets.load_dataset) fed with a local folder, as the hub is unreachable here."""
    folder = tmp_path / "hub"
    folder.mkdir()
    rows = [
        {"question": "What is FOB?", "answer": "Free On Board.", "source": "term"},
        {"question": "What is CIF?", "answer": ["Cost, Insurance and Freight."], "source": "other"},
        {"question": " ", "answer": "x", "source": "exam"},
        {"question": "What is EXW?", "answer": "Ex Works.", "source": "exam"},
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    argv = [
        "--hub-dataset",
        str(folder),
        "--hub-source",
        "transcript",
        "--output",
        str(out),
        "--language",
        "en",
    ]
    assert prepare.main(argv) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert {s: b["rows"] for s, b in stats["sources"].items()} == {"exam": 1, "term": 1, "transcript": 1}
    assert [(s["location"], s["reason"]) for s in stats["skipped"]] == [("train[2]", "missing_field")]
    assert prepare.main(["--hub-dataset", "owner/not-here", "--output", str(out)]) == 2
    assert "cannot load Hugging Face dataset 'owner/not-here'" in capsys.readouterr().err
