"""What the report shows beyond SemScore: answer lengths, the novel-token F1 and examples sorted by the paired
difference, on small real inputs (SemScore from the packaged all-MiniLM-L6-v2); and the shipped definitional set."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

# Fixtures (pytest registers them under their ``name``).
from tests.training.model_fixtures import qa_dataset_fixture  # noqa: F401
from training.data import DatasetError, read_definitions
from training.evaluate import definitions_path
from training.overlap import content_tokens, novel_f1
from training.report import ModelResult, build_report, headline, markdown
from training.semscore import load_embedder, semscores
from training.split import DEFAULT_RELATED_THRESHOLD, fact_vectors, similar_pairs

QUESTION = "What is demurrage in container shipping?"
REFERENCE = "Demurrage is a charge the carrier makes when a full container stays in the terminal beyond the free time."
RESTATING = (
    "Demurrage in container shipping is an important concept in container shipping, and demurrage matters a lot "
    "for everyone in shipping."
)
TERSE = "A charge for keeping a full container in the terminal past the free time."


def test_novel_f1_gives_no_credit_for_restating_the_question() -> None:
    assert novel_f1(RESTATING, REFERENCE, QUESTION) == 0.0
    terse = novel_f1(TERSE, REFERENCE, QUESTION)
    assert terse is not None and 0.5 < terse <= 1.0
    assert novel_f1(REFERENCE, REFERENCE, QUESTION) == 1.0
    # a multiple-choice answer that repeats a listed option has nothing beyond the question: unscored
    assert novel_f1("DDP", "DDP", "Which rule makes the seller pay import duty? 1. FCA 2. DDP") is None
    assert "the" not in content_tokens("The carrier") and "carrier" in content_tokens("The carrier")


@pytest.fixture(scope="module", name="two_sets")
def two_sets_fixture() -> dict[str, object]:
    rows = [
        {"id": "1", "source": "term", "question": QUESTION, "answer": REFERENCE},
        {
            "id": "2",
            "source": "transcript",
            "question": "Who issues a house bill of lading?",
            "answer": "A freight forwarder or NVOCC issues it to the shipper.",
        },
        {"id": "3", "source": "exam", "question": "Which rule? 1. FCA 2. DDP", "answer": "DDP"},
    ]
    answers = {
        "base": [RESTATING, "A house bill of lading is a bill of lading for a house.", "The answer is FCA."],
        "finetuned": [TERSE, "The carrier.", "DDP"],
    }
    embedder = load_embedder("all-MiniLM-L6-v2")
    references = [row["answer"] for row in rows]
    results = {name: ModelResult(a, semscores(embedder, a, references)) for name, a in answers.items()}
    settings = {
        "split": "test",
        "base_model": "b",
        "finetuned_model": "f",
        "embedding_model": "all-MiniLM-L6-v2",
        "judge": None,
        "definitions": "d.jsonl",
    }
    report = build_report(rows, results, settings=settings, definitions=(rows[:2], results_of(results, 2)))
    return {"rows": rows, "answers": answers, "results": results, "report": report}


def results_of(results: dict[str, ModelResult], n: int) -> dict[str, ModelResult]:
    return {name: ModelResult(r.answers[:n], r.semscores[:n]) for name, r in results.items()}


def test_report_has_lengths_second_measure_and_sorted_examples(two_sets: dict[str, object]) -> None:
    report, rows, answers, results = (two_sets[k] for k in ("report", "rows", "answers", "results"))
    assert isinstance(report, dict) and isinstance(rows, list) and isinstance(answers, dict)
    assert isinstance(results, dict)
    for name in ("base", "finetuned"):
        words = [len(a.split()) for a in answers[name]]
        assert report["summary"][name]["answer_words"] == {
            "mean": statistics.mean(words),
            "median": statistics.median(words),
        }
        expected_f1 = [
            novel_f1(a, r["answer"], r["question"]) for a, r in zip(answers[name], rows, strict=True)
        ]
        scored = [v for v in expected_f1 if v is not None]
        assert report["summary"][name]["novel_f1"]["mean"] == pytest.approx(statistics.mean(scored))
        assert report["summary"][name]["novel_f1"]["n"] == len(scored) == 2
    assert report["reference_words"]["mean"] == statistics.mean(len(r["answer"].split()) for r in rows)
    differences = [
        f - b for b, f in zip(results["base"].semscores, results["finetuned"].semscores, strict=True)
    ]
    assert [i["semscore_difference"] for i in report["items"]] == pytest.approx(differences)
    assert set(report["by_source"]) == {"exam", "term", "transcript"}

    result = headline(report)
    assert result["semscore_base"] == round(statistics.mean(results["base"].semscores), 4)
    assert result["semscore_difference"] == round(statistics.mean(differences), 4)
    assert result["semscore_difference_ci95_low"] <= result["semscore_difference"]
    assert result["words_reference"] == round(report["reference_words"]["mean"], 4)
    assert result["novel_f1_finetuned"] == round(report["summary"]["finetuned"]["novel_f1"]["mean"], 4)
    assert result["definitions_n"] == 2
    assert result["definitions_semscore_finetuned"] == round(
        statistics.mean(results["finetuned"].semscores[:2]), 4
    )

    text = markdown(report)
    assert (
        "Novel-token F1" in text and "Answer length (words)" in text and "## Definitional questions" in text
    )
    held_out = text.split("## Definitional questions")[0]
    order = sorted(range(3), key=lambda i: differences[i])
    positions = [held_out.index(f"**Q:** {rows[i]['question']}") for i in order]
    assert positions == sorted(positions)  # examples from the largest loss to the largest gain


def test_shipped_definitional_set_loads_with_the_dataset_prompt() -> None:
    path = definitions_path("en")
    rows = read_definitions(path, "Answer the following question: {question}")
    assert len(rows) >= 40 and len({row["id"] for row in rows}) == len(rows)
    for row in rows:
        assert row["prompt"] == [
            {"role": "user", "content": f"Answer the following question: {row['question']}"}
        ]
        assert len(row["answer"].split()) >= 8  # full-sentence references
        assert not row["question"].startswith(("What does the trade term", "Which trade term is described"))


def test_definitional_set_states_no_fact_of_the_training_split(qa_dataset: Path) -> None:
    train = [json.loads(line) for line in (qa_dataset / "train.jsonl").read_text().splitlines()]
    definitions = read_definitions(definitions_path("en"), "{question}")
    texts = [f"{r['question']} {r['answer']}" for r in train + definitions]
    vectors = fact_vectors(texts)
    n = len(train)
    assert similar_pairs(vectors[n:], vectors[:n], DEFAULT_RELATED_THRESHOLD) == []
    terms = {r["term"].casefold() for r in definitions}
    assert not any(f"'{t}" in r["question"].casefold() for r in train for t in terms)


def test_bad_definitions_line_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "defs.jsonl"
    path.write_text('{"question": "What is a pallet?", "answer": "A platform."}\n{"question": "Q?"}\n')
    with pytest.raises(DatasetError, match=r"defs.jsonl, line 2: field 'answer'"):
        read_definitions(path, "{question}")
    with pytest.raises(DatasetError, match="no such file"):
        definitions_path(str(tmp_path / "missing.jsonl"))
