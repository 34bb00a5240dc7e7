"""PNG plots of the evaluation: truthfulness and SemScore distributions, base vs fine-tuned, and answer lengths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"base": "#8c8c8c", "finetuned": "#1f77b4"}
LABELS = {"base": "base", "finetuned": "fine-tuned"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_truthfulness(report: dict[str, Any], path: Path) -> None:
    """Grouped bars of the 1–5 scores (and unscored answers) per model; low (1–2) and high (4–5) counts in the legend."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    width = 0.38
    positions = list(range(1, 7))
    for offset, name in ((-width / 2, "base"), (width / 2, "finetuned")):
        truth = report["summary"][name]["truthfulness"]
        counts = [truth["histogram"][str(s)] for s in range(1, 6)] + [truth["failures"]]
        label = f"{LABELS[name]}: low (1–2) {truth['low']}, high (4–5) {truth['high']}"
        bars = ax.bar([p + offset for p in positions], counts, width, label=label, color=COLORS[name])
        ax.bar_label(bars, padding=2, fontsize=8)
    ax.set_xticks(positions, ["1", "2", "3", "4", "5", "no score"])
    ax.axvline(5.5, color="black", linewidth=0.6, linestyle=":")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("truthfulness (1 = contradicts the reference, 5 = matches it)")
    ax.set_ylabel("answers")
    ax.set_title(
        f"Truthfulness, {report['n']} test questions, judge: {report['settings']['judge']}", fontsize=10
    )
    ax.margins(y=0.2)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_semscore(report: dict[str, Any], path: Path, section: dict[str, Any] | None = None) -> None:
    """Per-item SemScore of ``section`` (default: the test split): histograms of both models (left) and base vs
    fine-tuned per item (right)."""
    plt = _pyplot()
    embedding_model = report["settings"]["embedding_model"]
    report = report if section is None else section
    items = report["items"]
    scores = {name: [item[name]["semscore"] for item in items] for name in ("base", "finetuned")}
    fig, (hist, pairs) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=120, gridspec_kw={"width_ratios": [3, 2]})
    from matplotlib.ticker import MaxNLocator

    low = min(0.0, *scores["base"], *scores["finetuned"])
    bins = [i / 20 for i in range(int(low * 20) - 1, 21)]
    labels = []
    for name in ("base", "finetuned"):
        stats = report["summary"][name]["semscore"]
        labels.append(
            f"{LABELS[name]}: mean {stats['mean']:.3f}, 95% CI [{stats['ci95_low']:.3f}, {stats['ci95_high']:.3f}]"
        )
        hist.axvline(stats["mean"], color=COLORS[name], linestyle="--", linewidth=1.2)
    hist.hist(
        [scores["base"], scores["finetuned"]],
        bins=bins,
        label=labels,
        color=[COLORS["base"], COLORS["finetuned"]],
    )
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    hist.set_xlim(low, 1.0)
    hist.set_xlabel("SemScore (cosine similarity to the reference)")
    hist.set_ylabel("answers")
    hist.set_title(f"SemScore distribution ({embedding_model.split('/')[-1]})", fontsize=10)
    hist.legend(fontsize=8, loc="upper left")
    pairs.scatter(scores["base"], scores["finetuned"], s=14, alpha=0.7, color=COLORS["finetuned"])
    pairs.plot([low, 1], [low, 1], color="black", linewidth=0.8, linestyle=":")
    better = sum(f > b for b, f in zip(scores["base"], scores["finetuned"], strict=True))
    pairs.set_xlim(low, 1)
    pairs.set_ylim(low, 1)
    pairs.set_aspect("equal")
    pairs.set_xlabel("base")
    pairs.set_ylabel("fine-tuned")
    pairs.set_title(f"per question: fine-tuned higher on {better}/{len(items)}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_answer_lengths(sections: list[tuple[str, dict[str, Any]]], path: Path) -> None:
    """Box plots of answer lengths in words (base, fine-tuned, reference), one panel per evaluated set."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(sections), figsize=(5 * len(sections), 4.2), dpi=120, squeeze=False)
    for ax, (title, section) in zip(axes[0], sections, strict=True):
        items = section["items"]
        data = [[item[name]["words"] for item in items] for name in ("base", "finetuned")]
        data.append([item["reference_words"] for item in items])
        box = ax.boxplot(data, patch_artist=True, tick_labels=["base", "fine-tuned", "reference"])
        for patch, color in zip(box["boxes"], [COLORS["base"], COLORS["finetuned"], "#2ca02c"], strict=True):
            patch.set_facecolor(color)
            patch.set_alpha(0.6)
        means = [sum(values) / len(values) if values else 0 for values in data]
        ax.plot([1, 2, 3], means, "k^", markersize=6, label="mean")
        ax.set_ylabel("words per answer")
        ax.set_title(f"{title} ({len(items)} questions)", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
