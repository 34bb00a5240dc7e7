"""A small trade/logistics Q/A dataset in the dataset contract's format (train/validation/test)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "trade_qa.json"
PROMPT = "Answer the following question: {question}"
SPLIT_SIZES = {"test": 8, "validation": 4}


def contract_rows(pairs: list[list[str]]) -> list[dict[str, Any]]:
    rows = []
    for question, answer in pairs:
        rows.append(
            {
                "prompt": [{"role": "user", "content": PROMPT.format(question=question)}],
                "completion": [{"role": "assistant", "content": answer}],
                "question": question,
                "answer": answer,
                "source": "term",
                "id": hashlib.sha1(f"term:{question}".encode()).hexdigest(),
            }
        )
    return rows


def write_dataset(folder: Path) -> Path:
    """Write ``dataset/`` (DatasetDict) and the three JSONL files, as ``training prepare`` does."""
    import datasets

    rows = contract_rows(json.loads(DATA.read_text(encoding="utf-8")))
    test = rows[: SPLIT_SIZES["test"]]
    validation = rows[SPLIT_SIZES["test"] : SPLIT_SIZES["test"] + SPLIT_SIZES["validation"]]
    train = rows[SPLIT_SIZES["test"] + SPLIT_SIZES["validation"] :]
    splits = {"train": train, "validation": validation, "test": test}
    folder.mkdir(parents=True, exist_ok=True)
    for name, split_rows in splits.items():
        with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in split_rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()}).save_to_disk(
        str(folder / "dataset")
    )
    return folder
