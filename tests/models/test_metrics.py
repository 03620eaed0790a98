"""Specification of the targeting metrics (models.metrics) against values computed by hand.

k = floor(N * n / 100); the top k by score are inspected, ties broken by the
given key; precision, recall, value share, oracle and normalised precision
and lift at n in {0.5, 1, 2, 5, 10}; ranking-free PR-AUC, ROC-AUC, Brier.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from models.metrics import RATES, lift_curve, ranking_metrics, ranking_order, reliability_curve, source_hit_rates, top_k

# 200 items with distinct scores; the illicit ones sit at ranks 0, 2, 5, 15 and 50 (0 = highest score).
N = 200
ILLICIT_RANKS = (0, 2, 5, 15, 50)
SEIZED = (10.0, 20.0, 30.0, 40.0, 100.0)  # seized kg of those five, total 200


def ranked_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, labels and values of the 200-item batch, in a shuffled input order."""
    scores = np.linspace(1.0, 0.005, N)
    labels = np.zeros(N, dtype=bool)
    values = np.zeros(N)
    for rank, kg in zip(ILLICIT_RANKS, SEIZED):
        labels[rank] = True
        values[rank] = kg
    perm = np.random.default_rng(seed).permutation(N)
    return scores[perm], labels[perm], values[perm]


# rate: (k, precision, recall, value share, oracle precision, normalised precision, lift); base rate 5/200 = 0.025
HAND_COMPUTED = {
    0.5: (1, 1.0, 0.2, 0.05, 1.0, 1.0, 40.0),
    1.0: (2, 0.5, 0.2, 0.05, 1.0, 0.5, 20.0),
    2.0: (4, 0.5, 0.4, 0.15, 1.0, 0.5, 20.0),
    5.0: (10, 0.3, 0.6, 0.30, 0.5, 0.6, 12.0),
    10.0: (20, 0.2, 0.8, 0.50, 0.25, 0.8, 8.0),
}


def test_default_rates_are_the_published_inspection_budgets() -> None:
    assert RATES == (0.5, 1.0, 2.0, 5.0, 10.0)


@pytest.mark.parametrize(
    ("n", "rate", "k"),
    [(200, 0.5, 1), (199, 0.5, 0), (150, 1.0, 1), (190, 2.0, 3), (1000, 0.5, 5), (1_000_000, 1.0, 10_000), (99, 1.0, 0), (0, 10.0, 0), (300, 1.0, 3)],
)
def test_k_is_the_floor_of_n_times_rate(n: int, rate: float, k: int) -> None:
    assert top_k(n, rate) == k == math.floor(round(n * rate, 9) / 100)


@pytest.mark.parametrize("rate", sorted(HAND_COMPUTED))
def test_metrics_at_each_budget_match_hand_computed_values(rate: float) -> None:
    scores, labels, values = ranked_batch()
    m = ranking_metrics(scores, labels, values=values).metrics
    k, precision, recall, value, oracle, norm, lift = HAND_COMPUTED[rate]
    tag = f"{rate:g}"
    assert m[f"k@{tag}"] == k
    assert m[f"precision@{tag}"] == pytest.approx(precision)
    assert m[f"recall@{tag}"] == pytest.approx(recall)
    assert m[f"value@{tag}"] == pytest.approx(value)
    assert m[f"oracle_precision@{tag}"] == pytest.approx(oracle)
    assert m[f"norm_precision@{tag}"] == pytest.approx(norm)
    assert m[f"lift@{tag}"] == pytest.approx(lift)


def test_report_carries_the_base_rate_beside_the_precision() -> None:
    scores, labels, values = ranked_batch()
    report = ranking_metrics(scores, labels, values=values)
    assert (report.n, report.positives) == (200, 5)
    assert report.metrics["base_rate"] == pytest.approx(0.025)
    assert report.metrics["n"] == 200.0 and report.metrics["positives"] == 5.0
    assert report.row("oracle/")["oracle/precision@1"] == pytest.approx(0.5)


def test_metrics_do_not_depend_on_input_order() -> None:
    first = ranking_metrics(*ranked_batch(seed=1)[:2]).metrics
    second = ranking_metrics(*ranked_batch(seed=2)[:2]).metrics
    assert first == second


def test_ties_are_broken_by_the_given_key_ascending_not_by_position() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.5])
    keys = np.array(["MSKU6011672", "TEXU3070079", "CSQU3054383", "GESU3927660"])
    assert ranking_order(scores, keys).tolist() == [1, 2, 3, 0]
    # same items in another input order: the same containers come first
    perm = np.array([3, 0, 2, 1])
    assert keys[perm][ranking_order(scores[perm], keys[perm])].tolist() == ["TEXU3070079", "CSQU3054383", "GESU3927660", "MSKU6011672"]


def test_tie_break_decides_which_tied_item_fills_the_last_slot() -> None:
    # 100 items, k@1 = 1: two share the top score; the illicit one has the smaller key, so it is inspected
    scores = np.zeros(100)
    scores[[10, 20]] = 1.0
    labels = np.zeros(100, dtype=bool)
    labels[20] = True
    keys = np.array([f"K{i:03d}" for i in range(100)])
    keys[20], keys[10] = "A000", "Z999"
    assert ranking_metrics(scores, labels, tiebreak=keys).metrics["precision@1"] == 1.0
    keys[20], keys[10] = "Z999", "A000"
    assert ranking_metrics(scores, labels, tiebreak=keys).metrics["precision@1"] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_scores_are_rejected_before_ranking(bad: float) -> None:
    scores = np.array([0.2, bad, 0.1])
    labels = np.array([True, False, False])
    with pytest.raises(ValueError, match=r"^scores must be finite \(found NaN or infinity\)$"):
        ranking_metrics(scores, labels)
    with pytest.raises(ValueError, match=r"^scores must be finite \(found NaN or infinity\)$"):
        lift_curve(scores, labels)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": np.array([True, False])}, "labels has 2 entries but scores has 3"),
        ({"labels": np.array([True, False, False, True])}, "labels has 4 entries but scores has 3"),
        ({"values": np.array([1.0, 0.0])}, "values has 2 entries but scores has 3"),
        ({"tiebreak": np.array(["A", "B"])}, "tiebreak has 2 entries but scores has 3"),
    ],
)
def test_arrays_of_another_length_than_the_scores_are_rejected(kwargs: dict, message: str) -> None:
    args = {"labels": np.array([True, False, False]), **kwargs}
    with pytest.raises(ValueError, match=f"^{message}$"):
        ranking_metrics(np.array([0.3, 0.2, 0.1]), **args)


def test_pr_auc_and_roc_auc_match_hand_computed_values_and_sklearn() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    labels = np.array([True, False, True, False])
    m = ranking_metrics(scores, labels, probabilities=True).metrics
    # average precision: recall steps of 1/2 at precisions 1 and 2/3
    assert m["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # 3 of the 4 positive-negative pairs are ordered correctly
    assert m["roc_auc"] == pytest.approx(0.75)
    # Brier: mean of (0.1^2, 0.8^2, 0.3^2, 0.6^2)
    assert m["brier"] == pytest.approx((0.01 + 0.64 + 0.09 + 0.36) / 4)

    scores, labels, _ = ranked_batch()
    m = ranking_metrics(scores, labels).metrics
    assert m["pr_auc"] == pytest.approx(average_precision_score(labels, scores))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))


def test_brier_is_only_reported_for_probabilities() -> None:
    scores, labels, _ = ranked_batch()
    assert "brier" not in ranking_metrics(scores, labels).metrics
    assert "brier" in ranking_metrics(scores, labels, probabilities=True).metrics


def test_no_positives_gives_nan_for_undefined_metrics_and_zero_precision() -> None:
    m = ranking_metrics(np.linspace(1, 0, 300), np.zeros(300, dtype=bool), values=np.zeros(300), probabilities=True).metrics
    assert m["base_rate"] == 0.0 and m["precision@1"] == 0.0 and m["k@1"] == 3
    for name in ("recall@1", "norm_precision@1", "lift@1", "value@1", "pr_auc", "roc_auc"):
        assert math.isnan(m[name]), name
    assert m["brier"] == pytest.approx(np.mean(np.linspace(1, 0, 300) ** 2))


def test_budget_below_one_item_gives_nan_not_a_crash() -> None:
    # 150 items: k@0.5 = floor(0.75) = 0
    labels = np.zeros(150, dtype=bool)
    labels[0] = True
    m = ranking_metrics(np.linspace(1, 0, 150), labels, values=labels.astype(float)).metrics
    assert m["k@0.5"] == 0
    for name in ("precision@0.5", "oracle_precision@0.5", "norm_precision@0.5", "lift@0.5", "value@0.5"):
        assert math.isnan(m[name]), name
    assert m["recall@0.5"] == 0.0  # inspecting nothing finds none of the illicit items
    assert m["k@1"] == 1 and m["precision@1"] == 1.0


def test_one_class_only_gives_nan_ranking_free_metrics() -> None:
    m = ranking_metrics(np.linspace(1, 0, 200), np.ones(200, dtype=bool)).metrics
    assert math.isnan(m["pr_auc"]) and math.isnan(m["roc_auc"])
    assert m["precision@1"] == 1.0 and m["oracle_precision@1"] == 1.0 and m["lift@1"] == 1.0


def test_an_empty_batch_gives_nan_not_a_crash() -> None:
    m = ranking_metrics(np.array([]), np.array([], dtype=bool), values=np.array([]), probabilities=True).metrics
    assert m["n"] == 0 and m["positives"] == 0
    assert all(math.isnan(m[name]) for name in ("base_rate", "precision@10", "pr_auc", "roc_auc", "brier"))
    assert reliability_curve(np.array([]), np.array([])).height == 0
    assert lift_curve(np.array([]), np.array([], dtype=bool)).height == 0


def test_reliability_curve_bins_by_quantile_with_mean_prediction_and_observed_rate() -> None:
    p = np.array([0.1] * 5 + [0.9] * 5)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    curve = reliability_curve(p, y, bins=2)
    assert curve.to_dicts() == [
        {"bin": 0, "mean_predicted": pytest.approx(0.1), "observed": pytest.approx(0.2), "n": 5},
        {"bin": 1, "mean_predicted": pytest.approx(0.9), "observed": pytest.approx(0.8), "n": 5},
    ]
    assert curve.schema == pl.Schema({"bin": pl.Int64, "mean_predicted": pl.Float64, "observed": pl.Float64, "n": pl.Int64})


def test_reliability_curve_with_constant_predictions_is_one_bin() -> None:
    curve = reliability_curve(np.full(8, 0.3), np.array([1, 0, 0, 0, 1, 0, 0, 0]))
    assert curve.to_dicts() == [{"bin": 0, "mean_predicted": pytest.approx(0.3), "observed": pytest.approx(0.25), "n": 8}]


def test_lift_curve_is_the_cumulative_share_of_illicit_found() -> None:
    scores, labels, _ = ranked_batch()
    curve = lift_curve(scores, labels, points=200)
    assert curve.height == 200
    found = dict(zip(np.round(curve["share_inspected"].to_numpy() * N).astype(int), curve["share_found"].to_numpy()))
    assert (found[1], found[3], found[6], found[16], found[51], found[200]) == (0.2, 0.4, 0.6, 0.8, 1.0, 1.0)
    assert found[2] == 0.2 and found[50] == 0.8


def _reference_precision(scores: list[float], labels: list[bool], keys: list[str], rate: float) -> float:
    """Precision@rate by sorting (score descending, key ascending) in plain Python."""
    k = math.floor(round(len(scores) * rate, 9) / 100)
    ranked = sorted(zip(scores, keys, labels), key=lambda t: (-t[0], t[1]))
    return sum(label for _, _, label in ranked[:k]) / k if k else float("nan")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.booleans()),
        min_size=1,
        max_size=400,
    ),
    st.randoms(use_true_random=False),
)
def test_precision_matches_a_plain_sort_for_any_batch_and_any_input_order(items, rnd) -> None:  # noqa: ANN001
    scores = [s for s, _ in items]
    labels = [y for _, y in items]
    keys = [f"C{i:05d}" for i in range(len(items))]
    order = list(range(len(items)))
    rnd.shuffle(order)
    shuffled = ranking_metrics(
        np.array([scores[i] for i in order]), np.array([labels[i] for i in order]), tiebreak=np.array([keys[i] for i in order])
    ).metrics
    for rate in RATES:
        expected = _reference_precision(scores, labels, keys, rate)
        got = shuffled[f"precision@{rate:g}"]
        assert (math.isnan(expected) and math.isnan(got)) or got == pytest.approx(expected)
        if not math.isnan(got) and sum(labels):
            assert shuffled[f"norm_precision@{rate:g}"] <= 1.0 + 1e-12


def test_source_hit_rates_count_each_manifest_once_under_its_first_exam() -> None:
    t = "2025-03-0{}T10:00:00+00:00"
    outcomes = pl.DataFrame(
        {
            "manifest_id": ["M1", "M1", "M2", "M3", "M4", "M5", "M6"],
            "inspected_at": [t.format(2), t.format(1), t.format(1), t.format(1), t.format(3), t.format(3), t.format(4)],
            "selection_source": ["MODEL", "RANDOM", "RANDOM", "RULE", "RULE", "OFFICER", "MODEL"],
            "result": ["SEIZURE", "NO_FINDING", "NO_FINDING", "DISCREPANCY", "SEIZURE", "SEIZURE", "NO_FINDING"],
            "quantity_kg": [120.0, None, None, None, 30.5, 2.0, None],
        }
    ).with_columns(pl.col("inspected_at").str.to_datetime(time_zone="UTC"))
    rates = source_hit_rates(outcomes)
    # M1: first exam by the random slice (NII, nothing), then physical (seizure): one RANDOM inspection, seized
    assert rates.to_dicts() == [
        {"selection_source": "MODEL", "inspections": 1, "seizures": 0, "hit_rate": 0.0, "seized_kg": 0.0},
        {"selection_source": "OFFICER", "inspections": 1, "seizures": 1, "hit_rate": 1.0, "seized_kg": 2.0},
        {"selection_source": "RANDOM", "inspections": 2, "seizures": 1, "hit_rate": 0.5, "seized_kg": 120.0},
        {"selection_source": "RULE", "inspections": 2, "seizures": 1, "hit_rate": 0.5, "seized_kg": 30.5},
    ]
    assert source_hit_rates(outcomes.sample(fraction=1.0, shuffle=True, seed=3)).equals(rates)
