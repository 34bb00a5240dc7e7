"""Exact and near duplicate removal, keeping the first occurrence and recording every removal.

Exact: two pairs whose questions are equal after :func:`normalize_key` (NFKC, case-folded, punctuation and
spacing removed). Same answer -> ``exact_duplicate``; a different answer -> ``conflicting_answer`` (one prompt
cannot be taught two answers; the first one read is kept).

Near: cosine similarity of TF-IDF vectors of character 3-5-grams (scikit-learn, ``char_wb``) of the normalised
``question + answer`` text, at or above a threshold (0.95 by default) with a pair kept earlier ->
``near_duplicate``.
"""

from __future__ import annotations

from collections.abc import Sequence

from training.records import QAPair, SkipLog, normalize_key

DEFAULT_NEAR_THRESHOLD = 0.95
_BLOCK_ROWS = 1024


def _where(pair: QAPair) -> tuple[str, str]:
    file, _, location = pair.origin.rpartition(":")
    return (file, location) if file else (pair.origin, "")


def remove_exact_duplicates(pairs: Sequence[QAPair], skips: SkipLog) -> list[QAPair]:
    """Pairs with a question not seen before (normalised)."""
    kept: dict[str, QAPair] = {}
    for pair in pairs:
        key = normalize_key(pair.question)
        first = kept.get(key)
        if first is None:
            kept[key] = pair
            continue
        same_answer = normalize_key(first.answer) == normalize_key(pair.answer)
        reason = "exact_duplicate" if same_answer else "conflicting_answer"
        skips.add(pair.source, *_where(pair), reason, f"same question as {first.origin}")
    return list(kept.values())


def remove_near_duplicates(
    pairs: Sequence[QAPair], skips: SkipLog, threshold: float = DEFAULT_NEAR_THRESHOLD
) -> list[QAPair]:
    """Pairs not near-identical (cosine >= threshold) to an earlier kept pair."""
    if len(pairs) < 2:
        return list(pairs)
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [normalize_key(f"{p.question} {p.answer}") for p in pairs]
    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), dtype=float).fit_transform(texts)
    dropped: set[int] = set()
    for start in range(0, len(pairs), _BLOCK_ROWS):
        block = (matrix[start : start + _BLOCK_ROWS] @ matrix[: start + _BLOCK_ROWS].T).tocsr()
        for offset in range(block.shape[0]):
            index = start + offset
            row = block.getrow(offset)
            earlier = [
                (j, s) for j, s in zip(row.indices, row.data, strict=True) if j < index and j not in dropped
            ]
            best = max(earlier, key=lambda item: item[1], default=None)
            if best is not None and best[1] >= threshold:
                dropped.add(index)
                first = pairs[int(best[0])]
                skips.add(
                    pairs[index].source,
                    *_where(pairs[index]),
                    "near_duplicate",
                    f"cosine {best[1]:.3f} with {first.origin}",
                )
    return [pair for index, pair in enumerate(pairs) if index not in dropped]


def deduplicate(
    pairs: Sequence[QAPair], skips: SkipLog, near_threshold: float | None = DEFAULT_NEAR_THRESHOLD
) -> list[QAPair]:
    """Exact, then (unless ``near_threshold`` is None) near duplicate removal."""
    unique = remove_exact_duplicates(pairs, skips)
    return unique if near_threshold is None else remove_near_duplicates(unique, skips, near_threshold)
