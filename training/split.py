"""Deterministic, seeded train/validation/test split by group, with related facts kept on one side.

Pairs sharing a group (both pairs of one glossary term) always land in the same split, so that no test
question has its answer in a training prompt (the description->term pair of a term would otherwise teach the
answer of its term->description pair).

Across groups and sources, :func:`related_components` joins groups whose pairs state the same fact in other
words (an exam question, a glossary entry and a lecture Q/A about duty drawback): they share a component, and a
component is split as one unit, so a fact never appears both in training and in the test split.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from training.records import QAPair, normalize_key

SPLITS = ("train", "validation", "test")
DEFAULT_RELATED_THRESHOLD = 0.5
_BLOCK_ROWS = 256


def split_counts(groups: int, validation: float, test: float) -> tuple[int, int, int]:
    """(train, validation, test) numbers of groups; a non-zero fraction gets at least one group when possible."""
    n_test = round(groups * test)
    n_val = round(groups * validation)
    if test > 0 and n_test == 0 and groups >= 3:
        n_test = 1
    if validation > 0 and n_val == 0 and groups >= 3:
        n_val = 1
    n_train = groups - n_test - n_val
    if n_train < 0:
        raise ValueError(f"fractions validation={validation}, test={test} leave no training data")
    return n_train, n_val, n_test


def fact_vectors(texts: Sequence[str]) -> Any:
    """L2-normalised TF-IDF vectors of character 3-5-grams (sublinear term frequency) of normalised texts.

    IDF makes words that every pair shares (question templates, "the goods") count little, so the cosine of two
    pairs measures the specific words they share. Character n-grams work for Korean as for English.
    """
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float64)
    return vectorizer.fit_transform([normalize_key(text) for text in texts]).tocsr()


def fact_text(pair: QAPair) -> str:
    return f"{pair.question} {pair.answer}"


def similar_pairs(left: Any, right: Any, threshold: float) -> list[tuple[int, int, float]]:
    """(row of ``left``, row of ``right``, cosine) for every cosine at or above ``threshold`` (blocked)."""
    found: list[tuple[int, int, float]] = []
    for start in range(0, left.shape[0], _BLOCK_ROWS):
        block = (left[start : start + _BLOCK_ROWS] @ right.T).tocoo()
        for i, j, value in zip(block.row, block.col, block.data, strict=True):
            if value >= threshold:
                found.append((start + int(i), int(j), float(value)))
    return found


def related_components(pairs: Sequence[QAPair], threshold: float) -> list[int]:
    """A component number per pair: groups joined when a pair of one has a fact cosine >= ``threshold`` with a
    pair of the other (question and answer together, :func:`fact_vectors`), transitively, across sources."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not pairs:
        return []
    keys = sorted({(p.source, p.group) for p in pairs})
    index = {key: i for i, key in enumerate(keys)}
    node = [index[(p.source, p.group)] for p in pairs]
    vectors = fact_vectors([fact_text(p) for p in pairs])
    edges = [
        (node[i], node[j]) for i, j, _ in similar_pairs(vectors, vectors, threshold) if node[i] != node[j]
    ]
    rows = [a for a, _ in edges]
    cols = [b for _, b in edges]
    graph = coo_matrix(([1] * len(edges), (rows, cols)), shape=(len(keys), len(keys)))
    _, labels = connected_components(graph, directed=False)
    return [int(labels[n]) for n in node]


def split_pairs(
    pairs: Sequence[QAPair],
    seed: int,
    validation: float,
    test: float,
    related_threshold: float | None = None,
) -> dict[str, list[QAPair]]:
    """Split by unit, per source; pairs keep their order.

    A unit is a group, or with ``related_threshold`` a component of related groups (:func:`related_components`).
    Each unit belongs to the source of its first pair; a source's units are sorted by their smallest group key,
    shuffled with a per-source seed and cut by the fractions.
    """
    if validation < 0 or test < 0 or validation + test >= 1:
        raise ValueError("validation and test fractions must be >= 0 and sum to less than 1")
    if related_threshold is None:
        units: list[Any] = [(p.source, p.group) for p in pairs]
    else:
        units = list(related_components(pairs, related_threshold))
    home: dict[Any, str] = {}
    label: dict[Any, str] = {}
    for pair, unit in zip(pairs, units, strict=True):
        home.setdefault(unit, pair.source)
        if pair.source == home[unit]:
            label[unit] = min(label.get(unit, pair.group), pair.group)
    assignment: dict[Any, str] = {}
    for source in sorted(set(home.values())):
        own = sorted((u for u in home if home[u] == source), key=lambda u: label[u])
        random.Random(f"{seed}:{source}").shuffle(own)
        n_train, n_val, n_test = split_counts(len(own), validation, test)
        for position, unit in enumerate(own):
            name = "test" if position < n_test else "validation" if position < n_test + n_val else "train"
            assignment[unit] = name
    result: dict[str, list[QAPair]] = {name: [] for name in SPLITS}
    for pair, unit in zip(pairs, units, strict=True):
        result[assignment[unit]].append(pair)
    return result
