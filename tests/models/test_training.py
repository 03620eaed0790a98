"""Specification of training and evaluation on a time split (models.dataset, models.training).

No random row splits: every arrival day belongs to exactly one period, the
periods are disjoint and ordered, and arrivals before ``train_start`` only
warm up the entity history. Model and baselines are evaluated on the same
test rows.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.history import History
from models.dataset import TimeSplit
from models.metrics import ranking_metrics
from models.training import STREAMS, TrainConfig, _sample_weights, evaluate_scores, labelled_frame

sys.path.insert(0, str(Path(__file__).resolve().parent))

D = date(2025, 3, 1)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# ---------------------------------------------------------------- TimeSplit


@pytest.mark.parametrize(
    "dates",
    [
        (D, D, D + timedelta(1), D + timedelta(2)),
        (D, D + timedelta(2), D + timedelta(1), D + timedelta(3)),
        (D, D + timedelta(1), D + timedelta(2), D + timedelta(2)),
        (D + timedelta(1), D, D + timedelta(2), D + timedelta(3)),
    ],
)
def test_split_dates_must_strictly_increase(dates) -> None:  # noqa: ANN001
    a, b, c, d = dates
    message = rf"^split dates must increase: train_start {a} < train_end {b} < valid_end {c} < test_end {d}$"
    with pytest.raises(ValueError, match=message):
        TimeSplit(*dates)


def test_default_split_warms_up_then_takes_65_15_20_percent_including_the_last_day() -> None:
    split = TimeSplit.default_for(date(2025, 1, 1), date(2025, 4, 10), warmup_days=30)
    # 100 days; warm-up to 31 Jan; 70 days from 31 Jan to 10 Apr inclusive: 45 train, 10 validation, 15 test
    assert split == TimeSplit(date(2025, 1, 31), date(2025, 3, 17), date(2025, 3, 27), date(2025, 4, 11))
    assert split.as_dict() == {"train_start": "2025-01-31", "train_end": "2025-03-17", "valid_end": "2025-03-27", "test_end": "2025-04-11"}


def test_default_split_needs_ten_days_after_the_warm_up() -> None:
    with pytest.raises(ValueError, match=r"^need at least 40 days of arrivals to split, have 39$"):
        TimeSplit.default_for(date(2025, 1, 1), date(2025, 2, 8), warmup_days=30)
    assert TimeSplit.default_for(date(2025, 1, 1), date(2025, 2, 9), warmup_days=30).test_end == date(2025, 2, 10)


def test_period_boundaries_are_inclusive_at_the_start_and_exclusive_at_the_end() -> None:
    split = TimeSplit(D, D + timedelta(10), D + timedelta(15), D + timedelta(20))
    tick = timedelta(microseconds=1)
    times = [at(D) - tick, at(D), at(D + timedelta(10)) - tick, at(D + timedelta(10)), at(D + timedelta(15)), at(D + timedelta(20)) - tick, at(D + timedelta(20))]
    periods = pl.DataFrame({"decision_at": times}).select(split.period_of())["period"].to_list()
    assert periods == [None, "train", "train", "valid", "test", "test", None]


# ---------------------------------------------------------------- rows on the small lake


@pytest.fixture(scope="module")
def rows(small_world, split) -> pl.DataFrame:  # noqa: ANN001
    return labelled_frame(History.from_lake(small_world.lake), split, oracle=small_world.oracle)


def test_arrivals_before_train_start_are_not_training_rows(rows: pl.DataFrame, split: TimeSplit, small_world) -> None:  # noqa: ANN001
    assert rows["decision_at"].min() >= at(split.train_start)
    assert rows["decision_at"].max() < at(split.test_end)
    history = History.from_lake(small_world.lake)
    earlier = history.manifests.filter(pl.col("eta") < at(split.train_start)).select(pl.len()).collect().item()
    assert earlier > 1000  # the warm-up exists, it just never trains
    assert rows["period"].null_count() == 0


def test_periods_are_disjoint_contiguous_and_ordered(rows: pl.DataFrame, split: TimeSplit) -> None:
    bounds = rows.group_by("period").agg(pl.col("decision_at").min().alias("lo"), pl.col("decision_at").max().alias("hi"), pl.len())
    b = {r["period"]: r for r in bounds.iter_rows(named=True)}
    assert set(b) == {"train", "valid", "test"}
    assert at(split.train_start) <= b["train"]["lo"] and b["train"]["hi"] < at(split.train_end) <= b["valid"]["lo"]
    assert b["valid"]["hi"] < at(split.valid_end) <= b["test"]["lo"] and b["test"]["hi"] < at(split.test_end)
    assert rows.select("manifest_id", "port", "direction").is_unique().all()  # one row per served candidate


def test_no_random_row_split_every_arrival_day_is_in_one_period(rows: pl.DataFrame) -> None:
    per_day = rows.group_by(pl.col("decision_at").dt.date()).agg(pl.col("period").n_unique().alias("periods"))
    assert per_day["periods"].max() == 1
    assert per_day.height >= 60


def test_labels_come_only_from_inspections(rows: pl.DataFrame) -> None:
    assert rows.filter(~pl.col("inspected"))["label"].null_count() == rows.filter(~pl.col("inspected")).height
    assert rows.filter(pl.col("inspected"))["label"].null_count() == 0
    assert rows.filter(pl.col("random_slice") & ~pl.col("inspected")).height == 0
    # the oracle knows more contraband than was seized: it is an evaluation column only
    assert rows["illicit"].sum() > rows["label"].fill_null(0).sum()


def test_uninspected_rows_are_light_negatives_and_random_slice_rows_weigh_more() -> None:
    frame = pl.DataFrame(
        {"inspected": [False, True, True, True], "label": [None, 0, 1, 1], "random_slice": [False, False, False, True]},
        schema_overrides={"label": pl.Int8},
    )
    config = TrainConfig(split=TimeSplit(D, D + timedelta(1), D + timedelta(2), D + timedelta(3)), unlabelled_weight=0.05, random_weight=5.0)
    labels, weights = _sample_weights(frame, config)
    assert labels.tolist() == [0.0, 0.0, 1.0, 1.0]
    assert weights.tolist() == [0.05, 1.0, 1.0, 5.0]


# ---------------------------------------------------------------- train_model


def test_model_trains_on_the_train_period_and_stops_early_on_the_validation_period(trained, rows: pl.DataFrame) -> None:  # noqa: ANN001
    periods = dict(rows.group_by("period").len().iter_rows())
    assert trained.counts["train_rows"] == periods["train"]
    assert trained.counts["valid_rows"] == periods["valid"]
    assert trained.counts["test_rows"] == periods["test"]
    train = rows.filter(pl.col("period") == "train")
    assert trained.counts["train_inspected"] == train["inspected"].sum()
    assert trained.counts["train_seizures"] == train["label"].fill_null(0).sum() > 0
    assert trained.model.booster_.num_trees() == trained.model.best_iteration_ < trained.model.n_estimators


def test_feature_statistics_are_fitted_on_the_training_period_only(trained, small_world, split: TimeSplit) -> None:  # noqa: ANN001
    outcomes = History.from_lake(small_world.lake).outcomes.collect()
    before = outcomes.filter(pl.col("inspected_at") < at(split.train_end))
    assert trained.stats.fitted_on["manifests"] == trained.counts["train_rows"]
    assert trained.stats.fitted_on["outcomes"] == before.height < outcomes.height


def test_test_rows_are_the_test_period_with_scores_aligned(trained, split: TimeSplit) -> None:  # noqa: ANN001
    test = trained.test_rows
    assert set(test["period"].unique()) == {"test"}
    assert test["decision_at"].min() >= at(split.valid_end) and test["decision_at"].max() < at(split.test_end)
    assert len(trained.test_scores) == test.height
    assert np.array_equal(trained.test_scores, trained.model.predict_proba(test)[:, 1])


def test_model_and_baselines_are_evaluated_on_every_stream_of_the_same_rows(trained) -> None:  # noqa: ANN001
    reports = trained.evaluation.reports
    assert set(reports) == set(STREAMS) == {"labelled", "random_slice", "oracle"}
    for stream, scorers in reports.items():
        assert set(scorers) == {"model", "rules", "random", "importer_findings"}, stream
        assert len({r.n for r in scorers.values()}) == 1 and len({r.positives for r in scorers.values()}) == 1
    test = trained.test_rows
    assert reports["oracle"]["model"].n == test.height
    assert reports["labelled"]["model"].n == test["inspected"].sum()
    assert reports["random_slice"]["model"].n == test["random_slice"].sum()
    assert "brier" in reports["labelled"]["model"].metrics and "brier" not in reports["labelled"]["rules"].metrics


def test_the_oracle_stream_counts_all_contraband_in_the_test_period(trained) -> None:  # noqa: ANN001
    test = trained.test_rows
    oracle = trained.evaluation.reports["oracle"]["model"]
    expected = ranking_metrics(trained.test_scores, test["illicit"].to_numpy(), values=test["oracle_kg"].to_numpy(), tiebreak=test["manifest_id"].to_numpy(), probabilities=True)
    assert oracle.metrics == expected.metrics
    assert oracle.positives == test["illicit"].sum() > trained.evaluation.reports["labelled"]["model"].positives


def test_the_model_ranks_contraband_better_than_random_selection(trained) -> None:  # noqa: ANN001
    oracle = trained.evaluation.reports["oracle"]
    assert oracle["model"].metrics["pr_auc"] > 5 * oracle["random"].metrics["pr_auc"]
    assert oracle["model"].metrics["recall@10"] > oracle["random"].metrics["recall@10"]


def test_headline_flattens_stream_scorer_and_metric_for_tracking(trained) -> None:  # noqa: ANN001
    headline = trained.evaluation.headline()
    assert headline["oracle/model/precision_at_1"] == trained.evaluation.reports["oracle"]["model"].metrics["precision@1"]
    assert "labelled/rules/pr_auc" in headline and "random_slice/importer_findings/recall_at_5" in headline
    assert not any("@" in name for name in headline)
    table = trained.evaluation.table()
    assert table.height == 12 and table.columns[:2] == ["stream", "scorer"]


def test_hit_rates_per_source_cover_the_inspections_of_test_period_arrivals(trained) -> None:  # noqa: ANN001
    rates = trained.source_hit_rates
    assert set(rates["selection_source"].to_list()) <= {"WATCHLIST", "RULE", "MODEL", "RANDOM", "OFFICER"}
    assert rates["inspections"].sum() == trained.counts["test_inspected"]
    assert rates["seizures"].sum() == trained.counts["test_seizures"]
    metrics = trained.source_metrics()
    for row in rates.iter_rows(named=True):
        assert metrics[f"source/{row['selection_source']}/hit_rate"] == row["seizures"] / row["inspections"]


def test_streams_without_rows_are_left_out_of_the_evaluation() -> None:
    rows = pl.DataFrame(
        {
            "manifest_id": ["M1", "M2", "M3", "M4"],
            "inspected": [True, True, False, False],
            "random_slice": [False, False, False, False],
            "label": [1, 0, None, None],
            "seized_kg": [12.0, 0.0, 0.0, 0.0],
        }
    )
    evaluation = evaluate_scores(rows, {"model": np.array([0.9, 0.1, 0.5, 0.2])})
    assert set(evaluation.reports) == {"labelled"}
    assert evaluation.reports["labelled"]["model"].metrics["pr_auc"] == 1.0


def test_features_of_the_test_rows_are_the_same_in_every_build(trained, rows: pl.DataFrame, small_world) -> None:  # noqa: ANN001
    from features.pipeline import build_features
    from features.registry import feature_columns

    history = History.from_lake(small_world.lake)
    test = rows.filter(pl.col("period") == "test").drop("period", "illicit", "oracle_kg")
    first = build_features(test, history, trained.stats)
    second = build_features(test, history, trained.stats)
    assert first.equals(second)
    # and the same as in training (up to float rounding): a row's features do not depend on the other rows of its batch
    np.testing.assert_allclose(
        first.select(feature_columns()).to_numpy(), trained.test_rows.select(feature_columns()).to_numpy(), rtol=1e-9, atol=1e-9
    )
