"""Benchmark of the drift scenarios (issue 15): the table, with the targets checked.

Targets (model trained before the change, means over seeds):
- recall at 1 % of traffic of each scenario's new pattern in the 30 days after the change >= 0.5;
- normalised precision at 1 % after the change within 0.15 of before it;
- normalised precision at 1 % on the ordinary test period (no scenario) not below the current
  model's (``--baseline-features``, default ``baseline``: the features when the benchmark was built).

    python -m bench.bench_drift                          # every scenario, 3 seeds, frozen + replay (long)
    python -m bench.bench_drift --no-replay              # the frozen model only (the targets need only it)
    python -m bench.bench_drift --features baseline,my_feature --no-replay    # an ablation
    python -m bench.bench_drift --records drift          # print the table of a finished `targeting drift --out drift`
    python -m bench.bench_drift --quick                  # one scenario, one seed, small world (a smoke run)

Prints wall and CPU time per scenario, seed and mode. Run under ``nice -n 10`` on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from targeting.evaluation.drift import (  # noqa: E402
    ORDINARY,
    DriftConfig,
    aggregate,
    check_targets,
    headline_markdown,
    parse_scenarios,
    resolve_features,
    run_drift,
    targets_markdown,
    write_outputs,
)
from targeting.evaluation.drift.metrics import ALL  # noqa: E402


def reference_ordinary(config: DriftConfig, baseline: str, seeds: tuple[int, ...]) -> float | None:
    """The current model's ordinary-period NP@1 (frozen, the model alone: no integrity slice; mean over seeds); ``None`` when the
    candidate is that model (same features, no slice)."""
    if resolve_features(baseline) == resolve_features(config.features) and config.integrity_share == 0.0:
        return None
    result = run_drift(replace(config, features=baseline, replay=False, frozen=True, integrity_share=0.0), (ORDINARY,), seeds)
    return ordinary_np(result.records)


def ordinary_np(records: pl.DataFrame) -> float | None:
    """The frozen model's NP@1 on the ordinary world after the change day (mean over seeds) in ``records``."""
    row = aggregate(records).filter(
        (pl.col("scenario") == ORDINARY) & (pl.col("mode") == "frozen") & (pl.col("phase") == "after") & (pl.col("pattern") == ALL) & (pl.col("metric") == "norm_precision@1")
    )
    return float(row.get_column("mean")[0]) if row.height else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="all")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=7)
    parser.add_argument("--features", default="default")
    parser.add_argument("--baseline-features", default="baseline")
    parser.add_argument("--no-replay", action="store_true")
    parser.add_argument("--quick", action="store_true", help="moved-origin-cover and ordinary, one seed, 600/day, change day 60, 20-day windows")
    parser.add_argument("--records", type=Path, help="read records.csv of a finished run instead of running")
    parser.add_argument("--reference-records", type=Path, help="with --records: the current model's run (its ordinary NP@1 is the reference)")
    parser.add_argument("--out", type=Path, default=Path("drift-bench"))
    args = parser.parse_args(argv)
    names = parse_scenarios("moved-origin-cover,ordinary" if args.quick else args.scenarios)
    seeds = tuple(range(args.first_seed, args.first_seed + (1 if args.quick else args.seeds)))
    config = DriftConfig(features=args.features, replay=not args.no_replay)
    if args.quick:
        config = replace(config, containers_per_day=600, replay_containers_per_day=200, change_day=60, window_days=20, warmup_days=15)
    wall, cpu = time.perf_counter(), time.process_time()
    if args.records:
        records = pl.read_csv(args.records / "records.csv")
        names = tuple(n for n in names if n in set(records.get_column("scenario").to_list()))
    else:
        result = run_drift(config, names, seeds, progress=lambda m: print(f"  {m}", flush=True))
        records = result.records
        write_outputs(records, result.curves, names, args.out, features=resolve_features(args.features))
        for label, (seconds, cpu_seconds) in result.timings.items():
            print(f"  {label}: {seconds:,.1f} s wall, {cpu_seconds:,.1f} s CPU")
    if args.records:
        reference = ordinary_np(pl.read_csv(args.reference_records / "records.csv")) if args.reference_records else None
    else:
        reference = reference_ordinary(config, args.baseline_features, seeds)
    agg = aggregate(records)
    print(f"\ndrift benchmark: scenarios {', '.join(names)}; seeds {', '.join(map(str, seeds))}; features {args.features!r}\n")
    print(headline_markdown(agg, names))
    checks = check_targets(agg, names, reference_ordinary=reference)
    if reference is None and ORDINARY in names:
        print(f"(ordinary-period target: features equal the baseline {args.baseline_features!r}, or read from records: no reference run)\n")
    print(targets_markdown(checks))
    print(f"total {time.perf_counter() - wall:,.1f} s wall, {time.process_time() - cpu:,.1f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
