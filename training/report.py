"""The evaluation report: per-model summaries, ``report.json``, ``report.md`` and the headline ``result.json``.

Besides SemScore (and the judge), every evaluated set reports answer lengths in words (base, fine-tuned,
reference), the novel-token F1 of :mod:`training.overlap` (no credit for restating the question) and examples
sorted by the paired SemScore difference, so that an answer style that SemScore rewards shows as such.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.judge import Verdict
from training.overlap import novel_f1, word_count
from training.semscore import mean_ci

MODELS = ("base", "finetuned")
LABELS = {"base": "base", "finetuned": "fine-tuned"}
LOW_SCORES = (1, 2)
HIGH_SCORES = (4, 5)
DEFINITIONS = "definitions"


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


def words_summary(counts: Sequence[int]) -> dict[str, float | None]:
    ordered = sorted(counts)
    if not ordered:
        return {"mean": None, "median": None}
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"mean": sum(ordered) / len(ordered), "median": median}


def model_summary(result: ModelResult, f1: Sequence[float | None]) -> dict[str, Any]:
    summary: dict[str, Any] = {"semscore": mean_ci(result.semscores).as_dict()}
    summary["novel_f1"] = mean_ci([v for v in f1 if v is not None]).as_dict()
    summary["answer_words"] = words_summary([word_count(a) for a in result.answers])
    summary["truthfulness"] = truthfulness_summary(result.verdicts) if result.verdicts is not None else None
    return summary


def build_section(rows: Sequence[dict[str, Any]], results: dict[str, ModelResult]) -> dict[str, Any]:
    """One evaluated set: a summary per model, the paired differences, lengths, and every item."""
    f1 = {
        name: [
            novel_f1(answer, row["answer"], row["question"])
            for answer, row in zip(results[name].answers, rows, strict=True)
        ]
        for name in MODELS
    }
    differences = [
        f - b for b, f in zip(results["base"].semscores, results["finetuned"].semscores, strict=True)
    ]
    f1_differences = [
        f - b for b, f in zip(f1["base"], f1["finetuned"], strict=True) if b is not None and f is not None
    ]
    items = []
    for i, row in enumerate(rows):
        item: dict[str, Any] = {
            "id": row.get("id"),
            "source": row.get("source"),
            "question": row["question"],
            "reference": row["answer"],
            "reference_words": word_count(row["answer"]),
            "semscore_difference": differences[i],
        }
        for name in MODELS:
            result = results[name]
            item[name] = {
                "answer": result.answers[i],
                "words": word_count(result.answers[i]),
                "semscore": result.semscores[i],
                "novel_f1": f1[name][i],
            }
            if result.verdicts is not None:
                verdict = result.verdicts[i]
                item[name].update(
                    truthfulness=verdict.score, judge_reply=verdict.raw, judge_error=verdict.error
                )
        items.append(item)
    return {
        "n": len(rows),
        "summary": {name: model_summary(results[name], f1[name]) for name in MODELS},
        "reference_words": words_summary([word_count(row["answer"]) for row in rows]),
        "semscore_difference": mean_ci(differences).as_dict(),
        "novel_f1_difference": mean_ci(f1_differences).as_dict(),
        "by_source": by_source(items),
        "items": items,
    }


def by_source(items: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean SemScore of both models per source (exam, term, transcript) of the items."""
    sources = sorted({str(item["source"]) for item in items if item.get("source")})
    table: dict[str, dict[str, Any]] = {}
    for source in sources:
        chosen = [item for item in items if item.get("source") == source]
        table[source] = {"n": len(chosen)}
        for name in MODELS:
            table[source][f"semscore_{name}"] = sum(i[name]["semscore"] for i in chosen) / len(chosen)
    return table


def build_report(
    rows: Sequence[dict[str, Any]],
    results: dict[str, ModelResult],
    *,
    settings: dict[str, Any],
    definitions: tuple[Sequence[dict[str, Any]], dict[str, ModelResult]] | None = None,
) -> dict[str, Any]:
    """Everything the evaluation found: settings, the test split's section and, when evaluated, the
    definitional set's section (under ``definitions``)."""
    report: dict[str, Any] = {"settings": settings, **build_section(rows, results)}
    if definitions is not None:
        report[DEFINITIONS] = build_section(*definitions)
    return report


def sections(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(key prefix, section) of every evaluated set: ``""`` for the test split, ``definitions_`` for the other."""
    found = [("", report)]
    if report.get(DEFINITIONS):
        found.append((f"{DEFINITIONS}_", report[DEFINITIONS]))
    return found


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The few numbers a pipeline passes on (XCom, a chat message); the definitional set's carry the prefix
    ``definitions_``."""
    result: dict[str, Any] = {"embedding_model": report["settings"]["embedding_model"]}
    for prefix, section in sections(report):
        result.update({prefix + key: value for key, value in section_headline(section).items()})
    return result


def section_headline(section: dict[str, Any]) -> dict[str, Any]:
    summary = section["summary"]
    difference, f1_difference = section["semscore_difference"], section["novel_f1_difference"]
    result: dict[str, Any] = {
        "n": section["n"],
        "semscore_base": _round(summary["base"]["semscore"]["mean"]),
        "semscore_finetuned": _round(summary["finetuned"]["semscore"]["mean"]),
        "semscore_difference": _round(difference["mean"]),
        "semscore_difference_ci95_low": _round(difference["ci95_low"]),
        "semscore_difference_ci95_high": _round(difference["ci95_high"]),
        "novel_f1_n": f1_difference["n"],
        "novel_f1_base": _round(summary["base"]["novel_f1"]["mean"]),
        "novel_f1_finetuned": _round(summary["finetuned"]["novel_f1"]["mean"]),
        "novel_f1_difference": _round(f1_difference["mean"]),
        "novel_f1_difference_ci95_low": _round(f1_difference["ci95_low"]),
        "novel_f1_difference_ci95_high": _round(f1_difference["ci95_high"]),
        "words_base": _round(summary["base"]["answer_words"]["mean"]),
        "words_finetuned": _round(summary["finetuned"]["answer_words"]["mean"]),
        "words_reference": _round(section["reference_words"]["mean"]),
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


def markdown(report: dict[str, Any], examples: int = 4) -> str:
    settings, summary = report["settings"], report["summary"]
    lines = [
        "# Evaluation: base vs fine-tuned",
        "",
        f"- Test items: {report['n']}",
        f"- Base model: `{settings['base_model']}`",
        f"- Fine-tuned model: `{settings['finetuned_model']}`",
        f"- SemScore embedding model: `{settings['embedding_model']}`",
        f"- Truthfulness judge: {('`' + settings['judge'] + '`') if settings.get('judge') else 'not run'}",
    ]
    if report.get(DEFINITIONS):
        lines.append(
            f"- Definitional questions: {report[DEFINITIONS]['n']} from `{settings.get('definitions')}`"
        )
    lines += ["", f"## Held-out split `{settings.get('split', 'test')}`", ""]
    lines += _section_markdown(report, examples)
    if report.get("by_source"):
        lines += ["### SemScore by source", "", "| Source | Items | Base | Fine-tuned |", "|---|---|---|---|"]
        for source, row in report["by_source"].items():
            lines.append(
                f"| {source} | {row['n']} | {_fmt(row['semscore_base'])} | {_fmt(row['semscore_finetuned'])} |"
            )
        lines.append("")
    judged = all(summary[name]["truthfulness"] is not None for name in MODELS)
    if judged:
        lines += [
            "### Truthfulness (1–5, LLM judge with the reference answer)",
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
    lines += _examples_markdown(report, examples)
    if report.get(DEFINITIONS):
        lines += [
            "## Definitional questions",
            "",
            "Plain questions about trade terms, phrased unlike the training templates, with full-sentence "
            "reference answers about facts that are not in the training split.",
            "",
        ]
        lines += _section_markdown(report[DEFINITIONS], examples)
        lines += ["![SemScore, definitional questions](definitions_semscore.png)", ""]
        lines += _examples_markdown(report[DEFINITIONS], examples)
    lines += ["## Plots", ""]
    if judged:  # the truthfulness plot exists only with a judge
        lines += ["![Truthfulness](truthfulness.png)", ""]
    lines += ["![SemScore](semscore.png)", "", "![Answer lengths](answer_lengths.png)", ""]
    return "\n".join(lines)


def _section_markdown(section: dict[str, Any], examples: int) -> list[str]:
    summary = section["summary"]
    f = section["novel_f1_difference"]
    lines = ["### SemScore (cosine similarity to the reference answer, 1.00 is best)", ""]
    lines += _metric_table(summary, "semscore", section["semscore_difference"], with_std=True)
    lines += [
        "### Novel-token F1 (content words of the reference that are not in the question, 1.00 is best)",
        "",
        "SemScore also rewards an answer that restates the question; this token F1 does not: the question's "
        f"words are removed from answer and reference first. Scored items: {f['n']} of {section['n']} (a "
        "reference made only of the question's words, such as a multiple-choice option, has no score).",
        "",
    ]
    lines += _metric_table(summary, "novel_f1", f, with_std=False)
    lines += ["### Answer length (words)", "", "| | Mean | Median |", "|---|---|---|"]
    lengths = [(LABELS[name], summary[name]["answer_words"]) for name in MODELS]
    for label, words in [*lengths, ("reference", section["reference_words"])]:
        lines.append(f"| {label} | {_fmt(words['mean'], 1)} | {_fmt(words['median'], 1)} |")
    lines.append("")
    return lines


def _metric_table(
    summary: dict[str, Any], metric: str, difference: dict[str, Any], *, with_std: bool
) -> list[str]:
    """One metric's per-model table (mean, 95% CI, optionally std) and its paired difference line."""
    lines = ["| Model | Mean | 95% CI | Std |" if with_std else "| Model | Mean | 95% CI |"]
    lines.append("|---|---|---|---|" if with_std else "|---|---|---|")
    for name in MODELS:
        s = summary[name][metric]
        row = f"| {LABELS[name]} | {_fmt(s['mean'])} | {_fmt(s['ci95_low'])} – {_fmt(s['ci95_high'])} |"
        lines.append(row + (f" {_fmt(s['std'])} |" if with_std else ""))
    d = difference
    return [
        *lines,
        "",
        f"Paired difference (fine-tuned − base): {_fmt(d['mean'])} (95% CI {_fmt(d['ci95_low'])} – {_fmt(d['ci95_high'])}).",
        "",
    ]


def _examples_markdown(section: dict[str, Any], examples: int) -> list[str]:
    """The items where fine-tuning lost most and gained most (paired SemScore difference)."""
    ordered = sorted(section["items"], key=lambda item: item["semscore_difference"])
    if len(ordered) <= 2 * examples:
        groups = [("Examples, sorted by the paired SemScore difference (fine-tuned − base)", ordered)]
    else:
        groups = [
            ("Largest losses of the fine-tuned model (paired SemScore difference)", ordered[:examples]),
            ("Largest gains of the fine-tuned model (paired SemScore difference)", ordered[-examples:][::-1]),
        ]
    lines: list[str] = []
    for title, chosen in groups:
        lines += [f"### {title}", ""]
        for item in chosen:
            lines += [
                f"**Q:** {item['question']} (difference {_fmt(item['semscore_difference'])})",
                "",
                f"- Reference ({item['reference_words']} words): {item['reference']}",
            ]
            for name in MODELS:
                answer = item[name]
                lines.append(
                    f"- {LABELS[name].capitalize()} (SemScore {_fmt(answer['semscore'])}, novel-token F1 "
                    f"{_fmt(answer['novel_f1'])}, {answer['words']} words): {answer['answer']}"
                )
            lines.append("")
    return lines


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)
