"""Near-duplicate removal time at growing dataset sizes, side by side in one run.

Usage: ``PYTHONPATH=$PWD python bench/dedup_scale.py [SIZE ...]`` (default 2000 8000 26000; 26,000 is about
the size of the reference dataset). Synthetic glossary-like pairs with 2% near copies; prints seconds, the
ratio to the smallest size, and how many near copies were found.
"""

from __future__ import annotations

import random
import sys
import time

from training.dedup import remove_near_duplicates
from training.records import QAPair, SkipLog, normalize_key


def synthetic_pairs(size: int, seed: int = 0) -> list[QAPair]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(3000)]
    pairs = []
    for i in range(size):
        question = "What does the trade term " + " ".join(rng.choice(words) for _ in range(6)) + " mean?"
        answer = " ".join(rng.choice(words) for _ in range(15))
        pairs.append(QAPair("term", question, answer, f"synthetic:{i}", normalize_key(question)))
    for i in range(0, size, 50):
        original = pairs[i]
        copy = QAPair(
            "term", original.question + " ", original.answer + ".", f"synthetic:copy{i}", original.group
        )
        pairs.append(copy)
    return pairs


def main(sizes: list[int]) -> None:
    print(f"{'pairs':>8} {'seconds':>8} {'ratio':>6} {'found':>6}")
    first: float | None = None
    for size in sizes:
        pairs = synthetic_pairs(size)
        skips = SkipLog()
        start = time.perf_counter()
        remove_near_duplicates(pairs, skips)
        seconds = time.perf_counter() - start
        first = first or seconds
        print(f"{len(pairs):>8} {seconds:>8.1f} {seconds / first:>6.1f} {skips.count():>6}")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [2000, 8000, 26000])
