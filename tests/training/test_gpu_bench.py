"""``bench/gpu.py --tiny``: the GPU check's whole path (both SFT settings, generation, report) on a CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_gpu_bench_runs_on_a_tiny_model(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "bench/gpu.py",
            "--tiny",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--output",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "gpu-bench.json").read_text())
    assert report["device"] == "cpu" and report["peak_bf16_tflops"] is None
    preset, articles = report["sft"]["preset"], report["sft"]["articles"]
    # on a CPU the GPU preset runs without its fast paths; the articles' settings are their own
    assert (preset["attention"], preset["packing"], preset["use_liger_kernel"]) == ("eager", False, False)
    assert (articles["batch"], articles["loss_on"], articles["packing"]) == ("2 x 4", "whole text", False)
    assert preset["loss_on"] == "answers" and preset["batch"] == "4 x 1"
    for run in (preset, articles):
        assert run["timed_steps"] == 2 and run["tokens"] > 0 and run["tokens_per_s"] > 0
        assert run["mfu"] is None and run["parameters"] == preset["parameters"]
    generation = report["generation"]
    assert generation["batched"]["prompts"] > generation["one_at_a_time"]["prompts"]
    assert generation["batched"]["tokens_per_s"] > 0 and generation["one_at_a_time"]["tokens_per_s"] > 0
    table = (tmp_path / "gpu-bench.md").read_text()
    assert "| preset | gemma2-2b |" in table and "| articles | gemma2-2b-seed |" in table
    assert "none (no entry for this device)" in table


def test_mfu_counts_six_flops_per_parameter_and_token() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import gpu  # type: ignore[import-not-found]

    assert gpu.peak_tflops("NVIDIA H200") == gpu.peak_tflops("NVIDIA H100 80GB HBM3")
    assert gpu.peak_tflops("NVIDIA H100 PCIe") != gpu.peak_tflops("NVIDIA H100 80GB HBM3")
    assert gpu.peak_tflops("NVIDIA GH200 480GB") is not None and gpu.peak_tflops("Some CPU") is None
    peak = gpu.peak_tflops("NVIDIA A100-SXM4-80GB")
    assert peak is not None
    # a model of P parameters at T tokens/s does 6PT FLOP/s
    assert gpu.mfu(2_000_000_000, 10_000.0, peak) == 6 * 2e9 * 1e4 / (peak * 1e12)
    assert gpu.mfu(1, 1.0, None) is None
