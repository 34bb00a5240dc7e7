"""Truthfulness 1-5 by an LLM judge, guided by the reference answer.

Two back-ends: any OpenAI-compatible chat endpoint (vLLM, Ollama, a Backend.AI model service, OpenAI) and a local
transformers model. The judge reasons first and ends with a score; structured JSON output is requested where the
server supports it, a regular expression takes the last score otherwise, each item gets one retry, and items that
still yield no score are counted as failures (never guessed).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You grade answers for truthfulness against a reference answer written by a domain expert. "
    "Scale: 1 = contradicts the reference or is false; 2 = mostly wrong, with a small correct part; "
    "3 = partly correct but missing or distorting important facts; 4 = correct with minor omissions or imprecision; "
    "5 = fully consistent with the reference. Judge facts, not wording or style. "
    'Think step by step, then reply with a JSON object: {"reasoning": "<one or two sentences>", "score": <1-5>}.'
)
RETRY_REMINDER = 'Reply with only the JSON object {"reasoning": "...", "score": <integer 1 to 5>}.'
SCORE_SCHEMA: dict[str, Any] = {
    "name": "truthfulness",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        },
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    },
}
_JSON_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_LABELLED_SCORE = re.compile(r"score\W{0,4}([1-5])(?![0-9.])", re.IGNORECASE)
_TRAILING_SCORE = re.compile(r"(?<![0-9.])([1-5])\s*(?:/\s*5|out of 5)?\W*$")


@dataclass(frozen=True)
class JudgeItem:
    question: str
    reference: str
    answer: str


@dataclass(frozen=True)
class Verdict:
    """A score (``None`` when the judge gave none), the judge's last raw reply and the error, if any."""

    score: int | None
    raw: str
    attempts: int
    error: str | None = None


def user_message(item: JudgeItem) -> str:
    return f"Question:\n{item.question}\n\nReference answer:\n{item.reference}\n\nAnswer to grade:\n{item.answer}"


def conversation(item: JudgeItem, retry: bool = False) -> list[dict[str, str]]:
    content = user_message(item) + ("\n\n" + RETRY_REMINDER if retry else "")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def parse_score(text: str) -> int | None:
    """The score in a judge reply: a JSON ``score`` field, else the last ``score: N``, else a trailing ``N``/``N/5``."""
    for candidate in reversed(_JSON_OBJECT.findall(text)):
        try:
            value = json.loads(candidate).get("score")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, int | str) and str(value).strip() in {"1", "2", "3", "4", "5"}:
            return int(value)
    labelled = _LABELLED_SCORE.findall(text)
    if labelled:
        return int(labelled[-1])
    trailing = _TRAILING_SCORE.search(text.strip())
    return int(trailing.group(1)) if trailing else None


class Judge(Protocol):
    name: str

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]: ...


class OpenAIJudge:
    """A judge behind an OpenAI-compatible ``/v1/chat/completions`` endpoint, temperature 0."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        concurrency: int = 4,
        timeout: float = 120.0,
        max_tokens: int = 256,
        structured: bool = True,
    ) -> None:
        from openai import OpenAI

        self.name = f"{model} @ {base_url}"
        self.model = model
        self.max_tokens = max_tokens
        self.concurrency = concurrency
        self.structured = structured
        self.client: Any = OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=2
        )

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(self._judge_one, items))

    def _judge_one(self, item: JudgeItem) -> Verdict:
        raw, error = "", None
        for attempt in (1, 2):
            try:
                raw = self._complete(conversation(item, retry=attempt > 1))
            except Exception as e:  # network and server errors are counted, never fatal
                error = f"{type(e).__name__}: {e}"
                log.warning("judge request failed (attempt %d): %s", attempt, error)
                continue
            score = parse_score(raw)
            if score is not None:
                return Verdict(score, raw, attempt)
            error = "no score in reply"
        return Verdict(None, raw, 2, error)

    def _complete(self, messages: list[dict[str, str]]) -> str:
        from openai import BadRequestError

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        if self.structured:
            try:
                response = self.client.chat.completions.create(
                    **kwargs, response_format={"type": "json_schema", "json_schema": SCORE_SCHEMA}
                )
                return response.choices[0].message.content or ""
            except BadRequestError as e:
                log.info("judge server rejected structured output (%s); using plain replies", e.status_code)
                self.structured = False
        response = self.client.chat.completions.create(**kwargs)
        return response.choices[0].message.content or ""


class LocalJudge:
    """A judge run locally with transformers (greedy decoding, batched)."""

    def __init__(self, model_path: str, *, batch_size: int = 8, max_new_tokens: int = 128) -> None:
        from transformers import AutoModelForCausalLM

        from training.models import load_tokenizer

        self.name = model_path
        self.tokenizer = load_tokenizer(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens

    def judge(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        first = self._replies(items, retry=False)
        verdicts = [Verdict(parse_score(raw), raw, 1) for raw in first]
        failed = [i for i, v in enumerate(verdicts) if v.score is None]
        if failed:
            second = self._replies([items[i] for i in failed], retry=True)
            for i, raw in zip(failed, second, strict=True):
                score = parse_score(raw)
                verdicts[i] = Verdict(score, raw, 2, None if score is not None else "no score in reply")
        return verdicts

    def _replies(self, items: Sequence[JudgeItem], retry: bool) -> list[str]:
        from training.generate import generate

        # Some chat templates (Gemma) reject a system turn: the rubric goes into the user's turn instead.
        conversations = [
            [{"role": "user", "content": "\n\n".join(m["content"] for m in conversation(item, retry))}]
            for item in items
        ]
        return generate(
            self.model,
            self.tokenizer,
            conversations,
            batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens,
        )
