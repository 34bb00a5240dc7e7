"""Deterministic, seeded train/validation/test split per source, by group.

Pairs sharing a group (both pairs of one glossary term) always land in the same split, so that no test
question has its answer in a training prompt (the description->term pair of a term would otherwise teach the
answer of its term->description pair).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from training.records import QAPair

SPLITS = ("train", "validation", "test")


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


def split_pairs(
    pairs: Sequence[QAPair], seed: int, validation: float, test: float
) -> dict[str, list[QAPair]]:
    """Split each source's groups (sorted, then shuffled with a per-source seed); pairs keep their order."""
    if validation < 0 or test < 0 or validation + test >= 1:
        raise ValueError("validation and test fractions must be >= 0 and sum to less than 1")
    assignment: dict[tuple[str, str], str] = {}
    for source in sorted({p.source for p in pairs}):
        groups = sorted({p.group for p in pairs if p.source == source})
        random.Random(f"{seed}:{source}").shuffle(groups)
        n_train, n_val, n_test = split_counts(len(groups), validation, test)
        for index, group in enumerate(groups):
            name = "test" if index < n_test else "validation" if index < n_test + n_val else "train"
            assignment[(source, group)] = name
    result: dict[str, list[QAPair]] = {name: [] for name in SPLITS}
    for pair in pairs:
        result[assignment[(pair.source, pair.group)]].append(pair)
    return result
