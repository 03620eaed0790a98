"""Benchmark: training the risk model on about 1 million rows (labelled or not) in under 3 minutes on 2 cores.

Run: ``python -m bench.bench_training [--scale 0.1] [--rebuild] [--threads 2] [--skip-end-to-end]``.

Data (prepared once and cached under ``bench/out/training-s<scale>/``, not
timed): one simulated year of ``2,740 x scale`` containers a day (about 1
million manifests at scale 1), its typed tables written as Parquet and read
lazily as the history.

Figures (each with wall time and the peak RSS reached during it, VmHWM):

1. feature table (reported separately, cached): every arrival of the year
   labelled from the inspection outcomes, feature statistics fitted on the
   training period, point-in-time features for every row;
2. ``RiskModel.fit`` with the production parameters (the defaults
   ``train_model`` uses: categorical codes, sample weights for unlabelled and
   random-slice rows, early stopping on the validation period) on the first
   330 days as training rows and the next 28 as validation rows: about 1
   million rows at scale 1. Target: < 180 s on 2 cores;
3. ``train_model`` end to end with the default split (30-day warm-up, then
   65 / 15 / 20 %): labelling, statistics, features, fit, scoring and the
   evaluation of model and baselines on the test period.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from bench._measure import cpu_count, gib, phase, reset_peak_rss, verdict

OUT = Path(__file__).resolve().parent / "out"
DAYS = 365
CONTAINERS_PER_DAY = 2740
TRAIN_DAYS = 330
VALID_DAYS = 28
TARGET_FIT_SECONDS = 180.0
TABLES = ("manifests", "events", "outcomes", "alerts", "oracle")


def prepare(scale: float, rebuild: bool) -> Path:
    """Simulate the year once and write its typed tables; returns the cache directory."""
    root = OUT / f"training-s{scale:g}"
    done = root / "READY"
    if done.exists() and not rebuild:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    from targeting.sim.world import WorldConfig, simulate_world

    config = WorldConfig(days=DAYS, containers_per_day=max(1, round(CONTAINERS_PER_DAY * scale)))
    start = time.perf_counter()
    print(f"  preparing data: simulating {config.days} days x {config.containers_per_day:,} containers/day ...", flush=True)
    world = simulate_world(config)
    for table in TABLES:
        getattr(world, table).write_parquet(root / f"{table}.parquet")
    (root / "world.json").write_text(json.dumps(world.summary, indent=2, default=str))
    done.write_text("ok\n")
    print(f"  prepared in {time.perf_counter() - start:.0f} s", flush=True)
    return root


def history_of(root: Path):  # noqa: ANN201 - features.history.History
    from features.history import History

    return History(*(pl.scan_parquet(root / f"{t}.parquet") for t in TABLES[:4]))


def bench_split(first, last):  # noqa: ANN001, ANN201 - models.dataset.TimeSplit
    """Train on the first 330 days (no warm-up), validate on the next 28, test on the rest of the year."""
    from models.dataset import TimeSplit

    return TimeSplit(first, first + timedelta(days=TRAIN_DAYS), first + timedelta(days=TRAIN_DAYS + VALID_DAYS), last + timedelta(days=1))


def feature_table(root: Path, history, split, rebuild: bool) -> tuple[pl.DataFrame, float | None]:  # noqa: ANN001
    """Labels + features of every arrival in the split (cached as Parquet); the build time when built now."""
    from features.pipeline import build_features
    from models.training import fit_feature_stats, labelled_frame

    cache = root / f"features-{split.train_start}-{split.train_end}-{split.valid_end}-{split.test_end}.parquet"
    if cache.exists() and not rebuild:
        return pl.read_parquet(cache), None
    start = time.perf_counter()
    rows = labelled_frame(history, split).filter(pl.col("period").is_not_null())
    stats = fit_feature_stats(history, rows, split)
    feats = build_features(rows.drop("period"), history, stats)
    table = pl.concat([rows.select("period", "inspected", "label", "random_slice"), feats], how="horizontal")
    seconds = time.perf_counter() - start
    table.write_parquet(cache)
    return table, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Share of the daily volume (1 = 2,740 containers a day, ~1M rows).")
    parser.add_argument("--rebuild", action="store_true", help="Re-simulate the world and rebuild the feature table.")
    parser.add_argument("--threads", type=int, default=2, help="LightGBM num_threads (production default 2).")
    parser.add_argument("--skip-end-to-end", action="store_true", help="Only the feature table and RiskModel.fit.")
    args = parser.parse_args(argv)

    from features.registry import categorical_columns, feature_columns
    from models.risk_model import RiskModel
    from models.training import TrainConfig, _sample_weights, train_model
    from models.workflow import arrival_range

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench_training: scale {args.scale:g}, {cpu_count()} CPU(s), load average {load:.1f}, LightGBM threads {args.threads}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}", flush=True)
    root = prepare(args.scale, args.rebuild)
    history = history_of(root)
    first, last = arrival_range(history)
    results: dict[str, dict] = {}

    split = bench_split(first, last)
    reset_peak_rss()
    with phase(results, "features"):
        table, built = feature_table(root, history, split, args.rebuild)
    r = results["features"]
    how = f"built in {built:.1f} s" if built is not None else "read from cache (run with --rebuild to time the build)"
    print(f"  feature table: {table.height:,} rows x {len(feature_columns())} features, {how}; peak RSS {gib(r['peak_rss'])}", flush=True)

    config = TrainConfig(split=split, num_threads=args.threads)
    train = table.filter(pl.col("period") == "train")
    valid = table.filter(pl.col("period") == "valid")
    y, w = _sample_weights(train, config)
    yv, wv = _sample_weights(valid, config)
    X, Xv = train.select(feature_columns()), valid.select(feature_columns())
    del table
    print(
        f"  fit rows: train {X.height:,} ({int(train['inspected'].sum()):,} inspected, {int(y.sum())} seizures) + validation {Xv.height:,}"
        f" = {X.height + Xv.height:,}",
        flush=True,
    )
    model = RiskModel(num_threads=args.threads, seed=config.seed, categorical_features=tuple(categorical_columns()))
    with phase(results, "fit"):
        model.fit(X, y, sample_weight=w, eval_set=[(Xv, yv)], eval_sample_weight=[wv])
    r = results["fit"]
    stopped_early = model.best_iteration_ < model.n_estimators
    rounds = min(model.n_estimators, model.best_iteration_ + model.early_stopping_rounds) if stopped_early else model.n_estimators
    ok = r["seconds"] < TARGET_FIT_SECONDS
    print(
        f"  RiskModel.fit: {r['seconds']:7.1f} s  best iteration {model.best_iteration_} of {model.n_estimators}"
        f" ({rounds} rounds boosted, {r['seconds'] / max(rounds, 1):.2f} s a round)"
        f"  ({model.num_leaves} leaves, learning rate {model.learning_rate})  peak RSS {gib(r['peak_rss'])}"
        f"   target < {TARGET_FIT_SECONDS:.0f} s{' at scale 1' if args.scale != 1 else ''}: {verdict(ok) if args.scale == 1 else 'n/a'}",
        flush=True,
    )
    with phase(results, "predict"):
        model.predict(Xv)
    print(f"  predict validation rows: {results['predict']['seconds']:.2f} s ({Xv.height:,} rows)", flush=True)
    del X, Xv, train, valid, model

    if not args.skip_end_to_end:
        from models.dataset import TimeSplit

        default = TimeSplit.default_for(first, last)
        with phase(results, "train_model"):
            result = train_model(history, TrainConfig(split=default, num_threads=args.threads), oracle=pl.read_parquet(root / "oracle.parquet"))
        r = results["train_model"]
        c = result.counts
        oracle = result.evaluation.reports["oracle"]
        print(
            f"  train_model end to end (default split {default.train_start}..{default.test_end}): {r['seconds']:7.1f} s  peak RSS {gib(r['peak_rss'])}\n"
            f"    rows train {c['train_rows']:,} / valid {c['valid_rows']:,} / test {c['test_rows']:,}; best iteration {result.model.best_iteration_};"
            f" oracle precision@1 model {oracle['model'].metrics['precision@1']:.3f} vs rules {oracle['rules'].metrics['precision@1']:.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
