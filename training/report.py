"""The evaluation report: per-model summaries, ``report.json``, ``report.md`` and the headline ``result.json``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.judge import Verdict
from training.semscore import mean_ci

MODELS = ("base", "finetuned")
LABELS = {"base": "base", "finetuned": "fine-tuned"}
LOW_SCORES = (1, 2)
HIGH_SCORES = (4, 5)


@dataclass
class ModelResult:
    """One model's answers and scores on the test items."""

    answers: list[str]
    semscores: list[float]
    verdicts: list[Verdict] | None = None


def truthfulness_summary(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    scores = [v.score for v in verdicts if v.score is not None]
    histogram = {str(s): scores.count(s) for s in range(1, 6)}
    return {
        "histogram": histogram,
        "low": sum(histogram[str(s)] for s in LOW_SCORES),
        "high": sum(histogram[str(s)] for s in HIGH_SCORES),
        "mean": sum(scores) / len(scores) if scores else None,
        "scored": len(scores),
        "failures": len(verdicts) - len(scores),
    }


def model_summary(result: ModelResult) -> dict[str, Any]:
    summary: dict[str, Any] = {"semscore": mean_ci(result.semscores).as_dict()}
    summary["truthfulness"] = truthfulness_summary(result.verdicts) if result.verdicts is not None else None
    return summary


def build_report(
    rows: Sequence[dict[str, Any]],
    results: dict[str, ModelResult],
    *,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Everything the evaluation found: settings, a summary per model, the paired difference and every item."""
    differences = [
        f - b for b, f in zip(results["base"].semscores, results["finetuned"].semscores, strict=True)
    ]
    items = []
    for i, row in enumerate(rows):
        item: dict[str, Any] = {"id": row.get("id"), "question": row["question"], "reference": row["answer"]}
        for name in MODELS:
            result = results[name]
            item[name] = {"answer": result.answers[i], "semscore": result.semscores[i]}
            if result.verdicts is not None:
                verdict = result.verdicts[i]
                item[name].update(
                    truthfulness=verdict.score, judge_reply=verdict.raw, judge_error=verdict.error
                )
        items.append(item)
    return {
        "n": len(rows),
        "settings": settings,
        "summary": {name: model_summary(results[name]) for name in MODELS},
        "semscore_difference": mean_ci(differences).as_dict(),
        "items": items,
    }


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a pipeline passes on (XCom, a chat message)."""
    summary = report["summary"]
    result: dict[str, Any] = {
        "n": report["n"],
        "embedding_model": report["settings"]["embedding_model"],
        "semscore_base": _round(summary["base"]["semscore"]["mean"]),
        "semscore_finetuned": _round(summary["finetuned"]["semscore"]["mean"]),
    }
    for name in MODELS:
        truth = summary[name]["truthfulness"]
        if truth is not None:
            result[f"truthfulness_{name}_low"] = truth["low"]
            result[f"truthfulness_{name}_high"] = truth["high"]
            result[f"truthfulness_{name}_failures"] = truth["failures"]
    return result


def write_outputs(report: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (folder / "report.md").write_text(markdown(report), encoding="utf-8")
    (folder / "result.json").write_text(json.dumps(headline(report), indent=2, ensure_ascii=False) + "\n")


def markdown(report: dict[str, Any], examples: int = 5) -> str:
    settings, summary = report["settings"], report["summary"]
    lines = [
        "# Evaluation: base vs fine-tuned",
        "",
        f"- Test items: {report['n']}",
        f"- Base model: `{settings['base_model']}`",
        f"- Fine-tuned model: `{settings['finetuned_model']}`",
        f"- SemScore embedding model: `{settings['embedding_model']}`",
        f"- Truthfulness judge: {('`' + settings['judge'] + '`') if settings.get('judge') else 'not run'}",
        "",
        "## SemScore (cosine similarity to the reference answer, 1.00 is best)",
        "",
        "| Model | Mean | 95% CI | Std |",
        "|---|---|---|---|",
    ]
    for name in MODELS:
        s = summary[name]["semscore"]
        lines.append(
            f"| {LABELS[name]} | {_fmt(s['mean'])} | {_fmt(s['ci95_low'])} – {_fmt(s['ci95_high'])} | {_fmt(s['std'])} |"
        )
    d = report["semscore_difference"]
    lines += [
        "",
        f"Paired difference (fine-tuned − base): {_fmt(d['mean'])} (95% CI {_fmt(d['ci95_low'])} – {_fmt(d['ci95_high'])}).",
        "",
    ]
    judged = all(summary[name]["truthfulness"] is not None for name in MODELS)
    if judged:
        lines += [
            "## Truthfulness (1–5, LLM judge with the reference answer)",
            "",
            "| Model | 1 | 2 | 3 | 4 | 5 | Low (1–2) | High (4–5) | Mean | Failures |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name in MODELS:
            t = summary[name]["truthfulness"]
            counts = " | ".join(str(t["histogram"][str(s)]) for s in range(1, 6))
            lines.append(
                f"| {LABELS[name]} | {counts} | {t['low']} | {t['high']} | {_fmt(t['mean'], 2)} | {t['failures']} |"
            )
        lines.append("")
    lines += ["## Plots", ""]
    if judged:  # the truthfulness plot exists only with a judge
        lines += ["![Truthfulness](truthfulness.png)", ""]
    lines += ["![SemScore](semscore.png)", "", "## Examples", ""]
    for item in report["items"][:examples]:
        lines += [
            f"**Q:** {item['question']}",
            "",
            f"- Reference: {item['reference']}",
            f"- Base ({_fmt(item['base']['semscore'])}): {item['base']['answer']}",
            f"- Fine-tuned ({_fmt(item['finetuned']['semscore'])}): {item['finetuned']['answer']}",
            "",
        ]
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)
