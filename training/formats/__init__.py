"""Formatters that turn the three raw source kinds into Q/A pairs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from training.records import SkipLog

#: Skip reason of JSON nested deeper than Python's JSON reader can follow (it recurses once per level).
TOO_DEEP = "too_deeply_nested"


class JSONProblem(ValueError):
    """Why a text is not usable JSON: a skip ``reason``, its ``detail`` and the 1-based ``line`` when known."""

    def __init__(self, reason: str, detail: str, line: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.line = line

    @property
    def location(self) -> str:
        """Where in the file: ``line N``, or ``file`` when no line is known."""
        return f"line {self.line}" if self.line else "file"


def load_json(text: str, broken: str = "broken_json") -> Any:
    """``json.loads``; invalid JSON (reason ``broken``) and too deep nesting raise :class:`JSONProblem`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONProblem(broken, exc.msg, exc.lineno) from None
    except RecursionError:
        raise JSONProblem(TOO_DEEP, "nested too deeply to read") from None


def flatten_lists(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every non-list item of arbitrarily nested lists, in order, with its index path such as ``[2][0]``."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, list):
            stack.extend((f"{where}[{index}]", inner) for index, inner in reversed(list(enumerate(item))))
        else:
            yield where, item


def list_files(folder: Path, suffixes: tuple[str, ...], source: str, skips: SkipLog) -> list[Path]:
    """Files of a folder in name order; files of other kinds are recorded as skipped, not ignored."""
    found: list[Path] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.suffix.lower() in suffixes:
            if path.is_file():
                found.append(path)
            else:
                kind = "a directory" if path.is_dir() else "not a regular file"
                skips.add(source, str(path), "file", "not_a_file", kind)
        elif path.is_dir():
            continue
        else:
            skips.add(source, str(path), "file", "unsupported_file", f"expected one of {', '.join(suffixes)}")
    return found


def read_text(path: Path, source: str, skips: SkipLog) -> str | None:
    """The file's UTF-8 text, or None (recorded) when it cannot be read or holds only whitespace."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        skips.add(source, str(path), "file", "unreadable_file", str(exc))
        return None
    if not text.strip():
        skips.add(source, str(path), "file", "empty_file", "the file is empty")
        return None
    return text
