"""Split transcripts into chunks for LLM extraction."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DEFAULT_CHUNK_CHARS = 1200
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s+")


@dataclass(frozen=True)
class Chunk:
    """A piece of one transcript; ``chunk_id`` changes when the text or its position changes."""

    chunk_id: str
    source_file: str
    index: int
    text: str


def _words(text: str, max_chars: int) -> list[str]:
    """Runs of whole words of at most ``max_chars`` characters (a longer single word stays whole)."""
    runs: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and len(candidate) > max_chars:
            runs.append(current)
            current = word
        else:
            current = candidate
    return [*runs, current] if current else runs


def split_sentences(text: str) -> list[str]:
    """The sentences of a text: cut after ``.``, ``!``, ``?`` or ``。`` followed by white space."""
    return [sentence for sentence in _SENTENCE_END.split(text.strip()) if sentence]


def _pieces(text: str, max_chars: int) -> list[str]:
    """Paragraphs; a paragraph longer than ``max_chars`` is cut into sentences, a long sentence into words."""
    pieces: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = " ".join(paragraph.split())
        if len(paragraph) <= max_chars:
            pieces.extend([paragraph] if paragraph else [])
            continue
        for sentence in split_sentences(paragraph):
            pieces.extend(_words(sentence, max_chars))
    return pieces


def chunk_text(text: str, max_chars: int = DEFAULT_CHUNK_CHARS) -> list[str]:
    """Greedy packing of paragraphs (or sentences, or words) into chunks of at most ``max_chars`` characters (a longer word stays whole)."""
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
