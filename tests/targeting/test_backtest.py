"""Specification of the time-replay backtest (targeting.evaluation.backtest) and ``targeting backtest``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from features.registry import computed_columns
from targeting.evaluation.backtest import (
    DEFAULT_STRATEGIES,
    BacktestConfig,
    BacktestError,
    Strategy,
    capacity_for,
    log_to_mlflow,
    parse_strategies,
    parse_strategy,
    plan_port_selection,
    pps_inclusion,
    reviewed_alerts,
    run_backtest,
    summary_table,
    systematic_sample,
    training_frame,
    ucb_weights,
    unlabelled_sample,
    write_outputs,
)
from targeting.cli import _register, app
from targeting.cli.backtest import DEFAULT_STRATEGIES as CLI_DEFAULT_STRATEGIES
from targeting.policy import exploration_slots

UTC = timezone.utc
PORT = "NLRTM"
TINY = BacktestConfig(
    days=28,
    containers_per_day=200,
    warmup_days=14,
    capacity_share=0.03,
    illicit_rate=0.012,  # a richer world than the default 0.4 %, so the first model has seizures to learn from at day 14
    unlabelled_sample=1.0,  # keep every uninspected candidate, so the no-peeking checks see every illicit one
    n_estimators=20,
    num_leaves=15,
    directions=("IMPORT",),  # the import replay (every direction: tests/targeting/test_backtest_directions.py)
)
STRATEGIES = "rules,random,model,model+20,ucb"
_register()


@pytest.fixture(scope="module")
def tiny():
    """One seed, five strategies, 28 days of ~200 arrivals at one port (the first model at day 14)."""
    return run_backtest(TINY, STRATEGIES, seeds=(7,))


# --------------------------------------------------------------------------- strategy names


def test_strategy_names_parse_to_their_kind_and_exploration_share() -> None:
    assert parse_strategy("rules") == Strategy("rules", "rules", 0.0)
    assert parse_strategy("random") == Strategy("random", "random", 1.0)
    assert parse_strategy("model") == Strategy("model", "model", 0.0)
    assert parse_strategy("model+5") == Strategy("model+5", "model", 0.05)
    assert parse_strategy(" UCB ") == Strategy("ucb", "ucb", 0.10)
    assert parse_strategy("ucb+20") == Strategy("ucb+20", "ucb", 0.20)
    assert [s.name for s in parse_strategies(DEFAULT_STRATEGIES)] == ["rules", "random", "model", "model+5", "model+10", "model+20", "ucb"]
    assert CLI_DEFAULT_STRATEGIES == DEFAULT_STRATEGIES


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("greedy", "unknown strategy 'greedy'"),
        ("model+0", "must be in \\(0, 100\\]"),
        ("model+150", "must be in \\(0, 100\\]"),
        ("rules,model,rules", "strategy listed twice: rules"),
        ("", "give at least one strategy"),
    ],
)
def test_bad_strategy_lists_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(BacktestError, match=message):
        parse_strategies(text)


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(BacktestError, match="capacity_share must be in"):
        BacktestConfig(capacity_share=0.0)
    with pytest.raises(BacktestError, match="retrain_every must be a positive integer"):
        BacktestConfig(retrain_every=0)
    with pytest.raises(BacktestError, match="alert_days must be a positive integer or None"):
        BacktestConfig(alert_days=0)
    with pytest.raises(ValueError, match="unknown port"):
        BacktestConfig(ports=("XXABC",))
    assert BacktestConfig(warmup_days=60, period_days=7).model_start == 63


# --------------------------------------------------------------------------- small pure functions


def test_capacity_is_the_share_of_arrivals_rounded_half_up_and_at_least_one() -> None:
    assert [capacity_for(n, 0.01) for n in (0, 1, 49, 50, 149, 150, 2000, 5049)] == [0, 1, 1, 1, 1, 2, 20, 50]


def test_rules_strategy_counts_slots_watchlist_then_random_slice_then_rule_hits_then_random() -> None:
    ids = [f"M{i:03d}" for i in range(40)]
    candidates = pl.DataFrame({"manifest_id": ids, "container_number": [f"C{i:03d}" for i in range(40)]})
    alerts = pl.DataFrame(
        {"manifest_id": ids[:2], "alert_count": [1, 1], "alert_max_severity": [3, 3], "alert_reasons": [["a"], ["b"]], "alert_severities": [[3], [3]]}
    )
    rules = pl.DataFrame({"manifest_id": ids[2:12], "rule_codes": [["R"]] * 10, "rule_reasons": [["r"]] * 10, "rule_score": [1.0] * 10})
    config = BacktestConfig(warmup_random_share=0.25)
    for capacity, expected in ((8, {"WATCHLIST": 2, "RULE": 4, "RANDOM": 2}), (20, {"WATCHLIST": 2, "RULE": 10, "RANDOM": 8})):
        rows = plan_port_selection(
            Strategy("model", "model", 0.0), candidates, None, alert_hits=alerts, rule_hits=rules, port="NLRTM",
            list_date=date(2025, 3, 1), capacity=capacity, seed=3, config=config, warmup=True,
        )
        assert rows.height == capacity and dict(rows.group_by("source").len().iter_rows()) == expected


def test_pps_inclusion_is_proportional_capped_at_one_and_sums_to_the_sample_size() -> None:
    pi = pps_inclusion(np.array([1.0, 1.0, 2.0, 8.0, 0.0]), 2)
    assert pi.tolist() == [0.25, 0.25, 0.5, 1.0, 0.0]
    weights = np.random.default_rng(1).lognormal(0, 2, 500)
    pi = pps_inclusion(weights, 40)
    assert pi.sum() == pytest.approx(40) and pi.max() <= 1.0
    free = pi < 1.0
    assert np.allclose(pi[free] / weights[free], (pi[free] / weights[free])[0])
    with pytest.raises(BacktestError, match="cannot sample 3 items from 2"):
        pps_inclusion(np.array([1.0, 0.0, 2.0]), 3)


def test_systematic_sample_draws_distinct_items_with_exactly_the_given_probabilities() -> None:
    pi = pps_inclusion(np.array([5.0, 1.0, 1.0, 2.0, 0.5, 0.5, 3.0, 1.0]), 3)
    rng = np.random.default_rng(0)
    counts = np.zeros(len(pi))
    for _ in range(20_000):
        picked = systematic_sample(pi, rng)
        assert len(picked) == 3 == len(set(picked.tolist()))
        counts[picked] += 1
    assert np.allclose(counts / 20_000, pi, atol=0.015)


def test_ucb_weights_favour_contexts_the_unit_rarely_inspected() -> None:
    w = ucb_weights(np.array([0.01, 0.01, 0.10]), np.array([0, 400, 400]), prior_rate=0.05, kappa=1.0)
    assert w[0] > w[2] > w[1] > 0.01
    assert w[0] == pytest.approx(0.01 + np.sqrt(0.05 * 0.95))
    assert ucb_weights(np.array([0.2]), np.array([5]), prior_rate=0.05, kappa=0.0).tolist() == [0.2]


def test_watchlist_review_shortens_party_alerts_only() -> None:
    from features.data.contracts import ALERTS

    start = datetime(2025, 1, 1, tzinfo=UTC)
    alerts = pl.DataFrame(
        [
            {"alert_id": "A1", "kind": "PARTY", "value": "S1", "valid_from": start, "valid_to": start + timedelta(days=365)},
            {"alert_id": "A2", "kind": "PARTY", "value": "S2", "valid_from": start, "valid_to": start + timedelta(days=20)},
            {"alert_id": "A3", "kind": "PARTY", "value": "S3", "valid_from": start, "valid_to": None},
            {"alert_id": "A4", "kind": "HS_CODE", "value": "293941", "valid_from": start - timedelta(days=365), "valid_to": None},
        ]
    ).with_columns(pl.lit("reason").alias("reason"), pl.lit("unit").alias("issuing_unit"), pl.lit(4).alias("severity")).select(ALERTS.column_names).cast(ALERTS.schema)
    reviewed = reviewed_alerts(alerts, 90).get_column("valid_to").to_list()
    assert reviewed == [start + timedelta(days=90), start + timedelta(days=20), start + timedelta(days=90), None]
    assert reviewed_alerts(alerts, None).equals(alerts)


def test_unlabelled_sample_depends_on_ids_seed_and_day_only() -> None:
    ids = [f"M{i:05d}" for i in range(2000)]
    kept = unlabelled_sample(ids, 0.1, seed=7, day=3)
    assert kept == unlabelled_sample(list(reversed(ids)), 0.1, seed=7, day=3)
    assert kept != unlabelled_sample(ids, 0.1, seed=7, day=4)
    assert 150 < len(kept) < 250 and kept == sorted(kept)


# --------------------------------------------------------------------------- one port-day's list


def _candidates(n: int) -> pl.DataFrame:
    return pl.DataFrame({"manifest_id": [f"M{i:03d}" for i in range(n)], "container_number": [f"TSTU{i:07d}" for i in range(n)]})


def _alerts(ids: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"manifest_id": ids, "alert_count": [1] * len(ids), "alert_max_severity": [4] * len(ids), "alert_reasons": [["Watchlist"]] * len(ids)},
        schema={"manifest_id": pl.String, "alert_count": pl.Int64, "alert_max_severity": pl.Int64, "alert_reasons": pl.List(pl.String)},
    )


def _rules(scores: dict[str, float]) -> pl.DataFrame:
    return pl.DataFrame(
        {"manifest_id": list(scores), "rule_codes": [["R"]] * len(scores), "rule_reasons": [["Rule"]] * len(scores), "rule_score": list(scores.values())},
        schema={"manifest_id": pl.String, "rule_codes": pl.List(pl.String), "rule_reasons": pl.List(pl.String), "rule_score": pl.Float64},
    )


def _plan(name: str, *, capacity: int = 20, warmup: bool = False, watch: int = 2, rule_hits: int = 30, weights=None, n: int = 200) -> pl.DataFrame:
    cands = _candidates(n)
    scores = np.linspace(0.9, 0.001, n)
    return plan_port_selection(
        parse_strategy(name),
        cands,
        scores,
        alert_hits=_alerts([f"M{i:03d}" for i in range(100, 100 + watch)]),
        rule_hits=_rules({f"M{i:03d}": float(i) for i in range(150, 150 + rule_hits)}),
        port=PORT,
        list_date=date(2025, 3, 1),
        capacity=capacity,
        seed=11,
        config=TINY,
        warmup=warmup,
        weights=weights,
    )


def _count(rows: pl.DataFrame) -> dict[str, int]:
    return {s: n for s, n in rows.group_by("source").len().iter_rows()}


def test_rules_strategy_lists_watchlist_then_rule_hits_and_fills_what_rules_leave_at_random() -> None:
    assert _count(_plan("rules")) == {"WATCHLIST": 2, "RULE": 18}
    few = _plan("rules", rule_hits=5)
    assert _count(few) == {"WATCHLIST": 2, "RULE": 5, "RANDOM": 13}
    assert few.filter(pl.col("source") != "RANDOM").get_column("selection_probability").to_list() == [1.0] * 7
    assert few.filter(pl.col("source") == "RANDOM").get_column("selection_probability").unique().to_list() == [13 / 193]


def test_random_strategy_draws_everything_but_the_mandatory_watchlist_uniformly() -> None:
    rows = _plan("random")
    assert _count(rows) == {"WATCHLIST": 2, "RANDOM": 18}
    assert rows.filter(pl.col("source") == "RANDOM").get_column("selection_probability").unique().to_list() == [18 / 198]


def test_model_strategies_reserve_their_exploration_share_and_keep_the_rule_share() -> None:
    assert _count(_plan("model")) == {"WATCHLIST": 2, "RULE": 10, "MODEL": 8}
    assert _count(_plan("model+20")) == {"WATCHLIST": 2, "RULE": 10, "MODEL": 4, "RANDOM": 4}
    assert _count(_plan("model+5")) == {"WATCHLIST": 2, "RULE": 10, "MODEL": 7, "RANDOM": 1}
    model = _plan("model").filter(pl.col("source") == "MODEL").get_column("manifest_id").to_list()
    assert model == [f"M{i:03d}" for i in range(8)]  # the best scores


def test_warmup_runs_rules_with_a_random_slice_whatever_the_strategy() -> None:
    for name in ("model", "model+10", "ucb"):
        assert _count(_plan(name, warmup=True)) == {"WATCHLIST": 2, "RULE": 14, "RANDOM": 4}


def test_ucb_draws_its_exploration_slots_in_proportion_to_the_weights_and_records_the_probabilities() -> None:
    weights = np.full(200, 0.01)
    weights[190:] = 1.0  # ten candidates from unexplored contexts
    rows = _plan("ucb", weights=weights)
    assert _count(rows) == {"WATCHLIST": 2, "RULE": 10, "MODEL": 6, "RANDOM": 2}
    assert rows.get_column("rank").to_list() == list(range(1, 21))
    drawn = rows.filter(pl.col("source") == "RANDOM")
    # the pool is the 182 candidates not listed by the policy (172 weigh 0.01, ten weigh 1.0): pi = 2 w / sum(w)
    pool_weight = 172 * 0.01 + 10 * 1.0
    expected = {m: 2 * weights[int(m[1:])] / pool_weight for m in drawn.get_column("manifest_id").to_list()}
    assert drawn.get_column("selection_probability").to_list() == pytest.approx(list(expected.values()))
    uniform = _plan("model+10").filter(pl.col("source") == "RANDOM").get_column("selection_probability").unique().to_list()
    assert uniform == [2 / 182]


# --------------------------------------------------------------------------- the training frame


def _feature_rows(ids: list[str], selected: list[bool], day: int = 1) -> pl.DataFrame:
    at = datetime(2025, 1, 1 + day, tzinfo=UTC)
    base = pl.DataFrame(
        {
            "manifest_id": ids,
            "container_number": [f"TSTU{i:07d}" for i in range(len(ids))],
            "port_of_discharge": [PORT] * len(ids),
            "decision_at": [at] * len(ids),
            "selected": selected,
        }
    )
    return base.with_columns(pl.lit(0.5).alias(c) for c in computed_columns())


def _outcomes(rows: list[tuple[str, str, str, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "manifest_id": [r[0] for r in rows],
            "result": [r[1] for r in rows],
            "selection_source": [r[2] for r in rows],
            "inspected_at": [r[3] for r in rows],
        },
        schema={"manifest_id": pl.String, "result": pl.String, "selection_source": pl.String, "inspected_at": pl.Datetime("us", "UTC")},
    )


def test_training_frame_labels_only_from_outcomes_revealed_before_the_training_time() -> None:
    rows = _feature_rows(["A", "B", "C", "D", "E"], [True, True, True, False, False])
    t = datetime(2025, 1, 2, 12, tzinfo=UTC)
    outcomes = _outcomes([("A", "SEIZURE", "MODEL", t), ("B", "NO_FINDING", "RANDOM", t), ("C", "SEIZURE", "RULE", t + timedelta(days=3))])
    frame = training_frame(rows, outcomes, as_of=datetime(2025, 1, 4, tzinfo=UTC), unlabelled_share=0.1, unlabelled_weight=0.05, random_weight=5.0)
    assert frame.get_column("manifest_id").to_list() == ["A", "B", "D", "E"]  # C was selected but its outcome is still pending
    assert frame.get_column("inspected").to_list() == [True, True, False, False]
    assert frame.get_column("label").to_list() == [1, 0, 0, 0]
    assert frame.get_column("weight").to_list() == pytest.approx([1.0, 5.0, 0.5, 0.5])
    assert frame.columns[6:] == computed_columns()
    later = training_frame(rows, outcomes, as_of=datetime(2025, 1, 9, tzinfo=UTC))
    assert later.filter(pl.col("manifest_id") == "C").get_column("label").to_list() == [1]
    windowed = training_frame(rows, outcomes, as_of=datetime(2025, 1, 9, tzinfo=UTC), window_days=3)
    assert windowed.height == 0  # decision day 2025-01-02 is outside [01-06, 01-09)


def test_training_frame_refuses_rows_carrying_the_hidden_truth() -> None:
    rows = _feature_rows(["A"], [False]).with_columns(pl.lit(True).alias("illicit"))
    with pytest.raises(BacktestError, match=r"hidden-truth columns \['illicit'\]"):
        training_frame(rows, _outcomes([]), as_of=datetime(2025, 2, 1, tzinfo=UTC))
    with pytest.raises(BacktestError, match="need a 'selected' column"):
        training_frame(_feature_rows(["A"], [False]).drop("selected"), _outcomes([]), as_of=datetime(2025, 2, 1, tzinfo=UTC))


# --------------------------------------------------------------------------- no peeking, on a real replay


def test_outcomes_are_revealed_for_exactly_the_selected_containers(tiny) -> None:
    for run in tiny.runs:
        selected = set(run.decisions.get_column("manifest_id").to_list())
        assert set(run.outcomes.get_column("manifest_id").to_list()) == selected
        assert set(run.evaluation.filter(pl.col("selected")).get_column("manifest_id").to_list()) == selected


def test_training_labels_come_only_from_the_strategys_own_inspections(tiny) -> None:
    end = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=TINY.days + 5)
    for name in ("model", "model+20", "ucb"):
        run = tiny.run(name, 7)
        frame = training_frame(run.cached_rows, run.outcomes, as_of=end, unlabelled_share=TINY.unlabelled_sample)
        selected = set(run.decisions.get_column("manifest_id").to_list())
        labelled = set(frame.filter(pl.col("inspected")).get_column("manifest_id").to_list())
        assert labelled == selected  # every selected container is cached and labelled, nothing else is
        truth = run.evaluation.select("manifest_id", "illicit")
        hidden = frame.join(truth, on="manifest_id").filter(pl.col("illicit") & ~pl.col("inspected"))
        assert hidden.height > 0, "the tiny world should leave illicit containers uninspected"
        assert hidden.get_column("label").to_list() == [0] * hidden.height
        seized = set(run.outcomes.filter(pl.col("result") == "SEIZURE").get_column("manifest_id").to_list())
        assert set(frame.filter(pl.col("label") == 1).get_column("manifest_id").to_list()) == seized


def test_every_retraining_learned_only_from_outcomes_recorded_before_it(tiny) -> None:
    run = tiny.run("model+20", 7)
    assert [t["day"] for t in run.trainings] == [14, 21]
    for record in run.trainings:
        known = run.outcomes.filter(pl.col("inspected_at") < record["at"])
        assert record["inspected"] <= known.height
        assert record["positives"] == known.filter(pl.col("result") == "SEIZURE").height


# --------------------------------------------------------------------------- strategies on the replay


def test_strategies_use_their_documented_selection_sources(tiny) -> None:
    def sources(name: str, *, after_warmup: bool) -> set[str]:
        decisions = tiny.run(name, 7).decisions
        days = decisions.filter((pl.col("day") >= TINY.model_start) == after_warmup)
        return set(days.get_column("source").to_list())

    for name in ("model", "model+20", "ucb"):
        assert tiny.run(name, 7).trainings[0]["trained"], "the first model exists when the warm-up ends"
    assert sources("rules", after_warmup=True) <= {"WATCHLIST", "RULE", "RANDOM"}
    assert sources("random", after_warmup=True) <= {"WATCHLIST", "RANDOM"}
    assert "RANDOM" in sources("random", after_warmup=True)
    # a model strategy runs the product's policy: its INTEGRITY slice (unusual seal/dwell traces) once a model and its norms exist
    assert {"RULE", "MODEL", "INTEGRITY"} <= sources("model", after_warmup=True) <= {"WATCHLIST", "RULE", "MODEL", "INTEGRITY"}
    for name in ("model", "model+20", "ucb"):
        assert sources(name, after_warmup=False) <= {"WATCHLIST", "RULE", "RANDOM"}
    assert {"MODEL", "RANDOM"} <= sources("model+20", after_warmup=True)
    assert {"MODEL", "RANDOM"} <= sources("ucb", after_warmup=True)


def test_selection_probabilities_are_recorded_for_exploration_draws(tiny) -> None:
    for name in ("random", "model+20", "ucb"):
        decisions = tiny.run(name, 7).decisions.filter(pl.col("day") >= TINY.model_start)
        drawn = decisions.filter(pl.col("source") == "RANDOM").get_column("selection_probability")
        assert drawn.len() > 0 and ((drawn > 0) & (drawn < 1)).all()
        others = decisions.filter(pl.col("source") != "RANDOM").get_column("selection_probability")
        assert (others == 1.0).all()
    ucb = tiny.run("ucb", 7).decisions.filter((pl.col("source") == "RANDOM") & (pl.col("day") >= TINY.model_start))
    assert ucb.get_column("selection_probability").n_unique() > 1  # proportional to the weights, not uniform


def test_exploration_share_of_the_capacity_is_respected_every_day(tiny) -> None:
    run = tiny.run("model+20", 7)
    arrivals = run.evaluation.group_by("day").agg(pl.len().alias("n"))
    per_day = run.decisions.group_by("day").agg(
        (pl.col("source") == "RANDOM").sum().alias("random"), (pl.col("source") == "WATCHLIST").sum().alias("watch"), pl.len().alias("listed")
    )
    for day, n, random, watch, listed in arrivals.join(per_day, on="day").sort("day").select("day", "n", "random", "watch", "listed").iter_rows():
        capacity = capacity_for(n, TINY.capacity_share)
        assert listed == max(capacity, watch)
        if day >= TINY.model_start:
            assert random == min(exploration_slots(capacity, 0.20), max(capacity - watch, 0))


def test_weekly_figures_and_summary_cover_every_strategy(tiny) -> None:
    weekly = tiny.weekly()
    assert weekly.filter(pl.col("strategy") == "model").get_column("week").to_list() == [0, 1, 2, 3]
    by_source = weekly.select(pl.sum_horizontal("inspected_watchlist", "inspected_rule", "inspected_model", "inspected_integrity", "inspected_random"))
    assert by_source.to_series().to_list() == weekly.get_column("inspections").to_list()
    assert weekly.filter(pl.col("strategy") == "model").get_column("phase").to_list() == ["warm-up", "warm-up", "model", "model"]
    summary = tiny.summary()
    assert summary.get_column("strategy").to_list() == ["rules", "random", "model", "model+20", "ucb"]
    row = summary.row(2, named=True)
    assert 0.0 <= row["precision"] <= 1.0 and 0.0 <= row["norm_precision"] <= 1.0
    assert row["seizures"] == sum(row[f"seized_{c}"] for c in ("cannabis", "cocaine", "counterfeit", "heroin", "methamphetamine", "precursor"))
    # model strategies share the warm-up: identical first two weeks
    warm = weekly.filter(pl.col("phase") == "warm-up", pl.col("strategy").is_in(["model", "model+20", "ucb"]))
    assert warm.group_by("week").agg(pl.col("norm_precision").n_unique()).get_column("norm_precision").to_list() == [1, 1]


def test_same_seed_gives_the_same_tables_whatever_else_runs_alongside(tiny) -> None:
    again = run_backtest(TINY, "model+20", seeds=(7,))  # alone: its warm-up is no longer shared with other strategies
    before = [r for r in tiny.runs if r.strategy.name == "model+20"]
    assert summary_table(again.runs, TINY).equals(summary_table(before, TINY))
    assert again.weekly().equals(tiny.weekly().filter(pl.col("strategy") == "model+20"))
    assert again.run("model+20", 7).decisions.equals(tiny.run("model+20", 7).decisions)
    assert [t.get("model_sha256") for t in again.run("model+20", 7).trainings] == [t.get("model_sha256") for t in tiny.run("model+20", 7).trainings]


def test_weekly_list_periods_pool_the_capacity_over_the_week() -> None:
    config = replace(TINY, days=14, warmup_days=5, period_days=7, containers_per_day=120)
    result = run_backtest(config, "model+20", seeds=(7,))
    run = result.runs[0]
    weekly = run.evaluation.group_by(pl.col("day") // 7).agg(pl.len().alias("n"), pl.col("selected").sum().alias("k"))
    for n, k in weekly.select("n", "k").iter_rows():
        assert k >= capacity_for(n, config.capacity_share)
    assert [t["day"] for t in run.trainings] == [7]  # the warm-up is rounded up to whole weeks
    assert run.decisions.get_column("day").n_unique() > 2  # one weekly list, inspected day by day
    assert set(run.outcomes.get_column("manifest_id").to_list()) == set(run.decisions.get_column("manifest_id").to_list())


# --------------------------------------------------------------------------- outputs, tracking and the command


def test_outputs_and_mlflow_parent_with_a_child_run_per_strategy(tiny, tmp_path: Path) -> None:
    from models.tracking import configure

    paths = write_outputs(tiny, tmp_path / "out")
    assert {p.name for p in paths.values()} == {"summary.csv", "summary.md", "weekly.csv", "trainings.csv", "directions.csv", "norm_precision.png", "cumulative_seizures.png"}
    assert pl.read_csv(paths["summary_csv"]).get_column("strategy").to_list() == ["rules", "random", "model", "model+20", "ucb"]
    assert "| model+20 |" in paths["summary_md"].read_text()
    assert paths["norm_precision_png"].read_bytes()[:4] == b"\x89PNG"

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent_id = log_to_mlflow(tiny, uri, paths)
    client = configure(uri)
    experiment = client.get_experiment_by_name("container-risk-backtest")
    runs = client.search_runs([experiment.experiment_id])
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id}
    assert sorted(children) == sorted(["rules", "random", "model", "model+20", "ucb"])
    parent = client.get_run(parent_id)
    assert parent.data.params["strategies"] == STRATEGIES
    assert "model-20/norm_precision_last13" in parent.data.metrics
    assert {a.path for a in client.list_artifacts(parent_id)} >= {"norm_precision.png", "cumulative_seizures.png", "summary.csv", "summary.md"}
    child = children["model+20"]
    history = client.get_metric_history(child.info.run_id, "norm_precision")
    assert [m.step for m in history] == [0, 1, 2, 3]
    expected = tiny.weekly().filter(pl.col("strategy") == "model+20").get_column("norm_precision").to_list()
    assert [m.value for m in history] == pytest.approx(expected)
    assert {"overall/precision", "overall/recall", "overall/norm_precision", "last13/norm_precision"} <= set(child.data.metrics)
    assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["weekly_model-20.csv"]


def test_backtest_command_prints_the_table_and_writes_the_outputs(tmp_path: Path) -> None:
    out = tmp_path / "bt"
    result = CliRunner().invoke(
        app,
        [
            "backtest", "--days", "14", "--warmup-days", "7", "--containers-per-day", "120", "--capacity-share", "0.03",
            "--strategies", "rules,model+10", "--seeds", "7", "--out", str(out), "--no-tracking",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "model+10" in result.stdout and "norm. precision, last 13 wk" in result.stdout and "hit MODEL" in result.stdout
    assert "MLflow" not in result.stdout  # --no-tracking (logging itself is specified above)
    assert pl.read_csv(out / "summary.csv").get_column("strategy").to_list() == ["rules", "model+10"]
    assert (out / "summary.md").exists() and (out / "norm_precision.png").exists() and (out / "cumulative_seizures.png").exists()


def test_backtest_command_refuses_bad_options_without_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["backtest", "--strategies", "greedy", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown strategy 'greedy'" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["backtest", "--seeds", "7,x", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "seeds must be comma-separated integers" in result.output
