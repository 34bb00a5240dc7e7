"""Exact and near duplicate removal, keeping the first occurrence and recording every removal.

Exact: two pairs whose questions are equal after :func:`normalize_key` (NFKC, case-folded, punctuation and
spacing removed). Same answer -> ``exact_duplicate``; a different answer -> ``conflicting_answer`` (one prompt
cannot be taught two answers; the first one read is kept).

Near: a pair whose question AND answer both reach a cosine similarity at or above a threshold (0.9 by default)
with the question and answer of a pair kept earlier -> ``near_duplicate``. Similarity is the cosine of TF-IDF
vectors of character 3-5-grams (scikit-learn, ``char_wb``) of the normalised texts, questions and answers
vectorised separately. Requiring both keeps apart the two pairs of one glossary term (same words, swapped
roles) and exam questions that share a stem but differ in what they ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from training.records import QAPair, SkipLog, normalize_key

DEFAULT_NEAR_THRESHOLD = 0.9
_BLOCK_ROWS = 256


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


def _vectors(texts: list[str]) -> Any:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), use_idf=False, dtype=np.float64)
    return vectorizer.fit_transform([normalize_key(text) for text in texts]).tocsr()


def remove_near_duplicates(
    pairs: Sequence[QAPair], skips: SkipLog, threshold: float = DEFAULT_NEAR_THRESHOLD
) -> list[QAPair]:
    """Pairs whose question and answer are not both near-identical to those of an earlier kept pair."""
    if len(pairs) < 2:
        return list(pairs)
    questions = _vectors([p.question for p in pairs])
    answers = _vectors([p.answer for p in pairs])
    dropped: set[int] = set()
    for start in range(0, len(pairs), _BLOCK_ROWS):
        block = (questions[start : start + _BLOCK_ROWS] @ questions[: start + _BLOCK_ROWS].T).tocsr()
        block.data[block.data < threshold] = 0.0  # keep only candidate pairs, so rows stay short
        block.eliminate_zeros()
        for offset in range(block.shape[0]):
            index = start + offset
            lo, hi = block.indptr[offset], block.indptr[offset + 1]
            candidates = sorted(
                zip(block.indices[lo:hi], block.data[lo:hi], strict=True), key=lambda c: -c[1]
            )
            for j, q_sim in candidates:
                if j >= index or j in dropped:
                    continue
                a_sim = float(answers.getrow(index).multiply(answers.getrow(j)).sum())
                if a_sim >= threshold:
                    dropped.add(index)
                    skips.add(
                        pairs[index].source,
                        *_where(pairs[index]),
                        "near_duplicate",
                        f"question cosine {q_sim:.3f}, answer cosine {a_sim:.3f} with {pairs[int(j)].origin}",
                    )
                    break
    return [pair for index, pair in enumerate(pairs) if index not in dropped]


def deduplicate(
    pairs: Sequence[QAPair], skips: SkipLog, near_threshold: float | None = DEFAULT_NEAR_THRESHOLD
) -> list[QAPair]:
    """Exact, then (unless ``near_threshold`` is None) near duplicate removal."""
    unique = remove_exact_duplicates(pairs, skips)
    return unique if near_threshold is None else remove_near_duplicates(unique, skips, near_threshold)
