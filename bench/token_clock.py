"""A trainer callback the SFT benchmarks share: (time, tokens seen) at every logged optimizer step."""

from __future__ import annotations

import time
from typing import Any


def token_clock() -> Any:
    """A ``TrainerCallback`` whose ``marks`` collect ``(perf_counter(), num_tokens)`` at each logged step."""
    from transformers import TrainerCallback

    class TokenClock(TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[tuple[float, float]] = []

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if logs and "num_tokens" in logs and "loss" in logs:
                self.marks.append((time.perf_counter(), float(logs["num_tokens"])))

    return TokenClock()
