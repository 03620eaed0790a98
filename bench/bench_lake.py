"""Benchmark: ingest into the Delta lake vs the old home-made Parquet lake, on the same simulated world.

Run: ``python -m bench.bench_lake [--days 60] [--per-day 700] [--seed 7] [--scale 1.0]``.

Set-up (not timed): a simulated world (``targeting.sim``) written to a temporary directory. Then, for
each lake format, the same steps on an empty lake, each timed (wall and CPU time of this process,
``time.process_time``, all threads):

1. ``ingest <table>`` for manifests, events, outcomes and alerts (validation, dedup against the lake,
   the commit);
2. ``re-ingest manifests``: the same file again (nothing is written);
3. ``scan manifests``: every row collected.

The old format is written by the frozen old writer (``tests/features/old_format_lake.py``, the lake as
it was before Delta) through the same ``ingest``. Finally the old lake is migrated
(``targeting lake migrate``) and timed. Printed: one line per step and format, rows, wall s, CPU s, and
the size on disk of each lake.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("manifests", "events", "outcomes", "alerts")


def _timed(label: str, fmt: str, fn, results: list) -> object:  # noqa: ANN001
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    results.append((label, fmt, time.perf_counter() - wall, time.process_time() - cpu))
    return value


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(days: int, per_day: int, seed: int) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "features"))
    from old_format_lake import Lake as OldLake  # the frozen pre-Delta writer

    from features.data.ingest import ingest
    from features.data.lake import Lake
    from features.data.lake_migration import migrate
    from targeting.sim.run import simulate_to_directory
    from targeting.sim.world import WorldConfig

    start = date(2025, 1, 1)
    now = datetime.combine(start + timedelta(days=days + 30), datetime.min.time(), tzinfo=UTC)
    results: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as tmp:
        root = Path(tmp)
        simulate_to_directory(WorldConfig(seed=seed, start=start, days=days, containers_per_day=per_day), root / "world")
        rows = {}
        for fmt, lake in (("old", OldLake(root / "old")), ("delta", Lake(root / "delta"))):
            for table in TABLES:
                summary = _timed(f"ingest {table}", fmt, lambda t=table, lk=lake: ingest(lk, t, [root / "world" / f"{t}.parquet"], now=now), results)
                rows[table] = summary.input_rows
            again = _timed("re-ingest manifests", fmt, lambda lk=lake: ingest(lk, "manifests", [root / "world" / "manifests.parquet"], now=now), results)
            assert again.accepted == 0 and again.seq is None
            frame = _timed("scan manifests", fmt, lambda lk=lake: lk.scan("manifests").collect(), results)
            rows["scan"] = frame.height
        _timed("migrate old -> delta", "delta", lambda: migrate(root / "old", root / "migrated"), results)
        sizes = {name: _size(root / name) for name in ("old", "delta", "migrated")}
    print(f"world: {days} days x {per_day}/day, seed {seed}: " + ", ".join(f"{t} {rows[t]:,}" for t in TABLES))
    print(f"{'step':<24}{'format':<8}{'wall s':>9}{'CPU s':>9}")
    for label, fmt, wall, cpu in results:
        print(f"{label:<24}{fmt:<8}{wall:>9.2f}{cpu:>9.2f}")
    for fmt in ("old", "delta"):
        wall = sum(w for label, f, w, _ in results if f == fmt and label.startswith("ingest "))
        cpu = sum(c for label, f, _, c in results if f == fmt and label.startswith("ingest "))
        print(f"{'ingest, all tables':<24}{fmt:<8}{wall:>9.2f}{cpu:>9.2f}")
    print("size on disk: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sizes.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=700)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplies --per-day (make bench passes it to every benchmark).")
    options, _ = parser.parse_known_args(argv)
    run(options.days, max(100, int(options.per_day * options.scale)), options.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
