"""Benchmark: point-in-time features for 1 million candidates against 10 years of history, and for one port-day.

Run: ``python -m bench.bench_features [--scale 0.1] [--rebuild]``.

Data (prepared once and cached under ``bench/out/features-s<scale>/``, not timed):
one simulated year of ``2,740 x scale`` containers a day (about 1 million
manifests at scale 1) is tiled 10 times into a 10-year history: tile ``k`` is
shifted ``k x 365`` days back in time, gets new manifest ids, and keeps half of
its consignees and shippers (so entities recur across years) while the other
half are renamed per tile. Containers recur (same numbers). The history is
read lazily from Parquet, as from the lake.

Figures (each with wall time and the peak RSS reached during it, VmHWM):

1. batch (training path): features of every manifest of the latest year
   (about 1 million), each scored at 00:00 UTC of its arrival day, against the
   10-year history. Targets at scale 1: < 60 s, < 8 GiB.
2. serving path: one port-day of 5,000 candidates (the 5,000 arrivals
   following a day's 00:00, filed before it) scored at that time: the entity
   state is built once (reported separately), then only the
   ``build_features(..., state=state)`` call is timed. Target: < 1 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from bench._measure import GIB, cpu_count, gib, load_average, peak_rss_bytes, phase, reset_peak_rss, verdict

OUT = Path(__file__).resolve().parent / "out"
DAYS = 365
CONTAINERS_PER_DAY = 2740
TILES = 10
PORT_DAY = 5000
TARGET_BATCH_SECONDS = 60.0
TARGET_BATCH_RSS = 8 * GIB
TARGET_PORT_DAY_SECONDS = 1.0
TABLES = ("manifests", "events", "outcomes", "alerts")


# ----------------------------------------------------------------------------- data
def _shift(columns: list[str], k: int) -> list[pl.Expr]:
    return [(pl.col(c) - timedelta(days=365 * k)).alias(c) for c in columns]


def _renamed(column: str, k: int) -> pl.Expr:
    """Half of the parties recur in every tile; the other half get a per-tile id."""
    if k == 0:
        return pl.col(column)
    recurring = pl.col(column).hash(seed=42) % 2 == 0
    return pl.when(recurring).then(pl.col(column)).otherwise(pl.col(column) + f"~{k}").alias(column)


def _tile(base: Path, table: str, k: int) -> pl.LazyFrame:
    frame = pl.scan_parquet(base / f"{table}.parquet")
    if table == "manifests":
        return frame.with_columns(
            (pl.col("manifest_id") + f"-{k}").alias("manifest_id"),
            _renamed("consignee_id", k),
            _renamed("shipper_id", k),
            *_shift(["booked_at", "filed_at", "amended_at", "etd", "eta"], k),
        )
    if table == "events":
        return frame.with_columns(_shift(["event_time"], k))
    if table == "outcomes":
        return frame.with_columns((pl.col("manifest_id") + f"-{k}").alias("manifest_id"), *_shift(["inspected_at"], k))
    return frame.with_columns((pl.col("alert_id") + f"-{k}").alias("alert_id"), *_shift(["valid_from", "valid_to"], k))


def prepare(scale: float, rebuild: bool) -> Path:
    """Simulate the base year once and write the tiled 10-year history; returns its directory."""
    root = OUT / f"features-s{scale:g}"
    done = root / "READY"
    if done.exists() and not rebuild:
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "base").mkdir(parents=True)
    from targeting.sim.world import WorldConfig, simulate_world

    config = WorldConfig(days=DAYS, containers_per_day=max(1, round(CONTAINERS_PER_DAY * scale)))
    start = time.perf_counter()
    print(f"  preparing data: simulating {config.days} days x {config.containers_per_day:,} containers/day ...", flush=True)
    world = simulate_world(config)
    for table in TABLES:
        getattr(world, table).write_parquet(root / "base" / f"{table}.parquet")
    del world
    for table in TABLES:
        (root / table).mkdir()
        for k in range(TILES):
            _tile(root / "base", table, k).sink_parquet(root / table / f"tile-{k:02d}.parquet")
    done.write_text("ok\n")
    print(f"  prepared in {time.perf_counter() - start:.0f} s", flush=True)
    return root


def history_of(root: Path):  # noqa: ANN201 - features.history.History
    from features.history import History

    return History(*(pl.scan_parquet(sorted((root / t).glob("tile-*.parquet"))) for t in TABLES))


# ----------------------------------------------------------------------------- run
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Share of the volume (1 = 1M candidates, 10M history).")
    parser.add_argument("--rebuild", action="store_true", help="Re-simulate and re-tile the cached data.")
    parser.add_argument("--repeat", type=int, default=5, help="Timed repetitions of the port-day call.")
    parser.add_argument("--skip-batch", action="store_true", help="Only the serving-path figures.")
    args = parser.parse_args(argv)

    from features.history import with_derived_columns
    from features.pipeline import build_features, entity_state
    from features.stats import fit_stats

    print(f"bench_features: scale {args.scale:g}, {cpu_count()} CPU(s), load average {load_average()}, polars {pl.__version__}", flush=True)
    root = prepare(args.scale, args.rebuild)
    history = history_of(root)
    latest = pl.scan_parquet(root / "manifests" / "tile-00.parquet")
    n_history = history.manifests.select(pl.len()).collect().item()
    n_events = history.events.select(pl.len()).collect().item()
    stats = fit_stats(with_derived_columns(latest).collect(), pl.read_parquet(root / "outcomes" / "tile-00.parquet"))
    print(f"  history: {n_history:,} manifests, {n_events:,} events (Parquet, {TILES} yearly tiles)", flush=True)
    results: dict[str, dict] = {}

    if not args.skip_batch:
        candidates = latest.with_columns(pl.col("eta").dt.truncate("1d").alias("decision_at")).collect()
        reset_peak_rss()
        with phase(results, "batch"):
            batch = build_features(candidates, history, stats)
        rows = batch.height
        del batch, candidates
        r = results["batch"]
        ok = r["seconds"] < TARGET_BATCH_SECONDS and r["peak_rss"] < TARGET_BATCH_RSS
        ok_cpu = r["cpu_seconds"] < TARGET_BATCH_SECONDS and r["peak_rss"] < TARGET_BATCH_RSS
        print(
            f"  batch (training path): {rows:,} candidates  {r['seconds']:7.1f} s (CPU {r['cpu_seconds']:.1f} s)  peak RSS {gib(r['peak_rss'])}"
            f"   target < {TARGET_BATCH_SECONDS:.0f} s, < {gib(TARGET_BATCH_RSS)} at scale 1: "
            + (f"{verdict(ok)} by wall time, {verdict(ok_cpu)} by CPU time (load average {load_average()})" if args.scale == 1 else "n/a"),
            flush=True,
        )

    at = datetime(2025, 7, 1, tzinfo=UTC)
    day = (
        latest.filter((pl.col("eta") >= at) & (pl.col("filed_at") < at))
        .sort("eta", "manifest_id")
        .head(PORT_DAY)
        .with_columns(pl.lit(at, dtype=pl.Datetime("us", "UTC")).alias("decision_at"))
        .collect()
    )
    with phase(results, "state"):
        state = entity_state(history, at)
    r = results["state"]
    print(f"  serving: entity state at {at:%Y-%m-%d} built once  {r['seconds']:7.2f} s (CPU {r['cpu_seconds']:.1f} s)  peak RSS {gib(r['peak_rss'])}", flush=True)
    timings, cpu = [], []
    for _ in range(max(1, args.repeat)):
        with phase(results, "port_day"):
            feats = build_features(day, history, stats, state=state)
        timings.append(results["port_day"]["seconds"])
        cpu.append(results["port_day"]["cpu_seconds"])
    first, median = timings[0], statistics.median(timings)
    print(
        f"  serving: port-day of {feats.height:,} candidates  first {first:6.2f} s  median of {len(timings)} {median:6.2f} s"
        f" (CPU {statistics.median(cpu):.2f} s)  peak RSS {gib(peak_rss_bytes())}   target < {TARGET_PORT_DAY_SECONDS:.0f} s: "
        f"{verdict(median < TARGET_PORT_DAY_SECONDS)}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
