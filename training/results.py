"""The keys of each step's ``result.json`` (a pipeline task's result, its XCom), in one place.

A step writes a subset where some of its parts are optional: ``evaluate`` writes the ``truthfulness_*`` keys only
with a judge and the ``definitions_*`` keys only with ``--definitions``. Pipeline validation checks a quality
gate's ``key`` against these; the steps' tests check the files they write against them.
"""

from __future__ import annotations

import re

__all__ = ["RESULT_KEYS", "step_of_command"]

_TRAINING = (
    "global_step",
    "train_loss",
    "eval_loss",
    "num_tokens",
    "train_seconds",
    "train_tokens_per_second",
)
_EVALUATION_SET = (
    "n",
    "semscore_base",
    "semscore_finetuned",
    "semscore_difference",
    "semscore_difference_ci95_low",
    "semscore_difference_ci95_high",
    "novel_f1_n",
    "novel_f1_base",
    "novel_f1_finetuned",
    "novel_f1_difference",
    "novel_f1_difference_ci95_low",
    "novel_f1_difference_ci95_high",
    "words_base",
    "words_finetuned",
    "words_reference",
    *(
        f"truthfulness_{model}_{count}"
        for model in ("base", "finetuned")
        for count in ("low", "high", "failures")
    ),
)

#: step (``python -m training <step>``) -> every key its ``result.json`` may hold
RESULT_KEYS: dict[str, frozenset[str]] = {
    "prepare": frozenset({"rows", "train", "validation", "test", "skipped"}),
    "pretrain": frozenset(
        {
            *_TRAINING,
            "before_loss",
            "documents_read",
            "documents_excluded",
            "documents_train",
            "documents_validation",
            "perplexity_before",
            "perplexity_after",
        }
    ),
    "finetune": frozenset(_TRAINING),
    "evaluate": frozenset(
        {"embedding_model", *_EVALUATION_SET, *(f"definitions_{key}" for key in _EVALUATION_SET)}
    ),
    "merge": frozenset({"base_model", "adapter", "dtype", "parameters", "server", "model_dir"}),
    "ask": frozenset({"question", "reference", "answer", "model", "seconds"}),
}

_STEP = re.compile(r"python3?\s+-m\s+training\s+(?:launch\s+)?([a-z]+)\b")


def step_of_command(command: str) -> str | None:
    """The one step of ``RESULT_KEYS`` that a task's command runs, or ``None`` (none, another, or several)."""
    steps = set(_STEP.findall(command))
    if len(steps) != 1:
        return None
    (step,) = steps
    return step if step in RESULT_KEYS else None
