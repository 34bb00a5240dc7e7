"""``python -m training merge``: a LoRA adapter merged into its base model, ready to be served.

Loads the base model and the adapter with PEFT, merges them (``merge_and_unload``) and saves into the output
folder the merged weights (safetensors), the tokenizer, a ``model-definition.yaml`` (a Backend.AI model service of
runtime variant ``custom`` starts its ``start_command``: ``vllm serve`` on a GPU cluster, ``transformers serve`` on
a CPU) and ``result.json`` (base, adapter, dtype, parameters, server: a pipeline task's result).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from training.evaluate import locate_finetuned
from training.exceptions import BaseModelError, EvaluationError, MergeError
from training.launch import log_format
from training.models import resolve_base_model
from training.paths import default_input_dir, default_output_dir, missing_outside_pipeline

log = logging.getLogger("training.merge")

#: the model definition a ``custom`` service reads from the model folder
MODEL_DEFINITION = "model-definition.yaml"
#: the port the server listens on inside a replica
SERVER_PORT = 8000
#: the OpenAI-compatible servers a merged model can be served by, as start commands (``{model_path}``: the folder)
SERVERS: dict[str, list[str]] = {
    "vllm": ["vllm", "serve", "{model_path}", "--host", "0.0.0.0", "--port", str(SERVER_PORT)],
    "transformers": [
        "transformers",
        "serve",
        "{model_path}",
        "--host",
        "0.0.0.0",
        "--port",
        str(SERVER_PORT),
        "--device",
        "cpu",
    ],
}
#: how long a server may take to load the model: vLLM compiles and captures graphs before it answers
HEALTH_CHECKS: dict[str, dict[str, Any]] = {
    "vllm": {"path": "/health", "interval": 5, "max_retries": 360, "max_wait_time": 10, "initial_delay": 30},
    "transformers": {
        "path": "/health",
        "interval": 1,
        "max_retries": 600,
        "max_wait_time": 10,
        "initial_delay": 0,
    },
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training merge", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--adapter",
        type=Path,
        default=default_input_dir(1),
        help="a finetune output folder or an adapter folder",
    )
    parser.add_argument(
        "--base-model", help="the adapter's base (default: the one the fine-tuning recorded), as for evaluate"
    )
    parser.add_argument(
        "--output", type=Path, default=default_output_dir(), help="folder of the merged model"
    )
    parser.add_argument(
        "--server", choices=tuple(SERVERS), default="transformers", help="server of the model"
    )
    parser.add_argument(
        "--dtype",
        choices=("auto", "bfloat16", "float16", "float32"),
        default="auto",
        help="precision of the merged weights (auto: the base model's)",
    )
    parser.add_argument("--name", default="fine-tuned", help="the model's name in the model definition")
    parser.add_argument("--model-cache", type=Path, default=None, help="where converted base models are kept")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=log_format())
    args = build_parser().parse_args(argv)
    if problem := missing_outside_pipeline({"--adapter": args.adapter, "--output": args.output}):
        print(problem, file=sys.stderr)
        return 2
    try:
        result = merge(args)
    except (MergeError, BaseModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


def merge(args: argparse.Namespace) -> dict[str, Any]:
    """Merge the adapter of the parsed arguments into its base; return the result."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    try:
        finetuned = locate_finetuned(args.adapter)
    except EvaluationError:
        raise MergeError(f"{args.adapter}: not a LoRA adapter (no adapter_config.json)") from None
    if not finetuned.is_adapter:
        raise MergeError(f"{args.adapter}: a full model, not a LoRA adapter: it needs no merge")
    base_name = args.base_model or finetuned.recorded_base
    if not base_name:
        raise MergeError(f"{finetuned.path}: the base model is not recorded; pass --base-model")
    output: Path = args.output
    if not output.parent.is_dir():
        raise MergeError(f"--output {output}: the folder {output.parent} does not exist")
    if output.exists() and any(output.iterdir()):
        raise MergeError(f"--output {output}: the folder is not empty")

    base_path = resolve_base_model(base_name, args.model_cache)
    dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
    log.info("loading the base model %s", base_path)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    log.info("merging the adapter %s", finetuned.path)
    merged = PeftModel.from_pretrained(base, str(finetuned.path)).merge_and_unload()
    output.mkdir(exist_ok=True)
    merged.save_pretrained(str(output), safe_serialization=True)
    from training.models import load_tokenizer

    load_tokenizer(str(finetuned.path)).save_pretrained(str(output))
    (output / MODEL_DEFINITION).write_text(
        yaml.safe_dump(model_definition(args.name, args.server), sort_keys=False)
    )
    result = {
        "base_model": base_path,
        "adapter": str(finetuned.path),
        "dtype": str(merged.dtype).removeprefix("torch."),
        "parameters": sum(p.numel() for p in merged.parameters()),
        "server": args.server,
        "model_dir": str(output),
    }
    (output / "result.json").write_text(json.dumps(result) + "\n")
    log.info(
        "merged model in %s (%s parameters, %s), served by %s",
        output,
        result["parameters"],
        result["dtype"],
        args.server,
    )
    return result


def model_definition(name: str, server: str) -> dict[str, Any]:
    """A Backend.AI model definition serving the folder it lies in (mounted at ``/models``) with ``server``."""
    return {
        "models": [
            {
                "name": name,
                "model_path": "/models",
                "service": {
                    "start_command": list(SERVERS[server]),
                    "port": SERVER_PORT,
                    "health_check": dict(HEALTH_CHECKS[server]),
                },
            }
        ]
    }
