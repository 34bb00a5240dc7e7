"""Outside a pipeline task the steps' input and output folders have no defaults: one clear line, exit code 2."""

from __future__ import annotations

import pytest

from training.__main__ import main


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("finetune", "error: --dataset and --output are required outside a pipeline task"),
        ("evaluate", "error: --dataset and --finetuned and --output are required outside a pipeline task"),
        ("merge", "error: --adapter and --output are required outside a pipeline task"),
        ("ask", "error: --dataset and --output are required outside a pipeline task"),
        ("pretrain", "error: --output is required outside a pipeline task"),
    ],
)
def test_a_step_outside_a_pipeline_names_the_missing_options(
    step: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for index in range(1, 4):
        monkeypatch.delenv(f"BACKENDAI_PIPELINE_INPUT{index}", raising=False)
    monkeypatch.delenv("BACKENDAI_PIPELINE_OUTPUTS", raising=False)
    extra = ["--input", "somewhere"] if step == "pretrain" else []
    assert main([step, *extra]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == message
