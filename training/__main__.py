"""``python -m training <command> ...``: the steps a pipeline session runs.

Commands: ``prepare`` (build the Q/A dataset), ``extract`` (LLM Q/A extraction from transcripts), ``pretrain``
(continual pre-training on raw domain text), ``finetune`` (LoRA SFT), ``evaluate`` (SemScore, judge, report),
``merge`` (an adapter merged into its base, with a model definition to serve it), ``ask`` (one test question to a
served model), ``launch`` (run a step data-parallel over the kernels of a cluster session).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "prepare": "training.prepare",
    "extract": "training.extract",
    "pretrain": "training.pretrain",
    "finetune": "training.finetune",
    "evaluate": "training.evaluate",
    "merge": "training.merge",
    "ask": "training.ask",
    "launch": "training.launch",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"} or args[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        print(f"\nusage: python -m training {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 0 if args and args[0] in {"-h", "--help"} else 2
    module = importlib.import_module(COMMANDS[args[0]])
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
