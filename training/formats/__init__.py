"""Formatters that turn the three raw source kinds into Q/A pairs."""

from __future__ import annotations

from pathlib import Path

from training.records import SkipLog


def list_files(folder: Path, suffixes: tuple[str, ...], source: str, skips: SkipLog) -> list[Path]:
    """Files of a folder in name order; files of other kinds are recorded as skipped, not ignored."""
    found: list[Path] = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.name.startswith("."):
            continue
        if path.suffix.lower() in suffixes:
            found.append(path)
        else:
            skips.add(source, str(path), "file", "unsupported_file", f"expected one of {', '.join(suffixes)}")
    return found


def read_text(path: Path, source: str, skips: SkipLog) -> str | None:
    """The file's UTF-8 text, or None (recorded) when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        skips.add(source, str(path), "file", "unreadable_file", str(exc))
        return None
