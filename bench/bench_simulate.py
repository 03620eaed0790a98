"""Benchmark: simulate one year of a large port world (about 1 million manifests with their events) to disk.

Run: ``python -m bench.bench_simulate [--scale 0.1] [--keep DIR] [--legit-churn realistic] [--scenario NAME]``. Prints wall time and peak RSS
(VmHWM). Target at scale 1 on 2 cores: under 2 minutes and under 4 GiB.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench._measure import GIB, cpu_count, gib, load_average, peak_rss_bytes, verdict

TARGET_SECONDS = 120.0
TARGET_RSS = 4 * GIB
DAYS = 365
CONTAINERS_PER_DAY = 2740


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Share of the daily volume to simulate (1 = 2,740 containers a day).")
    parser.add_argument("--keep", type=Path, default=None, help="Write the world here and keep it (default: a temporary directory).")
    parser.add_argument("--legit-churn", default="static", help="Legitimate trade churn: static (default) or realistic.")
    parser.add_argument("--scenario", default=None, help="A drift scenario of targeting.sim.scenarios (default: none).")
    args = parser.parse_args(argv)

    from targeting.sim.run import simulate_to_directory
    from targeting.sim.world import WorldConfig

    config = WorldConfig(days=DAYS, containers_per_day=max(1, round(CONTAINERS_PER_DAY * args.scale)), legit_churn=args.legit_churn, scenario=args.scenario)
    print(
        f"bench_simulate: {config.days} days x {config.containers_per_day:,} containers/day, legit churn {config.legit_churn}, "
        f"scenario {config.scenario or 'none'}, {cpu_count()} CPU(s), load average {load_average()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-simulate-") as tmp:
        out = args.keep or Path(tmp) / "world"
        start, cpu = time.perf_counter(), time.process_time()
        summary = simulate_to_directory(config, out)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    peak = peak_rss_bytes()
    print(f"  manifests {summary['manifests']:,}  events {summary['events']:,}  outcomes {summary['outcomes']:,}  alerts {summary['alerts']:,}")
    print(f"  written   {size / 1e6:,.0f} MB")
    print(f"  CPU time  {cpu:8.1f} s")
    print(f"  wall time {seconds:8.1f} s    target < {TARGET_SECONDS:.0f} s at scale 1: {verdict(seconds < TARGET_SECONDS) if args.scale == 1 else 'n/a'}")
    print(f"  peak RSS  {gib(peak):>10}    target < {gib(TARGET_RSS)} at scale 1: {verdict(peak < TARGET_RSS) if args.scale == 1 else 'n/a'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
