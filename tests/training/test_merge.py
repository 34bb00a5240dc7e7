"""``python -m training merge``: the merged model computes what base + adapter compute, and is ready to serve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_fasttrack.model_definition import parse_model_definition
from tests.training.model_fixtures import (
    model_cache_fixture,  # noqa: F401
    qa_dataset_fixture,  # noqa: F401
    smollm2_fixture,  # noqa: F401
    tiny_finetune_fixture,  # noqa: F401
)
from training.merge import main, model_definition
from training.results import RESULT_KEYS


def test_the_merged_model_has_the_adapters_logits_and_a_model_definition(
    tiny_finetune: Path, model_cache: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    output = tmp_path / "merged"
    argv = ["--adapter", str(tiny_finetune), "--output", str(output), "--model-cache", str(model_cache)]
    assert main([*argv, "--server", "vllm"]) == 0

    result = json.loads((output / "result.json").read_text())
    assert result["adapter"] == str(tiny_finetune / "adapter") and result["server"] == "vllm"
    assert set(result) == RESULT_KEYS["merge"]
    assert result["dtype"] == "float32" and result["parameters"] > 100_000_000
    assert list(output.glob("*.safetensors")) and (output / "tokenizer_config.json").is_file()

    tokenizer = AutoTokenizer.from_pretrained(str(output))
    inputs = tokenizer("What does FOB mean in shipping?", return_tensors="pt")
    peft_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(result["base_model"]), str(tiny_finetune / "adapter")
    )
    merged = AutoModelForCausalLM.from_pretrained(str(output))
    with torch.inference_mode():
        expected = peft_model(**inputs).logits
        with peft_model.disable_adapter():
            base = peft_model(**inputs).logits
        got = merged(**inputs).logits
    tolerance = 1e-4
    assert (expected - base).abs().max() > 10 * tolerance  # the adapter changes the logits ...
    torch.testing.assert_close(got, expected, atol=tolerance, rtol=0)  # ... and the merged model has them

    definition = parse_model_definition(output / "model-definition.yaml", "merged:/model-definition.yaml")
    served = definition.served()
    assert served is not None and served.service is not None and served.model_path == "/models"
    assert served.service.start_command[:3] == ["vllm", "serve", "{model_path}"]
    assert served.service.health_check is not None and served.service.health_check.path == "/health"


def test_transformers_serves_on_the_cpu(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "model-definition.yaml"
    path.write_text(yaml.safe_dump(model_definition("fine-tuned", "transformers")))
    served = parse_model_definition(path, "merged:/model-definition.yaml").served()
    assert served is not None and served.service is not None
    command = served.service.start_command
    assert command[:3] == ["transformers", "serve", "{model_path}"] and command[-2:] == ["--device", "cpu"]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("empty", "not a LoRA adapter (no adapter_config.json)"),
        ("model", "a full model, not a LoRA adapter"),
        ("no-parent", "does not exist"),
    ],
)
def test_bad_inputs_give_one_clear_line(
    layout: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    if layout == "model":
        (adapter / "config.json").write_text("{}")
    if layout == "no-parent":
        (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x"}))
    output = tmp_path / ("missing/merged" if layout == "no-parent" else "merged")
    assert main(["--adapter", str(adapter), "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not output.exists()
