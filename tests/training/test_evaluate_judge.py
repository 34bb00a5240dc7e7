"""The truthfulness judge: reply parsing, retries and counted failures, over HTTP and as a local model."""

from __future__ import annotations

import pytest

# Fixtures (pytest registers them under their ``name``).
from tests.training.model_fixtures import (
    model_cache_fixture,  # noqa: F401
    smollm2_fixture,  # noqa: F401
)
from tests.training.openai_stub import OpenAIStub, stub_score
from training.judge import JudgeItem, LocalJudge, OpenAIJudge, parse_score
from training.report import truthfulness_summary

ITEMS = [
    JudgeItem("What is a tariff?", "A tax on imported goods.", "A tariff is a tax on imported goods."),
    JudgeItem("What is a TEU?", "A twenty-foot equivalent unit.", "A kind of ship."),
    JudgeItem("What is FCL?", "Full container load.", "Full container load: one shipper uses the container."),
]


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ('{"reasoning": "matches", "score": 5}', 5),
        ('Sure! ```json\n{"reasoning": "close", "score": "4"}\n```', 4),
        ("The answer misses the main point.\nScore: 2", 2),
        ("**Score**: 3 because it is partly right", 3),
        ("first I thought score: 2, but on reflection score: 4", 4),
        ("Rating: 4/5", 4),
        ('{"score": 9}', None),
        ("score: 10", None),
        ("I cannot judge this.", None),
        ("", None),
    ],
)
def test_parse_score(reply: str, score: int | None) -> None:
    assert parse_score(reply) == score


def test_openai_judge_uses_structured_output_and_retries_once() -> None:
    with OpenAIStub() as stub:
        stub.behaviour[ITEMS[1].question] = "garbage-once"
        stub.behaviour[ITEMS[2].question] = "garbage"
        verdicts = OpenAIJudge(stub.base_url, "judge", concurrency=2).judge(ITEMS)
    assert [v.score for v in verdicts] == [
        stub_score(ITEMS[0].answer, ITEMS[0].reference),
        stub_score(ITEMS[1].answer, ITEMS[1].reference),
        None,
    ]
    assert [v.attempts for v in verdicts] == [1, 2, 2]
    assert verdicts[2].error == "no score in reply"
    assert len(stub.requests) == 5  # 1 + 2 + 2
    assert truthfulness_summary(verdicts)["failures"] == 1


def test_openai_judge_falls_back_to_plain_replies_when_json_mode_is_rejected() -> None:
    with OpenAIStub(reject_structured=True) as stub:
        verdicts = OpenAIJudge(stub.base_url, "judge", concurrency=1).judge(ITEMS[:2])
    assert [v.score for v in verdicts] == [stub_score(i.answer, i.reference) for i in ITEMS[:2]]
    plain = [r for r in stub.requests if "response_format" not in r]
    assert len(plain) == 2 and "Score:" in verdicts[0].raw


def test_server_errors_are_counted_not_raised() -> None:
    with OpenAIStub() as stub:
        stub.behaviour[ITEMS[0].question] = "error"
        verdicts = OpenAIJudge(stub.base_url, "judge", concurrency=1, timeout=5).judge(ITEMS[:2])
    assert verdicts[0].score is None and "InternalServerError" in (verdicts[0].error or "")
    assert verdicts[1].score is not None
    assert truthfulness_summary(verdicts)["failures"] == 1


def test_local_transformers_judge_parses_or_counts_failures(smollm2: str) -> None:
    judge = LocalJudge(smollm2, batch_size=3, max_new_tokens=32)
    verdicts = judge.judge(ITEMS)
    assert len(verdicts) == len(ITEMS)
    for verdict in verdicts:
        assert verdict.raw  # the model replied something
        assert verdict.score == parse_score(verdict.raw)
        assert verdict.score is None or 1 <= verdict.score <= 5
        if verdict.score is None:
            assert verdict.attempts == 2  # one retry before counting a failure
        assert (verdict.error is None) == (verdict.score is not None)
    summary = truthfulness_summary(verdicts)
    assert summary["scored"] + summary["failures"] == len(ITEMS)
