"""Split transcripts into chunks for LLM extraction."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DEFAULT_CHUNK_CHARS = 1500
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+|\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    """A piece of one transcript; ``chunk_id`` changes when the text or its position changes."""

    chunk_id: str
    source_file: str
    index: int
    text: str


def _pieces(text: str, max_chars: int) -> list[str]:
    """Sentences (or, for a sentence longer than ``max_chars``, runs of words) of the text."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        current: list[str] = []
        for word in words:
            if current and len(" ".join([*current, word])) > max_chars:
                pieces.append(" ".join(current))
                current = []
            current.append(word)
        if current:
            pieces.append(" ".join(current))
    return pieces


def chunk_text(text: str, max_chars: int = DEFAULT_CHUNK_CHARS) -> list[str]:
    """Greedy packing of sentences into chunks of at most ``max_chars`` characters (a longer word stays whole)."""
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, max_chars):
        candidate = f"{current} {piece}" if current else piece
        if current and len(candidate) > max_chars:
            chunks.append(current)
            current = piece
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def chunk_transcript(name: str, text: str, max_chars: int = DEFAULT_CHUNK_CHARS) -> list[Chunk]:
    """Chunks of one transcript named ``name`` (usually the file stem)."""
    return [
        Chunk(f"{name}#{index:04d}-{hashlib.sha1(piece.encode()).hexdigest()[:10]}", name, index, piece)
        for index, piece in enumerate(chunk_text(text, max_chars))
    ]
