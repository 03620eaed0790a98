"""Benchmark of ``targeting backtest``: wall time of a daily time-replay with weekly retraining.

Target: a one-year daily backtest of one port at 5,000 containers/day with
weekly retraining in under 15 minutes on 2 cores for one model strategy.

    python bench/bench_backtest.py                 # the target: 365 days, 5,000/day, model+10
    python bench/bench_backtest.py --quick         # small scale: 60 days, 800/day (about a minute)
    python bench/bench_backtest.py --strategies rules,model+10,ucb --days 120
    python bench/bench_backtest.py --directions IMPORT   # the import replay only (the target was set for it)
    python -m bench.run_all -- --scale 0.1       # 500 containers/day (every benchmark takes --scale)

Prints the world generation time, the shared warm-up (with the first model),
each strategy's own time with its parts (world days and events, decisions,
features, scoring, training), the time per simulated day, the CPU time and the
peak resident memory. Other processes on the machine inflate wall times: the
load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._measure import gib, peak_rss_bytes, verdict  # noqa: E402
from targeting.evaluation.backtest import BacktestConfig, parse_strategies, run_backtest  # noqa: E402

TARGET_MINUTES = 15.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scale: 60 days, 800 containers/day, 21-day warm-up")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--containers-per-day", type=int, default=5000)
    parser.add_argument("--scale", type=float, default=1.0, help="Share of the daily volume (1 = --containers-per-day).")
    parser.add_argument("--ports", default="NLRTM")
    parser.add_argument("--strategies", default="model+10")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup-days", type=int, default=60)
    parser.add_argument("--retrain-every", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="LightGBM threads")
    parser.add_argument("--directions", default="IMPORT,TRANSSHIPMENT,EXPORT", help="Populations replayed (IMPORT is always one).")
    args = parser.parse_args(argv)
    days, per_day, warmup = (60, 800, 21) if args.quick else (args.days, max(1, round(args.containers_per_day * args.scale)), args.warmup_days)
    config = BacktestConfig(
        days=days,
        ports=tuple(p.strip() for p in args.ports.split(",")),
        containers_per_day=per_day,
        warmup_days=warmup,
        retrain_every=args.retrain_every,
        num_threads=args.threads,
        directions=tuple(d.strip().upper() for d in args.directions.split(",") if d.strip()),
    )
    strategies = parse_strategies(args.strategies)
    print(f"backtest benchmark: {days} days, ports {','.join(config.ports)}, {per_day:,} containers/day, capacity {config.capacity_share:.0%}, directions {','.join(config.directions)}, "
          f"warm-up {warmup} d, retrain every {config.retrain_every} d, strategies {args.strategies}, seed {args.seed}")
    print(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    began, cpu = time.perf_counter(), time.process_time()

    def progress(label: str, done: int, total: int) -> None:
        if done == total or done % 30 == 0:
            print(f"  [{time.perf_counter() - began:7.1f} s] {label}: {done}/{total}", flush=True)

    result = run_backtest(config, strategies, seeds=(args.seed,), progress=progress)
    total, cpu = time.perf_counter() - began, time.process_time() - cpu
    timings = result.timings
    label = f"seed {args.seed}"
    print(f"world generation            {timings[f'{label} world']:8.1f} s")
    if f"{label} warm-up" in timings:
        parts = ", ".join(f"{k.removeprefix(label + ' warm-up ')} {v:.1f}" for k, v in timings.items() if k.startswith(f"{label} warm-up ") )
        print(f"shared warm-up + 1st model  {timings[f'{label} warm-up']:8.1f} s  ({parts})")
    for run in result.runs:
        own_days = days - (config.model_start if run.strategy.uses_model else 0)
        parts = ", ".join(f"{k} {v:.1f}" for k, v in run.timers.items())
        alone = run.seconds + run.shared_seconds + timings[f"{label} world"]
        print(
            f"{run.strategy.name:<12} own days    {run.seconds:8.1f} s  ({own_days} days, {run.seconds / max(own_days, 1):.2f} s/day; {parts}); "
            f"alone with world and warm-up {alone:.1f} s = {alone / 60:.1f} min; {len(run.trainings)} trainings"
        )
    summary = result.summary()
    for row in summary.iter_rows(named=True):
        print(f"{row['strategy']:<12} norm. precision {row['norm_precision']:.3f}, last 13 weeks {row['norm_precision_last13']:.3f}, seizures {row['seizures']:.0f}")
    print(f"total                       {total:8.1f} s = {total / 60:.1f} min wall, {cpu / 60:.1f} min CPU (all threads); "
          f"peak RSS {gib(peak_rss_bytes())}; load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if not args.quick and days >= 365 and per_day >= 5000 and len(result.runs) == 1:
        print(f"target: one model strategy, one year at 5,000/day under {TARGET_MINUTES:.0f} min: {verdict(total / 60 < TARGET_MINUTES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
