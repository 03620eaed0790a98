"""Specification of calibrated risk (``models.calibration``): monotone calibrators, probabilities that match observed rates, bands."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibration import (
    BANDS,
    METHODS,
    NOT_RATED,
    RISK_BANDS,
    CalibrationError,
    Calibrator,
    band_hit_rates,
    calibration_measures,
    chance_text,
    choose_calibrator,
    expected_calibration_error,
    fit_calibrator,
    reliability_table,
    risk_band,
)


def scored_exams(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that rank well but are three times too low: the truth is ``min(3 * score, 1)``."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(0.6, 25.0, n)
    labels = rng.random(n) < np.minimum(3.0 * scores, 1.0)
    return scores, labels.astype(float)


@pytest.mark.parametrize("method", METHODS)
def test_every_calibrator_is_monotone_in_the_score(method: str) -> None:
    scores, labels = scored_exams(4000, seed=1)
    calibrator = fit_calibrator(scores, labels, method, fitted_on="test")
    grid = np.concatenate([[0.0], np.sort(np.random.default_rng(2).random(2000)), [1.0]])
    probabilities = calibrator.predict(grid)
    assert np.all(np.diff(probabilities) >= 0)
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0


@pytest.mark.parametrize("method", METHODS)
def test_calibrated_mean_matches_the_observed_rate_on_the_fitted_exams(method: str) -> None:
    scores, labels = scored_exams(4000, seed=3)
    calibrator = fit_calibrator(scores, labels, method, fitted_on="test")
    assert calibrator.predict(scores).mean() == pytest.approx(labels.mean(), abs=0.002)


@pytest.mark.parametrize("method", METHODS)
def test_calibrated_mean_matches_the_observed_rate_on_held_out_exams_within_tolerance(method: str) -> None:
    fit_scores, fit_labels = scored_exams(6000, seed=4)
    held_scores, held_labels = scored_exams(6000, seed=5)
    calibrator = fit_calibrator(fit_scores, fit_labels, method, fitted_on="test")
    observed = held_labels.mean()
    assert abs(held_scores.mean() - observed) > 0.03  # the raw score is far off ...
    assert calibrator.predict(held_scores).mean() == pytest.approx(observed, abs=0.01)  # ... the calibrated one is not
    assert expected_calibration_error(calibrator.predict(held_scores), held_labels) < expected_calibration_error(held_scores, held_labels) / 2


def test_the_method_with_the_lowest_held_out_brier_score_is_chosen_and_every_figure_is_kept() -> None:
    fit_scores, fit_labels = scored_exams(5000, seed=6)
    held_scores, held_labels = scored_exams(5000, seed=7)
    chosen, figures = choose_calibrator(fit_scores, fit_labels, held_scores, held_labels, fitted_on="validation period")
    assert set(figures) == {"uncalibrated", *METHODS}
    assert figures[chosen.method]["brier"] == min(figures[m]["brier"] for m in METHODS)
    assert figures[chosen.method]["brier"] < figures["uncalibrated"]["brier"]
    assert chosen.measures["chosen"] == chosen.method and chosen.fitted_on == "validation period"
    assert (chosen.rows, chosen.positives) == (5000, int(fit_labels.sum()))


def test_a_calibrator_round_trips_through_json_and_predicts_identically() -> None:
    scores, labels = scored_exams(3000, seed=8)
    for method in METHODS:
        calibrator = fit_calibrator(scores, labels, method, fitted_on="test")
        again = Calibrator.from_json(calibrator.to_json())
        assert again == calibrator and again.to_json() == calibrator.to_json()
        assert np.array_equal(again.predict(scores), calibrator.predict(scores))


def test_a_calibrator_is_refused_without_seizures_or_with_a_decreasing_map() -> None:
    with pytest.raises(CalibrationError, match="calibration needs seizures and clean exams among the held-out rows \\(3 rows, 0 seizures\\)"):
        fit_calibrator(np.array([0.1, 0.2, 0.3]), np.zeros(3), "platt", fitted_on="test")
    with pytest.raises(CalibrationError, match="a Platt calibrator needs a positive slope"):
        Calibrator("platt", {"a": -1.0, "b": 0.0}, "test", 10, 1)
    with pytest.raises(CalibrationError, match="isotonic knots must be"):
        Calibrator("isotonic", {"x": [0.0, 0.5], "y": [0.3, 0.1]}, "test", 10, 1)
    with pytest.raises(CalibrationError, match="unknown calibration method 'magic'"):
        Calibrator.from_json('{"method": "magic", "params": {}, "fitted_on": "x", "rows": 1, "positives": 1}')
    with pytest.raises(ValueError, match="scores must be finite"):
        fit_calibrator(*scored_exams(500, seed=9), "shift", fitted_on="test").predict(np.array([np.nan]))


def test_bands_follow_the_documented_thresholds_and_no_probability_is_not_rated() -> None:
    assert [band for band, _ in RISK_BANDS] == ["VERY_HIGH", "HIGH", "MEDIUM", "LOW"]
    assert [risk_band(p) for p in (0.0, 0.0099, 0.01, 0.0499, 0.05, 0.1999, 0.2, 1.0)] == [
        "LOW", "LOW", "MEDIUM", "MEDIUM", "HIGH", "HIGH", "VERY_HIGH", "VERY_HIGH"
    ]
    assert risk_band(None) == NOT_RATED
    with pytest.raises(ValueError, match="a calibrated probability must be in \\[0, 1\\], got 1.5"):
        risk_band(1.5)
    assert [chance_text(p) for p in (0.31, 0.052, 0.0004, None)] == ["31%", "5.2%", "<0.1%", ""]


def test_band_hit_rates_count_every_band_and_not_rated_lists_count_only_not_rated() -> None:
    probabilities = np.array([0.3, 0.25, 0.07, 0.02, 0.001, 0.002])
    labels = np.array([1, 0, 1, 0, 0, 0])
    table = band_hit_rates(probabilities, labels)
    assert table["band"].to_list() == list(BANDS)
    assert table["rows"].to_list() == [2, 1, 1, 2, 0]
    assert table["hit_rate"].to_list()[:4] == [0.5, 1.0, 0.0, 0.0]
    unrated = band_hit_rates(None, labels)
    assert unrated.filter(unrated["band"] == NOT_RATED)["rows"].item() == 6 and unrated["rows"].sum() == 6


def test_reliability_table_has_quantile_bins_with_counts_and_measures_are_proper() -> None:
    scores, labels = scored_exams(6000, seed=10)
    table = reliability_table(scores, labels, bins=12)
    assert table.height == 12 and table["n"].sum() == 6000 and table["positives"].sum() == labels.sum()
    assert table["n"].min() >= 6000 // 12 - 1
    perfect = calibration_measures(np.minimum(3.0 * scores, 1.0), labels)
    raw = calibration_measures(scores, labels)
    assert perfect["brier"] < raw["brier"] and perfect["ece"] < raw["ece"]
    assert raw["n"] == 6000 and raw["observed_rate"] == pytest.approx(labels.mean())


def test_an_isotonic_step_made_of_one_seizure_never_claims_a_certain_finding() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(0.0, 0.5, 3000)
    scores = np.append(base, 0.99)
    labels = np.append((rng.uniform(size=3000) < base * 0.02).astype(float), 1.0)  # the top score: one exam, one seizure
    calibrator = fit_calibrator(scores, labels, "isotonic", fitted_on="test")
    top = float(calibrator.predict(np.array([0.99]))[0])
    assert 0.2 < top < 0.5  # (1 + 2 x rate) / (1 + 2): a third, not 100 %
    assert np.all(np.diff(calibrator.predict(np.sort(scores))) >= 0)
    assert abs(calibrator.predict(scores).mean() - labels.mean()) < 0.1 * labels.mean()
