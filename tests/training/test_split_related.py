"""Related facts stay on one side of the split, across groups and source files (the shipped English sample)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training import prepare
from training.dedup import deduplicate
from training.prompts import TERM_TEMPLATES
from training.records import SOURCES, QAPair, SkipLog
from training.split import (
    DEFAULT_RELATED_THRESHOLD,
    fact_text,
    fact_vectors,
    related_components,
    similar_pairs,
    split_pairs,
)

SAMPLE = Path(prepare.__file__).resolve().parent / "samples" / "en"


@pytest.fixture(scope="module", name="sample_pairs")
def sample_pairs_fixture() -> list[QAPair]:
    skips = SkipLog()
    return deduplicate(prepare.read_local(SAMPLE, SOURCES, TERM_TEMPLATES["en"], skips), skips)


def _split_of(splits: dict[str, list[QAPair]], pair: QAPair) -> str:
    return next(name for name, rows in splits.items() if pair in rows)


def test_a_fact_in_two_source_files_lands_in_one_split(sample_pairs: list[QAPair]) -> None:
    # the exam file and a lecture transcript both ask which organization maintains the Harmonized System
    same_fact = [
        p for p in sample_pairs if "organization maintains the harmonized system" in p.question.lower()
    ]
    assert {p.source for p in same_fact} == {"exam", "transcript"}
    assert len({p.origin.split(":")[0] for p in same_fact}) == 2
    straddled_without_grouping = False
    for seed in range(12):
        grouped = split_pairs(sample_pairs, seed, 0.05, 0.2, DEFAULT_RELATED_THRESHOLD)
        assert len({_split_of(grouped, p) for p in same_fact}) == 1
        plain = split_pairs(sample_pairs, seed, 0.05, 0.2)
        straddled_without_grouping |= len({_split_of(plain, p) for p in same_fact}) > 1
    assert straddled_without_grouping  # groups alone (per source) do not keep them together


@pytest.mark.parametrize("seed", [3, 42])
def test_no_test_pair_is_related_to_a_training_pair(sample_pairs: list[QAPair], seed: int) -> None:
    splits = split_pairs(sample_pairs, seed, 0.05, 0.2, DEFAULT_RELATED_THRESHOLD)
    assert sum(len(rows) for rows in splits.values()) == len(sample_pairs)
    position = {pair: i for i, pair in enumerate(sample_pairs)}
    vectors = fact_vectors([fact_text(p) for p in sample_pairs])  # the vectors the split used
    test = vectors[[position[p] for p in splits["test"]]]
    train = vectors[[position[p] for p in splits["train"]]]
    assert similar_pairs(test, train, DEFAULT_RELATED_THRESHOLD) == []
    # a lower bar finds links, so the check above does look at real neighbours
    assert similar_pairs(test, train, DEFAULT_RELATED_THRESHOLD - 0.2)


def test_related_components_join_groups_across_sources() -> None:
    pairs = [
        QAPair(
            "term",
            "What does the trade term 'Duty drawback' mean?",
            "A refund of duties paid on imported materials that are exported again.",
            "t.json:item [0]",
            "duty drawback",
        ),
        QAPair(
            "exam",
            "What is duty drawback? 1. A penalty 2. A refund of duties on imported materials that are "
            "exported again",
            "A refund of duties on imported materials that are exported again",
            "e.txt:line 1",
            "q1",
        ),
        QAPair(
            "transcript",
            "Which ship carries containers between a hub and small ports?",
            "A feeder vessel.",
            "l.jsonl:line 1",
            "q2",
        ),
    ]
    labels = related_components(pairs, DEFAULT_RELATED_THRESHOLD)
    assert labels[0] == labels[1] != labels[2]
    assert related_components(pairs, 1.0)[0] != related_components(pairs, 1.0)[1]
