"""Benchmark: targeting quality of the trained model against the rule baseline on simulated worlds.

Run: ``python -m bench.bench_quality [--days 365] [--per-day 1000] [--seeds 7 8] [--quick] [--rebuild]``.

For each seed a world of ``days x per-day`` containers (three ports) is
simulated once and cached under ``bench/out/quality-<days>x<per-day>-seed<seed>/``
(typed tables as Parquet, read lazily as the history). The model is trained
with the production settings (``TrainConfig`` defaults, default split: 30-day
warm-up, then 65 / 15 / 20 % of the days) and evaluated on the test period
beside the baselines, on three streams:

- oracle: every test arrival against the simulator's hidden truth (what the
  unit would find if it inspected the top n%);
- random slice: the random quality-control inspections (unbiased, small);
- labelled: every inspected test row (large, biased towards what rules chose).

Requirements checked (mean over seeds): the model's oracle precision@1% is a
wide margin (>= 3x) above the rule baseline's, and the model recalls most
(> 50%) of the contraband the oracle knows at a 5% inspection rate.
``--quick``: 150 days x 400 containers a day, one seed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import time
from pathlib import Path

import polars as pl

from bench._measure import cpu_count, gib, peak_rss_bytes, verdict

OUT = Path(__file__).resolve().parent / "out"
TABLES = ("manifests", "events", "outcomes", "alerts", "oracle")
TARGET_RATIO = 3.0
TARGET_RECALL_AT_5 = 0.5


def prepare(days: int, per_day: int, seed: int, rebuild: bool) -> Path:
    root = OUT / f"quality-{days}x{per_day}-seed{seed}"
    if (root / "READY").exists() and not rebuild:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    from targeting.sim.world import WorldConfig, simulate_world

    start = time.perf_counter()
    print(f"  seed {seed}: simulating {days} days x {per_day:,} containers/day ...", flush=True)
    world = simulate_world(WorldConfig(seed=seed, days=days, containers_per_day=per_day))
    for table in TABLES:
        getattr(world, table).write_parquet(root / f"{table}.parquet")
    (root / "world.json").write_text(json.dumps(world.summary, indent=2, default=str))
    (root / "READY").write_text("ok\n")
    print(f"  seed {seed}: simulated in {time.perf_counter() - start:.0f} s", flush=True)
    return root


def fmt(value: float, spec: str = ".3f") -> str:
    return "  -  " if value is None or not math.isfinite(value) else format(value, spec)


def run_seed(root: Path, threads: int) -> dict:
    from features.history import History
    from models.dataset import TimeSplit
    from models.training import TrainConfig, train_model
    from models.workflow import arrival_range

    history = History(*(pl.scan_parquet(root / f"{t}.parquet") for t in TABLES[:4]))
    first, last = arrival_range(history)
    split = TimeSplit.default_for(first, last)
    start = time.perf_counter()
    result = train_model(history, TrainConfig(split=split, num_threads=threads), oracle=pl.read_parquet(root / "oracle.parquet"))
    seconds = time.perf_counter() - start
    reports = result.evaluation.reports
    summary = json.loads((root / "world.json").read_text())
    return {"split": split, "seconds": seconds, "counts": result.counts, "reports": reports, "summary": summary, "best_iteration": result.model.best_iteration_}


def metric(run: dict, stream: str, scorer: str, name: str) -> float:
    report = run["reports"].get(stream, {}).get(scorer)
    return float("nan") if report is None else report.metrics.get(name, float("nan"))


def print_seed(seed: int, run: dict) -> None:
    s, c = run["summary"], run["counts"]
    print(
        f"\n  seed {seed}: {s['manifests']:,} manifests, base rate {s['base_rate']:.3%}, {s['seizures']} historical seizures;"
        f" split {run['split'].train_start}..{run['split'].test_end}; trained in {run['seconds']:.0f} s (best iteration {run['best_iteration']})"
    )
    print(f"    train {c['train_rows']:,} rows ({c['train_inspected']:,} inspected, {c['train_seizures']} seizures); test {c['test_rows']:,} rows")
    for stream in ("oracle", "random_slice", "labelled"):
        if stream not in run["reports"]:
            print(f"    {stream}: no rows")
            continue
        any_report = next(iter(run["reports"][stream].values()))
        print(f"    {stream}: n {any_report.n:,}, positives {any_report.positives}, base rate {fmt(any_report.metrics['base_rate'], '.4f')}")
        print(f"      {'scorer':<18} {'p@0.5%':>7} {'p@1%':>7} {'p@2%':>7} {'p@5%':>7} {'r@1%':>7} {'r@5%':>7} {'r@10%':>7} {'norm p@1%':>9} {'PR-AUC':>7} {'ROC-AUC':>7}")
        for scorer in ("model", "rules", "importer_findings", "random"):
            m = lambda name: metric(run, stream, scorer, name)  # noqa: E731
            print(
                f"      {scorer:<18} {fmt(m('precision@0.5')):>7} {fmt(m('precision@1')):>7} {fmt(m('precision@2')):>7} {fmt(m('precision@5')):>7}"
                f" {fmt(m('recall@1')):>7} {fmt(m('recall@5')):>7} {fmt(m('recall@10')):>7} {fmt(m('norm_precision@1')):>9}"
                f" {fmt(m('pr_auc')):>7} {fmt(m('roc_auc')):>7}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=1000, help="Containers a day over the three ports.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8])
    parser.add_argument("--threads", type=int, default=2, help="LightGBM num_threads (production default 2).")
    parser.add_argument("--quick", action="store_true", help="150 days x 400 containers a day, one seed.")
    parser.add_argument("--rebuild", action="store_true", help="Re-simulate the cached worlds.")
    args = parser.parse_args(argv)
    if args.quick:
        args.days, args.per_day, args.seeds = 150, 400, args.seeds[:1]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"bench_quality: {args.days} days x {args.per_day:,} containers/day, seeds {' '.join(map(str, args.seeds))};"
        f" {cpu_count()} CPU(s), load average {load:.1f}, LightGBM threads {args.threads}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}",
        flush=True,
    )
    runs = {}
    for seed in args.seeds:
        root = prepare(args.days, args.per_day, seed, args.rebuild)
        runs[seed] = run_seed(root, args.threads)
        print_seed(seed, runs[seed])

    def mean(stream: str, scorer: str, name: str) -> float:
        values = [metric(r, stream, scorer, name) for r in runs.values()]
        values = [v for v in values if math.isfinite(v)]
        return statistics.fmean(values) if values else float("nan")

    model_p1, rules_p1 = mean("oracle", "model", "precision@1"), mean("oracle", "rules", "precision@1")
    ratios = [metric(r, "oracle", "model", "precision@1") / metric(r, "oracle", "rules", "precision@1") for r in runs.values() if metric(r, "oracle", "rules", "precision@1") > 0]
    ratio = model_p1 / rules_p1 if rules_p1 > 0 else float("inf")
    recall5 = mean("oracle", "model", "recall@5")
    print(f"\n  mean over {len(runs)} seed(s):")
    print(f"    oracle precision@1%: model {fmt(model_p1)} vs rules {fmt(rules_p1)}  ratio {fmt(ratio, '.1f')}x"
          f" (per seed {', '.join(fmt(r, '.1f') + 'x' for r in ratios)})   target >= {TARGET_RATIO:.0f}x: {verdict(ratio >= TARGET_RATIO)}")
    print(f"    oracle recall@5%: model {fmt(recall5)} vs rules {fmt(mean('oracle', 'rules', 'recall@5'))}   target > {TARGET_RECALL_AT_5:.0%}: {verdict(recall5 > TARGET_RECALL_AT_5)}")
    print(f"    oracle normalised precision@1%: model {fmt(mean('oracle', 'model', 'norm_precision@1'))} vs rules {fmt(mean('oracle', 'rules', 'norm_precision@1'))};"
          f" @5%: model {fmt(mean('oracle', 'model', 'norm_precision@5'))}")
    print(f"    oracle PR-AUC: model {fmt(mean('oracle', 'model', 'pr_auc'))} vs rules {fmt(mean('oracle', 'rules', 'pr_auc'))}")
    print(f"    random slice: PR-AUC model {fmt(mean('random_slice', 'model', 'pr_auc'))} vs rules {fmt(mean('random_slice', 'rules', 'pr_auc'))};"
          f" recall@10% model {fmt(mean('random_slice', 'model', 'recall@10'))} vs rules {fmt(mean('random_slice', 'rules', 'recall@10'))}")
    print(f"    labelled stream: PR-AUC model {fmt(mean('labelled', 'model', 'pr_auc'))} vs rules {fmt(mean('labelled', 'rules', 'pr_auc'))};"
          f" precision@5% model {fmt(mean('labelled', 'model', 'precision@5'))} vs rules {fmt(mean('labelled', 'rules', 'precision@5'))}")
    print(f"    peak RSS {gib(peak_rss_bytes())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
