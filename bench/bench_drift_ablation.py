"""Feature ablation on the frozen drift benchmark: several feature specs on the same worlds, one table.

Each scenario x seed is simulated once and its features built once; one model per spec (``;``-separated,
each a ``targeting drift --features`` spec). Writes ``ablation_records.csv`` and ``ablation.md`` into
``--out`` after every scenario x seed (a partial run keeps what finished).

    nice -n 10 python -m bench.bench_drift_ablation --seeds 3 --out drift-ablation
    nice -n 10 python -m bench.bench_drift_ablation --specs "baseline;baseline,priors" --scenarios fronts-to-rip-on,ordinary
    python -m bench.bench_drift_ablation --records drift-ablation          # the table of a finished run
    python -m bench.bench_drift_ablation --quick                          # smoke run: small world, one seed

Prints wall and CPU time per scenario x seed. Run under ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from targeting.evaluation.drift import DriftConfig, parse_scenarios  # noqa: E402
from targeting.evaluation.drift.ablation import ablation_markdown, run_ablation, write_ablation  # noqa: E402

DEFAULT_SPECS = "baseline;all;baseline,priors;baseline,trader-change;baseline,anomaly"
"""The issue-15 ablation: the model before issue 15, every computed feature, and the baseline plus each transfer group."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", default=DEFAULT_SPECS, help="';'-separated feature specs")
    parser.add_argument("--scenarios", default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="one seed, 600/day, change day 60, 20-day windows")
    parser.add_argument("--records", type=Path, help="print the table of a finished run's directory")
    parser.add_argument("--out", type=Path, default=Path("drift-ablation"))
    parser.add_argument("--dump", type=Path, help="also write each window's rows, features and scores (parquet) here")
    args = parser.parse_args(argv)
    specs = [s.strip() for s in args.specs.split(";") if s.strip()]
    names = parse_scenarios(args.scenarios)
    if args.records:
        records = pl.read_csv(args.records / "ablation_records.csv")
        print(ablation_markdown(records, specs, names))
        return 0
    seeds = tuple(range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds)))
    config = DriftConfig(replay=False)
    if args.quick:
        config = replace(config, containers_per_day=600, change_day=60, window_days=20, warmup_days=15)
    wall, cpu = time.perf_counter(), time.process_time()
    records, timings = run_ablation(
        config, specs, names, seeds,
        progress=lambda m: print(f"  {m}", flush=True),
        on_records=lambda r: write_ablation(r, specs, names, args.out),
        dump=args.dump,
    )
    write_ablation(records, specs, names, args.out)
    for label, (seconds, cpu_seconds) in timings.items():
        print(f"  {label}: {seconds:,.1f} s wall, {cpu_seconds:,.1f} s CPU")
    print(f"\nfeature ablation, frozen model: seeds {', '.join(map(str, seeds))}\n")
    print(ablation_markdown(records, specs, names))
    print(f"total {time.perf_counter() - wall:,.1f} s wall, {time.process_time() - cpu:,.1f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
