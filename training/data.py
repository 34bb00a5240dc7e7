"""Loading the prepared Q/A dataset (see the dataset contract) with clear errors for bad input.

Accepted layouts: a ``datasets`` folder saved with ``save_to_disk``, the folder that contains it as ``dataset/``,
or a folder holding ``train.jsonl``, ``validation.jsonl`` and ``test.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from training.exceptions import DatasetError

SPLITS = ("train", "validation", "test")
REQUIRED_FIELDS = ("prompt", "completion", "question", "answer")


def load_splits(path: str | Path, splits: tuple[str, ...] = SPLITS) -> Any:
    """Return a ``datasets.DatasetDict`` holding the requested splits."""
    import datasets

    root = Path(path)
    if not root.exists():
        raise DatasetError(f"{root}: no such dataset folder")
    for candidate in (root, root / "dataset"):
        if (candidate / "dataset_dict.json").is_file():
            # in memory: a dataset read from disk would get cache files written next to it by every map(), and
            # an upstream task's output is mounted read-only
            loaded = datasets.load_from_disk(str(candidate), keep_in_memory=True)
            missing = [s for s in splits if s not in loaded]
            if missing:
                raise DatasetError(
                    f"{candidate}: split(s) {', '.join(missing)} missing (has {', '.join(loaded)})"
                )
            for split in splits:
                _check_columns(loaded[split].column_names, f"{candidate} (split {split})")
            return datasets.DatasetDict({s: loaded[s] for s in splits})
    if all((root / f"{s}.jsonl").is_file() for s in splits):
        return datasets.DatasetDict(
            {s: datasets.Dataset.from_list(read_jsonl(root / f"{s}.jsonl")) for s in splits}
        )
    raise DatasetError(
        f"{root}: expected a saved DatasetDict, a 'dataset/' folder in it, or {', '.join(s + '.jsonl' for s in splits)}"
    )


def _check_columns(columns: list[str], where: str) -> None:
    missing = [f for f in REQUIRED_FIELDS if f not in columns]
    if missing:
        raise DatasetError(f"{where}: missing field(s) {', '.join(missing)}")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read contract rows from a JSONL file; a bad line raises naming the file, line and field."""
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}, line {number}: not valid JSON ({e.msg})") from e
            except RecursionError:
                raise DatasetError(f"{path}, line {number}: nested too deeply to read") from None
            rows.append(validate_row(row, f"{path}, line {number}"))
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """Check one row's fields: conversational ``prompt``/``completion`` lists and text ``question``/``answer``."""
    if not isinstance(row, dict):
        raise DatasetError(f"{where}: a row must be a JSON object")
    for field in REQUIRED_FIELDS:
        if field not in row:
            raise DatasetError(f"{where}: field '{field}' is missing")
    for field in ("prompt", "completion"):
        messages = row[field]
        if not isinstance(messages, list) or not messages:
            raise DatasetError(f"{where}: field '{field}' must be a non-empty list of messages")
        for message in messages:
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("content"), str)
                or "role" not in message
            ):
                raise DatasetError(
                    f"{where}: field '{field}' holds a message without 'role' and text 'content'"
                )
    for field in ("question", "answer"):
        if not isinstance(row[field], str) or not row[field].strip():
            raise DatasetError(f"{where}: field '{field}' must be non-empty text")
    return row


def read_definitions(path: Path, prompt_template: str) -> list[dict[str, Any]]:
    """A second evaluation set: JSONL of ``{"question", "answer"}`` (plus optional ``id`` and ``term``) turned
    into contract rows whose prompt uses the dataset's ``prompt_template``; a bad line names file, line, field."""
    from training.prompts import fill

    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{where}: not valid JSON ({e.msg})") from e
            if not isinstance(record, dict):
                raise DatasetError(f"{where}: a row must be a JSON object")
            for field in ("question", "answer"):
                if not isinstance(record.get(field), str) or not record[field].strip():
                    raise DatasetError(f"{where}: field '{field}' must be non-empty text")
            question, answer = record["question"].strip(), record["answer"].strip()
            rows.append(
                {
                    "prompt": [{"role": "user", "content": fill(prompt_template, question=question)}],
                    "completion": [{"role": "assistant", "content": answer}],
                    "question": question,
                    "answer": answer,
                    "source": "definitions",
                    "id": str(record.get("id") or f"{path.stem}:{number}"),
                    "term": record.get("term"),
                }
            )
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows
