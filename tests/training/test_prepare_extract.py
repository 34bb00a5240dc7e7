"""LLM extraction against a local OpenAI-compatible HTTP server (see conftest.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from training import extract
from training.chunking import chunk_text, chunk_transcript
from training.extract import ExtractionSettings, InvalidReply, parse_reply, run_extraction
from training.formats.transcripts import read_transcript_folder
from training.records import SkipLog

SECRET = "sk-test-do-not-log-1234"


CHUNK_CHARS = 60


def _padded(paragraph: str) -> str:
    """Pad to 50..60 characters, so that with CHUNK_CHARS each paragraph is exactly one chunk."""
    while len(paragraph) < 50:
        paragraph += " more"
    assert len(paragraph) <= CHUNK_CHARS
    return paragraph


def _raw(tmp_path: Path, paragraphs: list[str], name: str = "lecture") -> Path:
    folder = tmp_path / "raw"
    folder.mkdir(exist_ok=True)
    text = "\n\n".join(_padded(p) for p in paragraphs)
    (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


def _settings(stub: Any, **overrides: Any) -> ExtractionSettings:
    values: dict[str, Any] = {
        "base_url": stub.base_url,
        "model": "stub-model",
        "api_key": SECRET,
        "prompt": "Extract Q/A from: {summary}",
        "max_attempts": 3,
        "concurrency": 2,
        "chunk_chars": CHUNK_CHARS,
        "backoff_s": 0.0,
    }
    return ExtractionSettings(**(values | overrides))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_chunking_keeps_paragraphs_and_bounds_length() -> None:
    text = "First paragraph is short.\n\nSecond one. It has two sentences.\n\n" + "word " * 40
    chunks = chunk_text(text, 30)
    assert chunks[0] == "First paragraph is short."
    assert all(len(c) <= 30 for c in chunks)
    assert " ".join(chunks).split() == text.split()
    first, again = chunk_transcript("x", text, 30), chunk_transcript("x", text, 30)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert len({c.chunk_id for c in first}) == len(first)


def test_parse_reply_validates_the_schema() -> None:
    assert parse_reply('```json\n{"qa_pairs": [{"question": "Q", "answer": ["A"]}]}\n```').qa_pairs[
        0
    ].answer == ["A"]
    for bad in ["", "not json", '{"qa_pairs": []}', '{"qa_pairs": [{"question": "Q"}]}', '{"qa": []}']:
        with pytest.raises(InvalidReply):
            parse_reply(bad)


def test_valid_replies_are_written_to_success(tmp_path: Path, openai_stub: Any) -> None:
    raw = _raw(tmp_path, ["[valid] alpha about bills of lading.", "[fenced] beta about customs."])
    work = tmp_path / "work"
    report = run_extraction(raw, work, _settings(openai_stub))
    assert (report.chunks, report.succeeded, report.failed, report.already_done) == (2, 2, 0, 0)
    records = _lines(work / "success" / "lecture.jsonl")
    assert sorted(r["context"] for r in records) == sorted(
        [_padded("[valid] alpha about bills of lading."), _padded("[fenced] beta about customs.")]
    )
    assert all(r["attempts"] == 1 for r in records)
    assert not (work / "failed" / "lecture.jsonl").exists()
    assert openai_stub.state.auth_headers == [f"Bearer {SECRET}"] * 2
    assert set(openai_stub.state.models) == {"stub-model"}
    pairs = read_transcript_folder(work, SkipLog())  # the formatter reads what extraction wrote
    assert sorted(p.answer for p in pairs) == sorted(
        [
            "Chunk alpha explains a trade fact.",
            "First alpha",
            "Chunk beta explains a trade fact.",
            "First beta",
        ]
    )
    assert json.loads((work / "extraction_report.json").read_text())["succeeded"] == 2


def test_malformed_reply_is_retried(tmp_path: Path, openai_stub: Any) -> None:
    raw = _raw(tmp_path, ["[malformed-once] gamma about letters of credit."])
    work = tmp_path / "work"
    report = run_extraction(raw, work, _settings(openai_stub))
    assert (report.succeeded, report.failed) == (1, 0)
    assert openai_stub.state.calls["gamma"] == 2
    assert _lines(work / "success" / "lecture.jsonl")[0]["attempts"] == 2


def test_permanent_failures_are_recorded_after_bounded_attempts(tmp_path: Path, openai_stub: Any) -> None:
    raw = _raw(
        tmp_path, ["[always-500] delta about tariffs.", "[always-invalid] eps about quotas.", "[valid] zeta."]
    )
    work = tmp_path / "work"
    report = run_extraction(raw, work, _settings(openai_stub, max_attempts=3))
    assert (report.succeeded, report.failed) == (1, 2)
    assert openai_stub.state.calls["delta"] == 3
    assert openai_stub.state.calls["eps"] == 3
    failed = {r["context"].split()[1]: r for r in _lines(work / "failed" / "lecture.jsonl")}
    assert set(failed) == {"delta", "eps"}
    assert all(r["attempts"] == 3 for r in failed.values())
    assert "InternalServerError" in failed["delta"]["error"]
    assert "InvalidReply" in failed["eps"]["error"]
    assert [r["context"] for r in _lines(work / "success" / "lecture.jsonl")] == [_padded("[valid] zeta.")]


def test_rerun_skips_finished_chunks_and_retries_failed_ones(tmp_path: Path, openai_stub: Any) -> None:
    raw = _raw(tmp_path, ["[valid] eta one.", "[valid] theta two.", "[always-500] iota three."])
    work = tmp_path / "work"
    first = run_extraction(raw, work, _settings(openai_stub, max_attempts=2))
    assert (first.succeeded, first.failed) == (2, 1)
    second = run_extraction(raw, work, _settings(openai_stub, max_attempts=2))
    assert (second.chunks, second.already_done, second.succeeded, second.failed) == (3, 2, 0, 1)
    assert openai_stub.state.calls["eta"] == 1
    assert openai_stub.state.calls["theta"] == 1
    assert openai_stub.state.calls["iota"] == 4
    assert len(_lines(work / "success" / "lecture.jsonl")) == 2
    assert len(_lines(work / "failed" / "lecture.jsonl")) == 1  # rewritten, not appended across runs


@pytest.mark.parametrize("concurrency", [2, 3, 5])
def test_requests_run_exactly_concurrency_at_a_time(
    tmp_path: Path, openai_stub: Any, concurrency: int
) -> None:
    openai_stub.state.gather = concurrency  # the stub holds requests until this many are in flight together
    raw = _raw(tmp_path, [f"[valid] c{i} chunk number {i}." for i in range(8)])
    report = run_extraction(raw, tmp_path / "work", _settings(openai_stub, concurrency=concurrency))
    assert report.succeeded == 8
    assert openai_stub.state.max_in_flight == concurrency
    assert not openai_stub.state.gather_timed_out


def test_command_line_reads_key_from_env_and_never_logs_it(
    tmp_path: Path,
    openai_stub: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: Any,
) -> None:
    raw = _raw(tmp_path, ["[valid] kappa.", "[always-500] lam."])
    monkeypatch.setenv("MY_LLM_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    argv = ["--input", str(raw), "--work-dir", str(tmp_path / "w"), "--base-url", openai_stub.base_url]
    argv += [
        "--model",
        "stub-model",
        "--api-key-env",
        "MY_LLM_KEY",
        "--retry-backoff",
        "0",
        "--chunk-chars",
        str(CHUNK_CHARS),
    ]
    assert extract.main(argv) == 1  # one chunk failed
    assert openai_stub.state.auth_headers[0] == f"Bearer {SECRET}"
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err + caplog.text
    assert SECRET not in (tmp_path / "w" / "failed" / "lecture.jsonl").read_text()
    assert "1 succeeded, 1 failed" in caplog.text


def test_command_line_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert extract.main(["--input", str(tmp_path / "nope"), "--work-dir", str(tmp_path), "--model", "m"]) == 2
    assert "nope: not a folder" in capsys.readouterr().err
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("no placeholder")
    argv = ["--input", str(tmp_path), "--work-dir", str(tmp_path), "--model", "m"]
    assert extract.main([*argv, "--extraction-prompt-file", str(prompt)]) == 2
    assert "{summary}" in capsys.readouterr().err


def test_shipped_sample_extraction_is_complete(tmp_path: Path, openai_stub: Any) -> None:
    """The English sample's success/ records match the chunker: a rerun asks the endpoint nothing."""
    import shutil

    sample = Path(extract.__file__).resolve().parent / "samples" / "en"
    work = tmp_path / "work"
    shutil.copytree(sample / "transcript_data", work)
    settings = _settings(openai_stub, chunk_chars=ExtractionSettings.chunk_chars)
    report = run_extraction(sample / "transcript_raw", work, settings)
    assert report.chunks >= 10
    assert (report.already_done, report.succeeded, report.failed) == (report.chunks, 0, 0)
    assert sum(openai_stub.state.calls.values()) == 0


def test_refused_key_fails_at_once_and_is_redacted(tmp_path: Path, openai_stub: Any) -> None:
    raw = _raw(tmp_path, ["[auth-echo] omicron about customs brokers."])
    work = tmp_path / "work"
    report = run_extraction(raw, work, _settings(openai_stub, max_attempts=3))
    assert (report.succeeded, report.failed) == (0, 1)
    assert openai_stub.state.calls["omicron"] == 1  # a 401 is not retried
    failed = (work / "failed" / "lecture.jsonl").read_text()
    assert "AuthenticationError" in failed and "***" in failed
    assert SECRET not in failed + json.dumps(report.as_dict())
