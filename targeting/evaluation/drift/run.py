"""Running the drift benchmark: per scenario and seed, the frozen model and the replay, as long-format records."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from features.history import History
from targeting.evaluation.drift.config import DriftConfig, new_pattern
from features.integrity import INTEGRITY_COLUMNS, IntegrityNorms, fit_integrity_norms, integrity_details
from targeting.evaluation.drift.frozen import fit_frozen, training_set, window_features
from targeting.evaluation.drift.metrics import cumulative_recall, daily_top, days_to_first, patterns_of, selection_metrics, sliced_top, window_metrics
from targeting.evaluation.drift.replay import replay_frame, replay_run, seizure_frame
from targeting.sim.world import simulate_world

RECORD_SCHEMA = {"scenario": pl.String, "seed": pl.Int64, "mode": pl.String, "phase": pl.String, "pattern": pl.String, "metric": pl.String, "value": pl.Float64}
CURVE_SCHEMA = {"scenario": pl.String, "seed": pl.Int64, "mode": pl.String, "day_after": pl.Int64, "recall": pl.Float64}
Progress = Callable[[str], None]


@dataclass
class DriftResult:
    """Long-format figures of a drift benchmark.

    ``records``: one row per scenario, seed, ``mode`` (``frozen`` or
    ``replay``), ``phase`` (``before``: the window before the change,
    ``after``: the window from it), pattern and metric. ``curves``: the
    cumulative recall of each scenario's new pattern by day after the change,
    per seed and mode. ``timings``: label -> (wall seconds, CPU seconds).
    """

    config: DriftConfig
    scenarios: tuple[str, ...]
    seeds: tuple[int, ...]
    records: pl.DataFrame
    curves: pl.DataFrame
    timings: dict[str, tuple[float, float]] = field(default_factory=dict)


def _tag(rows: list[dict], **keys) -> list[dict]:
    return [{**keys, **row} for row in rows]


def _frozen(config: DriftConfig, scenario: str, seed: int, say: Progress) -> tuple[list[dict], list[dict]]:
    """The frozen model's figures before and after the change on the scenario world of ``seed`` (simulated by the historical policy)."""
    backtest = config.backtest_config(scenario)
    change, window, start = config.change_of(scenario), config.window_days, config.start
    say(f"{scenario} seed {seed}: simulating {backtest.days} days")
    tables = simulate_world(backtest.world_config(seed))
    history = History.from_frames(tables.manifests, tables.events, tables.outcomes, tables.alerts)
    new = new_pattern(scenario)
    frames = {}
    share = config.integrity_share
    for phase, cut in (("before", change - window), ("after", change)):
        say(f"{scenario} seed {seed}: frozen model with labels before day {cut}, scoring days {cut}-{cut + window - 1}")
        cutoff_day = start + timedelta(days=cut)
        rows, stats, feats = training_set(history, first=start + timedelta(days=max(config.warmup_days, cut - config.train_days)), cutoff_day=cutoff_day)
        model = fit_frozen(
            rows, stats, feats, cutoff_day=cutoff_day, features=backtest.features, seed=seed,
            n_estimators=config.n_estimators, learning_rate=config.learning_rate, num_threads=config.num_threads,
        )
        frame, window_feats = window_features(history, tables.oracle, stats, start=start, first_day=cut, last_day=cut + window, keep=INTEGRITY_ROW_COLUMNS if share else ())
        frame = frame.with_columns(pl.Series("score", model.score(window_feats)))
        if share:
            norms = fit_integrity_norms(_integrity_inputs(rows, feats))
            frame = frame.with_columns(integrity_slice_values(norms, _integrity_inputs(frame, window_feats)))
            frames[phase] = sliced_top(frame, config.capacity_share * 100, explore="integrity", share=share)
        else:
            frames[phase] = daily_top(frame, config.capacity_share * 100)
    patterns = patterns_of(pl.concat([f.select("pattern") for f in frames.values()]), [new])
    records = []
    for phase, frame in frames.items():
        rows = window_metrics(frame, patterns, explore="integrity" if share else None, share=share) + selection_metrics(frame, patterns)
        records += _tag(rows, scenario=scenario, seed=seed, mode="frozen", phase=phase)
    curves = []
    if new is not None:
        first_hit = days_to_first(frames["after"], new, change, column="selected")
        records.append({"scenario": scenario, "seed": seed, "mode": "frozen", "phase": "after", "pattern": new, "metric": "days_to_first", "value": first_hit})
        curve = cumulative_recall(frames["after"], new, change, window)
        curves = [{"scenario": scenario, "seed": seed, "mode": "frozen", "day_after": d, "recall": r} for d, r in enumerate(curve)]
    return records, curves


INTEGRITY_ROW_COLUMNS = ("port_of_loading", "transshipment_ports")


def integrity_slice_values(norms: IntegrityNorms, frame: pl.DataFrame) -> pl.Series:
    """``integrity``: each row's integrity surprisal when its trace is unusual (the product's rule for INTEGRITY items,
    :func:`features.integrity.integrity_details`), null otherwise (not eligible for the slice), row for row."""
    details = integrity_details(norms, frame)
    return details.select(pl.when(pl.col("integrity_unusual")).then(pl.col("integrity_surprisal")).alias("integrity")).to_series()


def _integrity_inputs(rows: pl.DataFrame, feats: pl.DataFrame) -> pl.DataFrame:
    """The manifest and feature columns :mod:`features.integrity` reads, row for row."""
    return pl.concat([rows.select(INTEGRITY_ROW_COLUMNS), feats.select(c for c in INTEGRITY_COLUMNS if c not in INTEGRITY_ROW_COLUMNS)], how="horizontal")


def _replay(config: DriftConfig, scenario: str, seed: int, say: Progress) -> tuple[list[dict], list[dict]]:
    """The replay's figures (its own world: the traffickers react to the strategy's seizures)."""
    backtest = config.backtest_config(scenario, replay=True)
    change, window = config.change_of(scenario), config.window_days
    say(f"{scenario} seed {seed}: replaying {backtest.days} days with {config.strategy}")
    run = replay_run(backtest, config.strategy, seed)
    frame = replay_frame(run)
    new = new_pattern(scenario)
    patterns = patterns_of(frame, [new])
    records = []
    for phase, first in (("before", change - window), ("after", change)):
        part = frame.filter((pl.col("day") >= first) & (pl.col("day") < first + window))
        records += _tag(selection_metrics(part, patterns), scenario=scenario, seed=seed, mode="replay", phase=phase)
    curves = []
    if new is not None:
        first_seizure = days_to_first(seizure_frame(run), new, change, column="seized")
        records.append({"scenario": scenario, "seed": seed, "mode": "replay", "phase": "after", "pattern": new, "metric": "days_to_first", "value": first_seizure})
        curve = cumulative_recall(frame, new, change, window)
        curves = [{"scenario": scenario, "seed": seed, "mode": "replay", "day_after": d, "recall": r} for d, r in enumerate(curve)]
    return records, curves


def run_drift(config: DriftConfig, scenarios: Sequence[str], seeds: Sequence[int], *, progress: Progress | None = None) -> DriftResult:
    """Every scenario on every seed: the frozen model (and the replay when ``config.replay``).

    Deterministic for a seed (the simulator and LightGBM are). Wall and CPU
    seconds of each scenario x seed x mode are in :attr:`DriftResult.timings`.
    """
    say = progress or (lambda _: None)
    records: list[dict] = []
    curves: list[dict] = []
    timings: dict[str, tuple[float, float]] = {}
    parts = ([("frozen", _frozen)] if config.frozen else []) + ([("replay", _replay)] if config.replay else [])
    for scenario in scenarios:
        for seed in seeds:
            for mode, part in parts:
                wall, cpu = time.perf_counter(), time.process_time()
                found, curve = part(config, scenario, int(seed), say)
                records += found
                curves += curve
                timings[f"{scenario} seed {seed} {mode}"] = (time.perf_counter() - wall, time.process_time() - cpu)
    return DriftResult(
        config,
        tuple(scenarios),
        tuple(int(s) for s in seeds),
        pl.DataFrame(records, schema=RECORD_SCHEMA),
        pl.DataFrame(curves, schema=CURVE_SCHEMA),
        timings,
    )
