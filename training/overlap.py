"""Novel-token F1: a token overlap with the reference that gives no credit for repeating the question.

SQuAD's token F1 (Rajpurkar et al., 2016: lower case, punctuation and articles removed, bag-of-tokens
precision and recall) computed on content words only (scikit-learn's English stop-word list removed) and after
removing, from both the answer and the reference, every token that occurs in the question. An answer that
restates the question scores 0 unless it adds words of the reference; a short answer that names the reference's
key words scores high. An item whose reference has no token outside the question (a multiple-choice answer that
repeats one of the listed options) gets no score (``None``) and is left out of the mean.

Hugging Face ``evaluate``'s ``squad`` metric computes the plain token F1, but it loads its script from the hub
(unavailable offline) and has no notion of the question; this is the same arithmetic on filtered tokens.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import cache

_TOKEN = re.compile(r"\w+", re.UNICODE)


@cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def content_tokens(text: str) -> list[str]:
    """Lower-cased word tokens (NFKC) without stop words and articles."""
    stop = _stop_words()
    return [t for t in _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()) if t not in stop]


def word_count(text: str) -> int:
    """Answer length in words (whitespace-separated)."""
    return len(text.split())


def novel_f1(answer: str, reference: str, question: str) -> float | None:
    """Token F1 of answer and reference on content words not in the question; None when the reference has none."""
    asked = set(content_tokens(question))
    expected = [t for t in content_tokens(reference) if t not in asked]
    if not expected:
        return None
    given = [t for t in content_tokens(answer) if t not in asked]
    same = sum((Counter(given) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(given), same / len(expected)
    return 2 * precision * recall / (precision + recall)
