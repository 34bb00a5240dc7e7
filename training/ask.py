"""``python -m training ask``: one held-out test question to a served model, through its OpenAI-compatible API.

Sends the question's chat messages exactly as the dataset holds them (greedy: temperature 0) to
``<url>/v1/chat/completions`` with the service token, and writes ``result.json``: question, reference answer,
the model's answer, the model name and the seconds the request took.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from training.evaluate import test_rows
from training.exceptions import DatasetError, ServedModelError
from training.launch import log_format
from training.paths import default_input_dir, default_output_dir, missing_outside_pipeline

log = logging.getLogger("training.ask")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training ask", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=default_input_dir(1), help="prepared dataset folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--index", type=int, default=0, help="which question of the split")
    parser.add_argument(
        "--url", default=os.environ.get("SERVICE_URL"), help="the service endpoint (SERVICE_URL)"
    )
    parser.add_argument("--token-env", default="SERVICE_TOKEN", help="env var holding the service token")
    parser.add_argument("--model", default="/models", help="model name the server knows (its model path)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--output", type=Path, default=default_output_dir(), help="output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=log_format())
    args = build_parser().parse_args(argv)
    if problem := missing_outside_pipeline({"--dataset": args.dataset, "--output": args.output}):
        print(problem, file=sys.stderr)
        return 2
    try:
        result = ask(args)
    except (DatasetError, ServedModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def ask(args: argparse.Namespace) -> dict[str, Any]:
    """Ask the served model the chosen test question; write and return the result."""
    import openai

    if not args.url:
        raise ServedModelError("no service endpoint: pass --url or set SERVICE_URL")
    rows = test_rows(args.dataset, args.split, None)
    if not 0 <= args.index < len(rows):
        raise DatasetError(f"--index {args.index}: split {args.split!r} has {len(rows)} questions")
    row = rows[args.index]
    client = openai.OpenAI(
        base_url=args.url.rstrip("/") + "/v1", api_key=os.environ.get(args.token_env) or "none"
    )
    started = time.monotonic()
    try:
        reply = client.chat.completions.create(
            model=args.model, messages=list(row["prompt"]), max_tokens=args.max_tokens, temperature=0
        )
    except openai.OpenAIError as e:
        raise ServedModelError(
            f"{args.url}: the served model did not answer ({type(e).__name__}: {e})"
        ) from None
    seconds = round(time.monotonic() - started, 2)
    answer = (reply.choices[0].message.content or "").strip() if reply.choices else ""
    if not answer:
        raise ServedModelError(f"{args.url}: the served model gave an empty answer")
    result = {
        "question": row["question"],
        "reference": row["answer"],
        "answer": answer,
        "model": reply.model or args.model,
        "seconds": seconds,
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "result.json").write_text(json.dumps(result, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("asked %s in %.2f s: %s", args.url, seconds, answer)
    return result
