"""LLM extraction of Q/A pairs from raw lecture transcripts through any OpenAI-compatible chat endpoint.

Transcripts (``*.txt``, one lecture per file) are split into chunks; each chunk is sent with the extraction
prompt; the reply must validate against :class:`ExtractionOutput` (``{"qa_pairs": [{"question", "answer"}]}``).
Replies that fail (HTTP errors that may pass, invalid JSON, schema mismatch) are retried a bounded number of
times. Results go to ``WORK/success/<transcript>.jsonl`` (``{chunk_id, context, json_output, ...}``, the input
of the transcript formatter) and ``WORK/failed/<transcript>.jsonl``; a rerun skips chunks already in
``success/`` and retries the failed ones.

Usage: ``python -m training.extract --input RAW_DIR --work-dir DIR [--base-url URL] [--model NAME]``.
The key is read from the environment variable named by ``--api-key-env`` (``OPENAI_API_KEY`` by default) and
is never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from training.chunking import DEFAULT_CHUNK_CHARS, Chunk, chunk_transcript
from training.formats import JSONProblem, load_json
from training.prompts import EXTRACTION_PROMPTS, LANGUAGES, fill

log = logging.getLogger(__name__)

SUCCESS_DIR = "success"
FAILED_DIR = "failed"
REPORT_FILE = "extraction_report.json"
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class QAItem(BaseModel):
    """One extracted pair; ``answer`` may be a non-empty list (its first item is used later)."""

    model_config = ConfigDict(extra="ignore")
    question: str = Field(min_length=1)
    answer: str | list[str]

    @field_validator("answer")
    @classmethod
    def _answer_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value):
            raise ValueError("answer is empty")
        return value


class ExtractionOutput(BaseModel):
    """The JSON object the LLM must reply with."""

    model_config = ConfigDict(extra="ignore")
    qa_pairs: list[QAItem] = Field(min_length=1)


class InvalidReply(Exception):
    """The endpoint answered, but not with a valid ``{"qa_pairs": [...]}`` object."""


def parse_reply(content: str | None) -> ExtractionOutput:
    """Validate the reply text (a surrounding Markdown code fence is tolerated)."""
    if not content or not content.strip():
        raise InvalidReply("empty reply")
    fenced = _FENCE.match(content)
    text = fenced.group(1) if fenced else content.strip()
    try:
        return ExtractionOutput.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "reply"
        raise InvalidReply(f"{where}: {first['msg']} (reply starts {text[:60]!r})") from exc


@dataclass(frozen=True)
class ExtractionSettings:
    """Where and how to ask; ``api_key`` is kept out of ``repr`` and logs."""

    base_url: str | None
    model: str
    api_key: str = field(default="", repr=False)
    prompt: str = EXTRACTION_PROMPTS["ko"]
    max_attempts: int = 3
    concurrency: int = 4
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    temperature: float = 0.0
    timeout_s: float = 120.0
    backoff_s: float = 1.0
    json_mode: bool = False


@dataclass
class ExtractionReport:
    """Counts of one run."""

    chunks: int = 0
    already_done: int = 0
    succeeded: int = 0
    failed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def done_chunk_ids(work_dir: Path) -> set[str]:
    """Chunk ids already in ``success/`` (unreadable lines are ignored here: those chunks are redone)."""
    done: set[str] = set()
    for path in sorted((work_dir / SUCCESS_DIR).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = load_json(line)
            except JSONProblem:
                continue
            if isinstance(record, dict) and isinstance(record.get("chunk_id"), str):
                done.add(record["chunk_id"])
    return done


def _append(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def _retryable() -> tuple[type[BaseException], ...]:
    import openai

    return (
        InvalidReply,
        openai.APIConnectionError,
        openai.RateLimitError,
        openai.InternalServerError,
    )


async def _ask(client: Any, chunk: Chunk, settings: ExtractionSettings) -> ExtractionOutput:
    request: dict[str, Any] = {
        "model": settings.model,
        "messages": [{"role": "user", "content": fill(settings.prompt, summary=chunk.text)}],
        "temperature": settings.temperature,
    }
    if settings.json_mode:
        request["response_format"] = {"type": "json_object"}
    response = await client.chat.completions.create(**request)
    if not response.choices:
        raise InvalidReply("reply has no choices")
    return parse_reply(response.choices[0].message.content)


async def _extract_one(
    client: Any, chunk: Chunk, settings: ExtractionSettings, work_dir: Path, report: ExtractionReport
) -> None:
    from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

    attempts = 0
    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.max_attempts),
        wait=wait_exponential(multiplier=settings.backoff_s, max=30),
        retry=retry_if_exception_type(_retryable()),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                output = await _ask(client, chunk, settings)
    except Exception as exc:  # every failure is recorded, none stops the other chunks
        error = f"{type(exc).__name__}: {exc}"
        if settings.api_key:  # some servers echo the key they refused
            error = error.replace(settings.api_key, "***")
        record = {"chunk_id": chunk.chunk_id, "source_file": chunk.source_file, "index": chunk.index}
        record |= {"context": chunk.text, "error": error[:500], "attempts": attempts}
        _append(work_dir / FAILED_DIR / f"{chunk.source_file}.jsonl", record)
        report.failed += 1
        report.failures.append({"chunk_id": chunk.chunk_id, "error": error[:200], "attempts": attempts})
        log.warning("chunk %s failed after %d attempt(s): %s", chunk.chunk_id, attempts, error[:200])
        return
    record = {"chunk_id": chunk.chunk_id, "source_file": chunk.source_file, "index": chunk.index}
    record |= {"context": chunk.text, "json_output": json.dumps(output.model_dump(), ensure_ascii=False)}
    record["attempts"] = attempts
    _append(work_dir / SUCCESS_DIR / f"{chunk.source_file}.jsonl", record)
    report.succeeded += 1


async def extract_chunks(
    chunks: list[Chunk], settings: ExtractionSettings, work_dir: Path
) -> ExtractionReport:
    """Ask for every chunk not yet in ``success/``, at most ``settings.concurrency`` at a time."""
    import openai

    report = ExtractionReport(chunks=len(chunks))
    done = done_chunk_ids(work_dir)
    todo = [chunk for chunk in chunks if chunk.chunk_id not in done]
    report.already_done = len(chunks) - len(todo)
    for name in sorted({chunk.source_file for chunk in todo}):
        (work_dir / FAILED_DIR / f"{name}.jsonl").unlink(missing_ok=True)
    if not todo:
        return report
    client = openai.AsyncOpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key or "not-set",
        max_retries=0,
        timeout=settings.timeout_s,
    )
    semaphore = asyncio.Semaphore(max(1, settings.concurrency))

    async def bounded(chunk: Chunk) -> None:
        async with semaphore:
            await _extract_one(client, chunk, settings, work_dir, report)

    try:
        await asyncio.gather(*(bounded(chunk) for chunk in todo))
    finally:
        await client.close()
    return report


def load_chunks(input_dir: Path, chunk_chars: int) -> list[Chunk]:
    """Chunks of every ``*.txt`` transcript of a folder, in file-name order."""
    chunks: list[Chunk] = []
    for path in sorted(input_dir.glob("*.txt")):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: cannot read transcript: {exc}") from exc
        chunks.extend(chunk_transcript(path.stem, text, chunk_chars))
    return chunks


def run_extraction(input_dir: Path, work_dir: Path, settings: ExtractionSettings) -> ExtractionReport:
    """Chunk, ask, write ``success/``, ``failed/`` and ``extraction_report.json``; return the counts."""
    chunks = load_chunks(input_dir, settings.chunk_chars)
    log.info(
        "extracting %d chunk(s) via %s, model %s", len(chunks), settings.base_url or "default", settings.model
    )
    work_dir.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(extract_chunks(chunks, settings, work_dir))
    (work_dir / REPORT_FILE).write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    log.info(
        "extraction: %d chunk(s), %d already done, %d succeeded, %d failed",
        report.chunks,
        report.already_done,
        report.succeeded,
        report.failed,
    )
    return report


def add_extraction_arguments(parser: argparse.ArgumentParser) -> None:
    """Endpoint and behaviour options, shared with ``prepare --extract``."""
    group = parser.add_argument_group("LLM extraction")
    group.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"), help="env OPENAI_BASE_URL")
    group.add_argument("--model", default=os.environ.get("OPENAI_MODEL"), help="env OPENAI_MODEL")
    group.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="name of the env var holding the key (never logged)"
    )
    group.add_argument(
        "--extraction-language", choices=LANGUAGES, help="prompt language (default: --language, else ko)"
    )
    group.add_argument("--extraction-prompt-file", type=Path, help="prompt file with a {summary} placeholder")
    group.add_argument("--max-attempts", type=int, default=3)
    group.add_argument("--concurrency", type=int, default=4)
    group.add_argument("--chunk-chars", type=int, default=DEFAULT_CHUNK_CHARS)
    group.add_argument("--temperature", type=float, default=0.0)
    group.add_argument("--request-timeout", type=float, default=120.0)
    group.add_argument("--retry-backoff", type=float, default=1.0, help="seconds; doubles per retry")
    group.add_argument("--json-mode", action="store_true", help="send response_format json_object")


def settings_from_args(args: argparse.Namespace) -> ExtractionSettings:
    """Build settings, with clear errors for a missing model or a bad prompt file."""
    if not args.model:
        raise ValueError("no model: pass --model or set OPENAI_MODEL")
    prompt = EXTRACTION_PROMPTS[args.extraction_language or getattr(args, "language", None) or "ko"]
    if args.extraction_prompt_file is not None:
        try:
            prompt = args.extraction_prompt_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{args.extraction_prompt_file}: cannot read prompt: {exc}") from exc
        if "{summary}" not in prompt:
            raise ValueError(
                f"{args.extraction_prompt_file}: prompt must contain the {{summary}} placeholder"
            )
    if args.max_attempts < 1 or args.concurrency < 1 or args.chunk_chars < 1:
        raise ValueError("--max-attempts, --concurrency and --chunk-chars must be positive")
    return ExtractionSettings(
        base_url=args.base_url,
        model=args.model,
        api_key=os.environ.get(args.api_key_env, ""),
        prompt=prompt,
        max_attempts=args.max_attempts,
        concurrency=args.concurrency,
        chunk_chars=args.chunk_chars,
        temperature=args.temperature,
        timeout_s=args.request_timeout,
        backoff_s=args.retry_backoff,
        json_mode=args.json_mode,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m training.extract``: exit 0 when every chunk is done, 1 when some failed, 2 on bad usage."""
    parser = argparse.ArgumentParser(prog="python -m training.extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, required=True, help="folder of raw transcripts (*.txt)")
    parser.add_argument("--work-dir", type=Path, required=True, help="folder for success/ and failed/")
    add_extraction_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if not args.input.is_dir():
            raise ValueError(f"{args.input}: not a folder")
        report = run_extraction(args.input, args.work_dir, settings_from_args(args))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
