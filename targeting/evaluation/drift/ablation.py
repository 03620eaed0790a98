"""Feature ablations on the frozen drift benchmark: several feature sets scored on the same worlds and features.

For each scenario and seed the world is simulated once and each frozen
model's training set, statistics and window features are built once (every
registered column); one LightGBM model per feature spec is then fitted on its
columns and scores the same rows. Figures are those of the frozen benchmark
(:func:`targeting.evaluation.drift.run.run_drift`, same time semantics: labels
recorded before the cut-off, point-in-time features after it), with a
``features`` column naming the spec. Costs one world and two feature builds
per scenario x seed plus one fit and one scoring per spec, instead of all of
them per spec.

    python -m bench.bench_drift_ablation --specs "baseline;all;baseline,priors" --seeds 3
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import polars as pl

from features.history import History
from targeting.evaluation.drift.config import ORDINARY, DriftConfig, new_pattern, resolve_features
from targeting.evaluation.drift.frozen import fit_frozen, training_set, window_features
from targeting.evaluation.drift.metrics import ALL, daily_top, patterns_of, selection_metrics, window_metrics
from targeting.evaluation.drift.report import aggregate, cell
from targeting.sim.world import simulate_world

ABLATION_SCHEMA = {"features": pl.String, "scenario": pl.String, "seed": pl.Int64, "mode": pl.String, "phase": pl.String, "pattern": pl.String, "metric": pl.String, "value": pl.Float64}
Progress = Callable[[str], None]


KEPT_ROW_COLUMNS = ("port_of_loading", "transshipment_ports", "hs_code")
"""Manifest columns written beside the features by ``dump`` (post-hoc analyses of a finished ablation)."""


def _scored_phases(
    config: DriftConfig, scenario: str, seed: int, specs: Sequence[str], say: Progress, dump: Path | None = None
) -> dict[str, dict[str, pl.DataFrame]]:
    """spec -> phase (``before``, ``after``) -> the window's rows with ``score`` and ``selected`` (daily 1 % lists).

    ``dump``: also write ``<scenario>_<seed>_<phase>_{train,window}.parquet`` there (training rows' labels and
    features; the window's rows, features and one ``score_<i>`` column per spec, in ``specs`` order).
    """
    backtest = config.backtest_config(scenario)
    change, window, start = config.change_of(scenario), config.window_days, config.start
    say(f"{scenario} seed {seed}: simulating {backtest.days} days")
    tables = simulate_world(backtest.world_config(seed))
    history = History.from_frames(tables.manifests, tables.events, tables.outcomes, tables.alerts)
    columns = {spec: resolve_features(spec) for spec in specs}
    out: dict[str, dict[str, pl.DataFrame]] = {spec: {} for spec in specs}
    for phase, cut in (("before", change - window), ("after", change)):
        say(f"{scenario} seed {seed}: {phase}: features of the training rows and of days {cut}-{cut + window - 1}")
        first, cutoff_day = start + timedelta(days=max(config.warmup_days, cut - config.train_days)), start + timedelta(days=cut)
        rows, stats, feats = training_set(history, first=first, cutoff_day=cutoff_day)
        frame, window_feats = window_features(history, tables.oracle, stats, start=start, first_day=cut, last_day=cut + window, keep=KEPT_ROW_COLUMNS)
        scores = {}
        for i, spec in enumerate(specs):
            model = fit_frozen(
                rows, stats, feats, cutoff_day=cutoff_day, features=columns[spec], seed=seed,
                n_estimators=config.n_estimators, learning_rate=config.learning_rate, num_threads=config.num_threads,
            )
            scores[f"score_{i}"] = model.score(window_feats)
            scored = frame.drop(KEPT_ROW_COLUMNS).with_columns(pl.Series("score", scores[f"score_{i}"]))
            out[spec][phase] = daily_top(scored, config.capacity_share * 100)
        if dump is not None:
            dump.mkdir(parents=True, exist_ok=True)
            stem = f"{scenario}_{seed}_{phase}"
            labels = rows.select("manifest_id", "direction", "inspected", "label", "random_slice", *KEPT_ROW_COLUMNS)
            pl.concat([labels, feats.drop([c for c in feats.columns if c in labels.columns])], how="horizontal").write_parquet(dump / f"{stem}_train.parquet")
            extra = window_feats.drop([c for c in window_feats.columns if c in frame.columns])
            pl.concat([frame, extra], how="horizontal").with_columns(pl.Series(k, v) for k, v in scores.items()).write_parquet(dump / f"{stem}_window.parquet")
    return out


def run_ablation(
    config: DriftConfig,
    specs: Sequence[str],
    scenarios: Sequence[str],
    seeds: Sequence[int],
    *,
    progress: Progress | None = None,
    on_records: Callable[[pl.DataFrame], None] | None = None,
    dump: Path | None = None,
) -> tuple[pl.DataFrame, dict[str, tuple[float, float]]]:
    """Frozen-model figures of every feature spec on every scenario and seed (seed-major: a partial run covers every scenario).

    Returns the long-format records (:data:`ABLATION_SCHEMA`; ``mode`` is
    ``frozen``) and wall/CPU seconds per scenario x seed. ``on_records``
    receives the records so far after each scenario x seed (to save partial runs); ``dump``: see :func:`_scored_phases`.
    """
    say = progress or (lambda _: None)
    specs = list(dict.fromkeys(specs))
    for spec in specs:
        resolve_features(spec)  # fail before simulating anything
    records: list[dict] = []
    timings: dict[str, tuple[float, float]] = {}
    for seed in seeds:
        for scenario in scenarios:
            wall, cpu = time.perf_counter(), time.process_time()
            scored = _scored_phases(config, scenario, int(seed), specs, say, dump)
            new = new_pattern(scenario)
            for spec, frames in scored.items():
                patterns = patterns_of(pl.concat(list(frames.values())), [new])
                for phase, frame in frames.items():
                    for row in window_metrics(frame, patterns) + selection_metrics(frame, patterns):
                        records.append({"features": spec, "scenario": scenario, "seed": int(seed), "mode": "frozen", "phase": phase, **row})
            timings[f"{scenario} seed {seed}"] = (time.perf_counter() - wall, time.process_time() - cpu)
            if on_records is not None:
                on_records(pl.DataFrame(records, schema=ABLATION_SCHEMA))
    return pl.DataFrame(records, schema=ABLATION_SCHEMA), timings


ABLATION_COLUMNS = (
    ("new R@1 after", "after", "new", "recall@1"),
    ("new R@5 after", "after", "new", "recall@5"),
    ("NP@1 before", "before", ALL, "norm_precision@1"),
    ("NP@1 after", "after", ALL, "norm_precision@1"),
)


def ablation_markdown(records: pl.DataFrame, specs: Sequence[str], scenarios: Sequence[str]) -> str:
    """One row per scenario and feature spec: the new pattern's recall at 1 % and 5 % after the change, NP@1 before and after (mean (min-max) over seeds)."""
    head = ["scenario", "features", "seeds", *(c[0] for c in ABLATION_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---:" + "|---:" * len(ABLATION_COLUMNS) + "|"]
    for scenario in scenarios:
        for spec in specs:
            part = records.filter((pl.col("features") == spec) & (pl.col("scenario") == scenario))
            if part.height == 0:
                continue
            agg = aggregate(part.drop("features"))
            cells = [scenario, f"`{spec}`", str(part.get_column("seed").n_unique())]
            for _, phase, pattern, metric in ABLATION_COLUMNS:
                name = new_pattern(scenario) if pattern == "new" else pattern
                if name is None:
                    cells.append("-")
                    continue
                found = agg.filter((pl.col("phase") == phase) & (pl.col("pattern") == name) & (pl.col("metric") == metric))
                cells.append(cell(found.row(0, named=True) if found.height else None))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_ablation(records: pl.DataFrame, specs: Sequence[str], scenarios: Sequence[str], out: Path) -> dict[str, Path]:
    """``ablation_records.csv`` and ``ablation.md`` (the table of :func:`ablation_markdown`) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"records": out / "ablation_records.csv", "table": out / "ablation.md"}
    records.write_csv(paths["records"])
    paths["table"].write_text(ablation_markdown(records, specs, scenarios))
    return paths


__all__ = ["ABLATION_SCHEMA", "ORDINARY", "ablation_markdown", "run_ablation", "write_ablation"]
