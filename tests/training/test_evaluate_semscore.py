"""SemScore with the packaged all-MiniLM-L6-v2 and the confidence interval."""

from __future__ import annotations

import math

import pytest

from training.semscore import embedding_model_location, load_embedder, mean_ci, semscores


def test_semscore_ranks_a_paraphrase_above_an_unrelated_answer() -> None:
    embedder = load_embedder("sentence-transformers/all-MiniLM-L6-v2")
    reference = "A tariff is a tax that a government charges on imported goods."
    scores = semscores(
        embedder,
        [
            reference,
            "Tariffs are taxes on goods brought into a country.",
            "The weather in Paris is sunny today.",
        ],
        [reference] * 3,
    )
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert scores[1] > 0.5 > scores[2]
    with pytest.raises(ValueError, match="2 answers but 1 references"):
        semscores(embedder, ["a", "b"], ["a"])


def test_packaged_model_is_used_offline_and_other_names_pass_through() -> None:
    assert embedding_model_location("all-MiniLM-L6-v2").endswith("model")
    assert (
        embedding_model_location("sentence-transformers/all-mpnet-base-v2")
        == "sentence-transformers/all-mpnet-base-v2"
    )


def test_mean_ci() -> None:
    ci = mean_ci([0.5, 0.7, 0.6, 0.8])
    assert ci.mean == pytest.approx(0.65) and ci.n == 4
    # t(0.975, 3) = 3.182; std = 0.1291
    assert ci.high - ci.mean == pytest.approx(3.1824 * 0.1291 / 2, rel=1e-3)
    assert mean_ci([0.3]).low == 0.3 and math.isnan(mean_ci([]).mean)
