"""Evaluation end to end: both models answer the test split, SemScore, a judge behind a local OpenAI-compatible
server, the report, the plots and result.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Fixtures (pytest registers them under their ``name``).
from tests.training.model_fixtures import (
    model_cache_fixture,  # noqa: F401
    qa_dataset_fixture,  # noqa: F401
    smollm2_fixture,  # noqa: F401
    tiny_finetune_fixture,  # noqa: F401
)
from tests.training.openai_stub import OpenAIStub
from training.evaluate import main
from training.results import RESULT_KEYS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _argv(dataset: Path, finetuned: Path, output: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "--dataset",
        str(dataset),
        "--finetuned",
        str(finetuned),
        "--output",
        str(output),
        "--model-cache",
        str(cache),
        "--limit",
        "4",
        "--max-new-tokens",
        "24",
        "--batch-size",
        "4",
        *extra,
    ]


def test_evaluation_with_openai_compatible_judge_writes_report_plots_and_result(
    qa_dataset: Path,
    tiny_finetune: Path,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [json.loads(line) for line in (qa_dataset / "test.jsonl").read_text().splitlines()][:4]
    monkeypatch.setenv("JUDGE_KEY", "sk-test-secret-123")
    output = tmp_path / "outputs"
    with OpenAIStub() as stub:
        stub.behaviour[rows[0]["question"]] = "garbage"  # never scores: counted as a failure
        stub.behaviour[rows[1]["question"]] = "garbage-once"  # scores on the retry
        code = main(
            _argv(
                qa_dataset,
                tiny_finetune,
                output,
                model_cache,
                "--judge",
                "openai",
                "--judge-url",
                stub.base_url,
                "--judge-model",
                "stub-judge",
                "--judge-api-key-env",
                "JUDGE_KEY",
            )
        )
    assert code == 0
    assert {h.get("authorization") for h in stub.headers} == {"Bearer sk-test-secret-123"}
    assert "sk-test-secret-123" not in caplog.text
    assert all(r["temperature"] == 0 and r["response_format"]["type"] == "json_schema" for r in stub.requests)

    report = json.loads((output / "report.json").read_text())
    assert (
        report["n"] == 4 and report["settings"]["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    )
    for name in ("base", "finetuned"):
        truth = report["summary"][name]["truthfulness"]
        assert truth["failures"] == 1
        assert sum(truth["histogram"].values()) == truth["scored"] == 3
        assert truth["low"] == truth["histogram"]["1"] + truth["histogram"]["2"]
        for item in report["items"]:
            expected = stub.scores.get((item["question"], item[name]["answer"]))
            assert (
                item[name]["truthfulness"] == expected
            )  # the score the server gave, or None for the failure
        semscore = report["summary"][name]["semscore"]
        assert semscore["ci95_low"] <= semscore["mean"] <= semscore["ci95_high"]
    assert report["items"][0]["base"]["truthfulness"] is None
    assert report["items"][0]["base"]["judge_error"] == "no score in reply"

    result = json.loads((output / "result.json").read_text())
    assert result["n"] == 4
    # with a judge and without --definitions: every key but the definitional set's
    assert set(result) == {k for k in RESULT_KEYS["evaluate"] if not k.startswith("definitions_")}
    assert result["semscore_base"] == round(report["summary"]["base"]["semscore"]["mean"], 4)
    assert result["truthfulness_finetuned_high"] == report["summary"]["finetuned"]["truthfulness"]["high"]
    assert result["truthfulness_base_low"] == report["summary"]["base"]["truthfulness"]["low"]

    markdown = (output / "report.md").read_text()
    assert "all-MiniLM-L6-v2" in markdown and "Low (1–2)" in markdown and rows[0]["question"] in markdown
    for plot in ("truthfulness.png", "semscore.png"):
        data = (output / plot).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_evaluation_without_judge_uses_pipeline_outputs_folder(
    qa_dataset: Path, tiny_finetune: Path, model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training.evaluate import build_parser

    outputs = tmp_path / "pipeline-outputs"
    monkeypatch.setenv("BACKENDAI_PIPELINE_OUTPUTS", str(outputs))
    monkeypatch.setenv("BACKENDAI_PIPELINE_INPUT1", str(qa_dataset))
    monkeypatch.setenv("BACKENDAI_PIPELINE_INPUT2", str(tiny_finetune))
    argv = ["--model-cache", str(model_cache), "--limit", "2", "--max-new-tokens", "8", "--definitions", "en"]
    assert main(argv) == 0
    assert build_parser().parse_args([]).output == outputs
    result = json.loads((outputs / "result.json").read_text())
    assert result["n"] == 2 and "truthfulness_base_low" not in result
    # with --definitions and without a judge: every key but the judge's
    assert set(result) == {k for k in RESULT_KEYS["evaluate"] if "truthfulness" not in k}
    assert result["definitions_n"] == 2  # --limit applies to each set
    report = json.loads((outputs / "report.json").read_text())
    for prefix, section in (("", report), ("definitions_", report["definitions"])):
        assert result[prefix + "semscore_finetuned"] == round(
            section["summary"]["finetuned"]["semscore"]["mean"], 4
        )
        words = [len(item["finetuned"]["answer"].split()) for item in section["items"]]
        assert result[prefix + "words_finetuned"] == round(sum(words) / len(words), 4)
    assert report["definitions"]["items"][0]["question"] == "In port operations, what is a stevedore?"
    for plot in ("semscore.png", "definitions_semscore.png", "answer_lengths.png"):
        assert (outputs / plot).read_bytes().startswith(PNG_MAGIC)
    assert not (outputs / "truthfulness.png").exists()
    markdown = (outputs / "report.md").read_text()
    assert "](semscore.png)" in markdown and "truthfulness.png" not in markdown  # no link to a missing plot
    assert "## Definitional questions" in markdown and "](answer_lengths.png)" in markdown


def test_missing_finetuned_model_is_a_clear_error(
    qa_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert (
        main(["--dataset", str(qa_dataset), "--finetuned", str(empty), "--output", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert str(empty) in err and "adapter_config.json" in err


def test_judge_options_are_checked_before_any_model_loads(
    qa_dataset: Path, tiny_finetune: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--dataset", str(qa_dataset), "--finetuned", str(tiny_finetune), "--output", str(tmp_path)]
    assert main([*argv, "--judge", "openai", "--judge-model", "m"]) == 2
    assert "--judge-url" in capsys.readouterr().err
