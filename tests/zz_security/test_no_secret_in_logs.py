"""Runs last: nothing the suite logged (test output, server logs, Airflow task logs) holds a secret key."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import LOG_FILES, LOGGED, SECRETS


def test_no_secret_key_in_anything_logged(lite) -> None:  # type: ignore[no-untyped-def]
    assert lite.secret_key in SECRETS
    texts = list(LOGGED)
    files = []
    for entry in map(Path, LOG_FILES):
        files += [p for p in entry.rglob("*") if p.is_file()] if entry.is_dir() else [entry]
    files += [p for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*") if p.is_file()]
    texts += [path.read_text(errors="replace") for path in files if path.exists()]
    assert sum(map(len, texts)) > 0
    for secret in SECRETS:
        leaks = [
            text[max(0, text.find(secret) - 200) : text.find(secret) + 50] for text in texts if secret in text
        ]
        assert not leaks, f"secret key found in logs: {leaks[:3]}"
