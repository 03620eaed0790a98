"""Specification of the drift scenarios benchmark (targeting.evaluation.drift) and ``targeting drift``."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.candidates import decision_time
from features.history import History
from features.registry import computed_columns, feature_columns
from targeting.cli import _register, app
from targeting.evaluation.drift import DriftConfig, DriftError, aggregate, check_targets, parse_scenarios, resolve_features, baseline_features
from targeting.evaluation.drift.frozen import train_frozen, training_rows, training_set
from targeting.evaluation.drift.metrics import ALL, cumulative_recall, daily_top, days_to_first, selection_metrics, window_metrics
from targeting.evaluation.drift.report import cell
from targeting.sim.world import WorldConfig, simulate_world

START = date(2025, 1, 1)
CUTOFF_DAY = 40


def _frame(scores, illicit, pattern, day=None):
    n = len(scores)
    return pl.DataFrame(
        {
            "day": day if day is not None else [0] * n,
            "port": ["NLRTM"] * n,
            "direction": ["IMPORT"] * n,
            "manifest_id": [f"M{i:03d}" for i in range(n)],
            "illicit": illicit,
            "pattern": pattern,
            "score": [float(s) for s in scores],
        },
        schema_overrides={"pattern": pl.String},
    )


# --------------------------------------------------------------------------- metrics on hand-built frames


def test_window_recall_of_a_pattern_counts_its_rows_in_the_top_k_of_all_rows():
    # 200 rows, k@1 = 2, k@5 = 10; the new pattern has 3 rows ranked 1st, 5th and 50th
    scores = np.linspace(1.0, 0.0, 200)
    illicit = [False] * 200
    pattern = [None] * 200
    for i, p in ((0, "s:new"), (4, "s:new"), (49, "s:new"), (1, "old")):
        illicit[i], pattern[i] = True, p
    rows = {(r["pattern"], r["metric"]): r["value"] for r in window_metrics(_frame(scores, illicit, pattern), [ALL, "s:new", "old", "absent"])}
    assert rows[("s:new", "rows")] == 3
    assert rows[("s:new", "recall@1")] == pytest.approx(1 / 3)
    assert rows[("s:new", "recall@5")] == pytest.approx(2 / 3)
    assert rows[("old", "recall@1")] == 1.0
    assert rows[(ALL, "recall@1")] == pytest.approx(2 / 4)
    assert rows[(ALL, "norm_precision@1")] == 1.0  # 2 hits in 2 slots: no list of 2 could do better
    assert rows[(ALL, "norm_precision@5")] == pytest.approx((3 / 10) / (4 / 10))
    assert rows[("absent", "rows")] == 0 and ("absent", "recall@1") not in rows


def test_daily_top_lists_one_percent_of_each_days_candidates_by_score_ties_by_manifest():
    frame = _frame([0.5] * 100 + list(np.linspace(0, 1, 200)), [False] * 300, [None] * 300, day=[0] * 100 + [1] * 200)
    listed = daily_top(frame, 1.0).filter(pl.col("selected"))
    assert listed.filter(pl.col("day") == 0).get_column("manifest_id").to_list() == ["M000"]  # all tied: the smallest id
    assert sorted(listed.filter(pl.col("day") == 1).get_column("manifest_id").to_list()) == ["M298", "M299"]


def test_selection_metrics_recall_per_pattern_and_normalised_precision_of_the_list():
    frame = _frame([0] * 10, [True, True, False, False, True] + [False] * 5, ["a", "b", None, None, "a"] + [None] * 5).with_columns(
        pl.Series("selected", [True, False, True, False, False] + [False] * 5)
    )
    rows = {(r["pattern"], r["metric"]): r["value"] for r in selection_metrics(frame, [ALL, "a", "b"])}
    assert rows[("a", "list_recall")] == 0.5 and rows[("b", "list_recall")] == 0.0
    assert rows[(ALL, "list_recall")] == pytest.approx(1 / 3)
    assert rows[(ALL, "list_norm_precision")] == pytest.approx(0.5)  # 1 hit in 2 slots; the oracle fills both


def test_days_to_first_and_cumulative_recall_count_from_the_change_day():
    frame = _frame([0] * 5, [True] * 5, ["n", "n", "n", "n", "old"], day=[9, 10, 12, 12, 10]).with_columns(
        pl.Series("selected", [True, False, True, False, True])
    )
    assert days_to_first(frame, "n", 10, column="selected") == 2  # the day-9 hit is before the change
    assert math.isnan(days_to_first(frame, "missing", 10, column="selected"))
    assert cumulative_recall(frame, "n", 10, 4) == [0.0, 0.0, 1 / 3, 1 / 3]


def test_aggregate_over_seeds_gives_mean_min_max_and_counts_never_found():
    records = pl.DataFrame(
        {
            "scenario": ["s"] * 4,
            "seed": [1, 2, 3, 4],
            "mode": ["replay"] * 4,
            "phase": ["after"] * 4,
            "pattern": ["s:new"] * 4,
            "metric": ["days_to_first"] * 4,
            "value": [2.0, 6.0, float("nan"), 4.0],
        }
    )
    row = aggregate(records).row(0, named=True)
    assert (row["mean"], row["min"], row["max"], row["seeds"], row["missing"]) == (4.0, 2.0, 6.0, 3, 1)
    assert cell(row) == "4.00 (2.00-6.00), never in 1"


def test_targets_recall_and_precision_drop_are_checked_per_scenario():
    def rec(phase, pattern, metric, value):
        return {"scenario": "s", "seed": 1, "mode": "frozen", "phase": phase, "pattern": pattern, "metric": metric, "value": value}

    agg = aggregate(pl.DataFrame([rec("after", "s:new", "recall@1", 0.4), rec("before", ALL, "norm_precision@1", 0.8), rec("after", ALL, "norm_precision@1", 0.7)]))
    recall, precision = check_targets(agg, ["s"])
    assert recall.met is False and recall.value == pytest.approx(0.4)
    assert precision.met is True and precision.threshold == pytest.approx(0.65)


# --------------------------------------------------------------------------- configuration


def test_feature_specs_name_families_features_and_the_baseline():
    everything = resolve_features("all")
    assert resolve_features(None) == resolve_features("default") == tuple(feature_columns())
    assert set(resolve_features("default")) < set(everything) == set(computed_columns())
    without_entity = resolve_features("-entity")
    assert 0 < len(without_entity) < len(everything) and "reefer" in without_entity
    assert set(resolve_features("baseline")) == set(baseline_features())
    assert resolve_features("manifest,-reefer") == tuple(c for c in resolve_features("manifest") if c != "reefer")
    with pytest.raises(DriftError, match="unknown feature or feature family 'no_such_feature'"):
        resolve_features("all,-no_such_feature")


def test_scenarios_all_ends_with_the_ordinary_world_and_unknown_names_are_refused():
    assert parse_scenarios("all")[-1] == "ordinary"
    assert parse_scenarios("ordinary") == ("ordinary",)
    with pytest.raises(DriftError, match="unknown scenario"):
        parse_scenarios("ordinary,no-such-scenario")
    with pytest.raises(DriftError, match="too little history"):
        DriftConfig(change_day=40)


# --------------------------------------------------------------------------- the frozen model's leakage canary


@pytest.fixture(scope="module")
def tiny_world():
    tables = simulate_world(WorldConfig(seed=3, days=50, ports=("NLRTM",), containers_per_day=300, illicit_rate=0.03))
    return tables, History.from_frames(tables.manifests, tables.events, tables.outcomes, tables.alerts)


def _late_seizures(history: History, cutoff) -> pl.DataFrame:
    """A seizure recorded on the cut-off instant for every training row: perfectly predictive, and too late."""
    rows = training_rows(history, first=START + timedelta(days=10), cutoff_day=START + timedelta(days=CUTOFF_DAY))
    outcomes = history.outcomes.collect()
    return rows.select("manifest_id", "container_number", "port", "direction").with_columns(
        pl.lit(cutoff).cast(outcomes.schema["inspected_at"]).alias("inspected_at"),
        pl.lit("PHYSICAL").alias("exam_type"),
        pl.lit("SEIZURE").alias("result"),
        pl.lit("COCAINE").alias("seizure_category"),
        pl.lit(100.0).alias("quantity_kg"),
        pl.lit("IN CARGO").alias("concealment_method"),
        pl.lit("INTACT").alias("seal_status"),
        pl.lit("canary").alias("examiner"),
        pl.lit("RANDOM").alias("selection_source"),
    ).select(outcomes.columns)


def test_frozen_model_sees_no_label_from_on_or_after_the_change_day(tiny_world):
    _, history = tiny_world
    cutoff = decision_time(START + timedelta(days=CUTOFF_DAY))
    late = _late_seizures(history, cutoff)
    leaky = History.from_frames(history.manifests, history.events, pl.concat([history.outcomes.collect(), late]), history.alerts)
    window = dict(first=START + timedelta(days=10), cutoff_day=START + timedelta(days=CUTOFF_DAY))
    rows, stats, feats = training_set(history, **window)
    leaky_rows, leaky_stats, leaky_feats = training_set(leaky, **window)
    assert rows.filter(pl.col("inspected")).get_column("labelled_at").max() < cutoff
    assert rows.get_column("label").sum() > 0
    assert_frame_equal(leaky_rows, rows)  # same rows, same labels: every late seizure is ignored
    assert leaky_stats.fitted_on == stats.fitted_on and leaky_stats.prior_finding_rate == stats.prior_finding_rate
    assert_frame_equal(leaky_feats, feats, check_exact=False, rel_tol=1e-9)
    model = train_frozen(leaky, **window, features=resolve_features("all"), seed=3, n_estimators=10)
    assert model.latest_label_at < cutoff and model.seizures == int(rows.filter(pl.col("inspected")).get_column("label").sum())


def test_frozen_model_learns_only_the_chosen_feature_subset(tiny_world):
    _, history = tiny_world
    subset = resolve_features("manifest,routing")
    model = train_frozen(history, first=START + timedelta(days=10), cutoff_day=START + timedelta(days=CUTOFF_DAY), features=subset, seed=3, n_estimators=10)
    assert tuple(model.booster.feature_name()) == subset


# --------------------------------------------------------------------------- the command


def test_drift_command_runs_a_scenario_end_to_end_and_writes_tables_and_plot(tmp_path):
    # the frozen model only: the replay (the backtest, ~1 s of CPU per simulated day) is exercised by the benchmark runs
    _register()
    out = tmp_path / "drift"
    result = CliRunner().invoke(
        app,
        [
            "drift", "--scenarios", "moved-origin-cover", "--seeds", "1", "--containers-per-day", "400", "--no-replay",
            "--change-day", "45", "--window-days", "8", "--warmup-days", "10", "--train-days", "25", "--legit-churn", "static", "--out", str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    records = pl.read_csv(out / "records.csv")
    assert set(records.get_column("mode").unique()) == {"frozen"}
    assert set(records.get_column("phase").unique()) == {"before", "after"}
    new = records.filter(pl.col("pattern") == "moved-origin-cover:new")
    assert new.filter(pl.col("metric") == "rows").get_column("value").sum() > 0  # the scenario's new pattern arrives after the change
    assert new.filter(pl.col("phase") == "before").get_column("value").to_list() == [0.0]  # and never before it
    assert (out / "new_pattern_recall.png").stat().st_size > 1000
    assert (out / "features.txt").read_text().split() == list(resolve_features("default"))
    assert "| moved-origin-cover |" in (out / "summary.md").read_text()


def test_drift_command_refuses_an_unknown_feature_with_exit_2(tmp_path):
    _register()
    result = CliRunner().invoke(app, ["drift", "--scenarios", "ordinary", "--features", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown feature" in result.output
