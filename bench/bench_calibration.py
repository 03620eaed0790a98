"""Benchmark: calibrated risk. Brier score and ECE before and after calibration, and the risk bands' observed hit rates.

Run: ``python -m bench.bench_calibration [--days 240] [--per-day 700] [--seeds 11] [--img docs/img] [--root DIR]``.

For each seed a world is simulated and ingested into a lake once (cached under
``bench/out/calibration-<days>x<per-day>-seed<seed>/``, or ``--root`` for a
world already built there: ``world/`` feeds and ``lake/``), the model is
trained with the production settings (:func:`models.training.train_model`:
calibrator fitted on the validation period's exams, method chosen by Brier
score on the test period's) and the test period is measured on three streams:
every exam (``labelled``), the random quality-control slice (``random_slice``)
and every test row against the simulator's oracle (``oracle``: contraband an
exam there could find). Prints one table per seed; with ``--img`` writes the
reliability plots of the first seed (``reliability-<stream>.png``).
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

OUT = Path(__file__).resolve().parent / "out"
TABLES = ("manifests", "events", "outcomes", "alerts")


def prepare(root: Path, days: int, per_day: int, seed: int) -> Path:
    """Simulate and ingest a world into ``root`` unless it is there (``root/READY``)."""
    if (root / "READY").exists() or (root / "lake").exists() and (root / "world" / "oracle.parquet").exists():
        return root
    from features.data.ingest import ingest
    from features.data.lake import Lake
    from targeting.sim.run import simulate_to_directory
    from targeting.sim.world import WorldConfig

    shutil.rmtree(root, ignore_errors=True)
    config = WorldConfig(seed=seed, days=days, containers_per_day=per_day)
    simulate_to_directory(config, root / "world")
    lake = Lake(root / "lake")
    after = datetime.combine(config.start + timedelta(days=days + 30), datetime.min.time(), tzinfo=UTC)
    for table in TABLES:
        ingest(lake, table, [root / "world" / f"{table}.parquet"], now=after)
    (root / "READY").write_text("ok\n")
    return root


def measure(root: Path):  # noqa: ANN201 - models.training.TrainResult
    from features.data.lake import Lake
    from features.history import History
    from models.training import TrainConfig, train_model
    from models.workflow import default_split

    lake = Lake(root / "lake")
    oracle = pl.read_parquet(root / "world" / "oracle.parquet")
    return train_model(History.from_lake(lake), TrainConfig(split=default_split(lake), num_threads=1), oracle=oracle)


def _f(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.5f}"


def table(result) -> str:  # noqa: ANN001 - models.training.TrainResult
    """Markdown: calibrator, Brier/ECE/mean before and after per stream, band hit rates per stream."""
    cal = result.calibrator
    lines = [f"calibrator: {'none' if cal is None else f'{cal.method}, fitted on the {cal.fitted_on} ({cal.rows:,} rows, {cal.positives} seizures)'}", "",
             "| stream | rows | positives | Brier raw | Brier calibrated | ECE raw | ECE calibrated | mean raw | mean calibrated | observed rate |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for stream, entry in result.calibration.items():
        raw, after = entry["uncalibrated"], entry.get("calibrated", {})
        lines.append(f"| {stream} | {int(raw['n']):,} | {int(raw['positives'])} | {_f(raw['brier'])} | {_f(after.get('brier'))} | {_f(raw['ece'])} | "
                     f"{_f(after.get('ece'))} | {_f(raw['mean_predicted'])} | {_f(after.get('mean_predicted'))} | {_f(raw['observed_rate'])} |")
    lines += ["", "| stream | " + " | ".join(f"{b['band']} rows / positives / hit rate" for b in next(iter(result.calibration.values()))["bands"]) + " |",
              "|---|" + "---|" * len(next(iter(result.calibration.values()))["bands"])]
    for stream, entry in result.calibration.items():
        cells = [f"{b['rows']:,} / {b['positives']} / {'-' if b['hit_rate'] is None else format(b['hit_rate'], '.3f')}" for b in entry["bands"]]
        lines.append(f"| {stream} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=240)
    parser.add_argument("--per-day", type=int, default=700)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11])
    parser.add_argument("--root", type=Path, default=None, help="a world already built (world/ and lake/); one seed only")
    parser.add_argument("--img", type=Path, default=None, help="write the first seed's reliability plots here")
    args = parser.parse_args()
    from models.workflow import write_calibration_artifacts

    for i, seed in enumerate(args.seeds):
        wall, cpu = time.perf_counter(), time.process_time()
        root = prepare(args.root or OUT / f"calibration-{args.days}x{args.per_day}-seed{seed}", args.days, args.per_day, seed)
        result = measure(root)
        print(f"## seed {seed} ({args.days} days x {args.per_day} containers/day)\n")
        print(table(result))
        if args.img is not None and i == 0:
            out = root / "calibration-artifacts"
            out.mkdir(exist_ok=True)
            args.img.mkdir(parents=True, exist_ok=True)
            for path in write_calibration_artifacts(result, out):
                shutil.copyfile(path, args.img / path.name.replace("reliability_", "reliability-").replace("_", "-"))
        print(f"\nwall {time.perf_counter() - wall:.0f} s, CPU {time.process_time() - cpu:.0f} s\n", flush=True)


if __name__ == "__main__":
    main()
