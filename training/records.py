"""Q/A records and the log of skipped input records (nothing is dropped without a reason)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field

SOURCES = ("exam", "term", "transcript")


@dataclass(frozen=True)
class QAPair:
    """One question/answer pair read from a source file."""

    source: str
    question: str
    answer: str
    origin: str
    group: str


@dataclass(frozen=True)
class Skip:
    """An input record that did not become a row, with where it came from and why."""

    source: str
    file: str
    location: str
    reason: str
    detail: str = ""


@dataclass
class SkipLog:
    """Collects every skipped record; written into ``stats.json``."""

    items: list[Skip] = field(default_factory=list)

    def add(self, source: str, file: str, location: str, reason: str, detail: str = "") -> None:
        self.items.append(Skip(source, file, location, reason, detail))

    def count(self, source: str | None = None) -> int:
        return sum(1 for item in self.items if source is None or item.source == source)

    def by_reason(self, source: str | None = None) -> dict[str, int]:
        counter = Counter(item.reason for item in self.items if source is None or item.source == source)
        return dict(sorted(counter.items()))

    def as_dicts(self) -> list[dict[str, str]]:
        return [asdict(item) for item in self.items]


_PUNCT_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)


def normalize_key(text: str) -> str:
    """Key for exact-duplicate detection: NFKC, case-folded, punctuation and spacing removed."""
    return _PUNCT_OR_SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def collapse_spaces(text: str) -> str:
    """Join all runs of whitespace (newlines included) into single spaces."""
    return " ".join(text.split())
