"""Drift benchmark, frozen model plus an exploration slice aimed at unusual container integrity (seal and dwell).

Reads the windows a feature ablation dumped (``bench_drift_ablation --dump DIR``: each window's rows,
features and one score per feature spec, and the training rows), fits the integrity norms
(:mod:`features.integrity`) on each frozen model's training rows, and compares, at 1 % (and 5 %) of
traffic, the model's ranking alone with the same list where ``share`` of the places go to the most
unusual containers the model did not take (:func:`targeting.evaluation.drift.metrics.sliced_top`; only containers whose
trace is unusual by the product's rule, :func:`features.integrity.integrity_details`, and slots left go back to the model).
No simulation, no training: seconds per window.

    python -m bench.bench_drift_integrity --dump drift-dump [more-dumps ...] --spec 0 --shares 0,0.1,0.2
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl  # noqa: E402

from features.integrity import fit_integrity_norms  # noqa: E402
from targeting.evaluation.drift import ORDINARY, aggregate, new_pattern  # noqa: E402
from targeting.evaluation.drift.metrics import ALL, cumulative_recall, patterns_of, selection_metrics, sliced_top  # noqa: E402
from bench.bench_drift import ordinary_np  # noqa: E402
from targeting.evaluation.drift.report import cell, check_targets, headline_markdown, pattern_markdown, recall_plot, targets_markdown  # noqa: E402
from targeting.evaluation.drift.run import CURVE_SCHEMA, RECORD_SCHEMA, integrity_slice_values  # noqa: E402

STEM = re.compile(r"^(?P<scenario>.+)_(?P<seed>\d+)_(?P<phase>before|after)_window\.parquet$")
KNOWN_RIP_ON = "cocaine-rip-on"


def window_records(
    dumps: list[Path], spec: int, shares: list[float], rates: tuple[float, ...] = (1.0, 5.0), curves: list | None = None, curve_share: float | None = None
) -> pl.DataFrame:
    """Long records (``share`` in ``mode``, e.g. ``slice0.1``) of every dumped window: per pattern ``list_recall`` (as ``recall@n``) and NP.

    ``curves``: appended with the cumulative recall of the new pattern by day after the change of the daily 1 % lists
    (``mode`` ``frozen`` without a slice, ``frozen+integrity`` with ``curve_share``, default the largest share).
    """
    rows = []
    curve_share = max(shares) if curve_share is None else curve_share
    for path in sorted(p for dump in dumps for p in dump.glob("*_window.parquet")):
        match = STEM.match(path.name)
        if not match:
            continue
        scenario, seed, phase = match["scenario"], int(match["seed"]), match["phase"]
        train = pl.read_parquet(path.with_name(path.name.replace("_window", "_train")))
        window = pl.read_parquet(path)
        frame = window.with_columns(pl.col(f"score_{spec}").alias("score"), integrity_slice_values(fit_integrity_norms(train), window))
        patterns = patterns_of(frame, [new_pattern(scenario)])
        rows += [
            {"scenario": scenario, "seed": seed, "mode": f"slice{share:g}", "phase": phase, "pattern": p, "metric": "rows",
             "value": float(frame.filter(pl.col("illicit").fill_null(False) if p == ALL else pl.col("pattern") == p).height)}
            for p in patterns for share in shares
        ]
        for share in shares:
            for rate in rates:
                for per_day, prefix in ((False, "pooled_"), (True, "list_")):
                    selected = sliced_top(frame, rate, explore="integrity", share=share, per_day=per_day)
                    for r in selection_metrics(selected, patterns, prefix=prefix):
                        rows.append({"scenario": scenario, "seed": seed, "mode": f"slice{share:g}", "phase": phase, "pattern": r["pattern"], "metric": f"{r['metric']}@{rate:g}", "value": r["value"]})
                    new = new_pattern(scenario)
                    if curves is not None and per_day and rate == 1.0 and phase == "after" and new and share in (0.0, curve_share):
                        change = int(frame.get_column("day").min())
                        days = int(frame.get_column("day").max()) - change + 1
                        mode = "frozen" if share == 0.0 else "frozen+integrity"
                        curves += [{"scenario": scenario, "seed": seed, "mode": mode, "day_after": d, "recall": r} for d, r in enumerate(cumulative_recall(selected, new, change, days))]
    return pl.DataFrame(rows, schema={"scenario": pl.String, "seed": pl.Int64, "mode": pl.String, "phase": pl.String, "pattern": pl.String, "metric": pl.String, "value": pl.Float64})


COLUMNS = (
    ("new R@1 after", "after", "new", "pooled_recall@1"),
    ("new R@5 after", "after", "new", "pooled_recall@5"),
    ("known rip-on R@1 after", "after", KNOWN_RIP_ON, "pooled_recall@1"),
    ("NP@1 before", "before", ALL, "pooled_norm_precision@1"),
    ("NP@1 after", "after", ALL, "pooled_norm_precision@1"),
    ("new list recall after", "after", "new", "list_recall@1"),
    ("list NP after", "after", ALL, "list_norm_precision@1"),
)


def markdown(records: pl.DataFrame, shares: list[float]) -> str:
    agg = aggregate(records)
    head = ["scenario", "integrity slice", *(c[0] for c in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|---|---:" + "|---:" * len(COLUMNS) + "|"]
    for scenario in records.get_column("scenario").unique(maintain_order=True).to_list():
        for share in shares:
            cells = [scenario, f"{share:.0%}"]
            for _, phase, pattern, metric in COLUMNS:
                name = new_pattern(scenario) if pattern == "new" else pattern
                found = agg.filter((pl.col("scenario") == scenario) & (pl.col("mode") == f"slice{share:g}") & (pl.col("phase") == phase) & (pl.col("pattern") == name) & (pl.col("metric") == metric)) if name else agg.head(0)
                cells.append(cell(found.row(0, named=True) if found.height else None))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


POOLED_AS_FROZEN = {"pooled_recall@1": "recall@1", "pooled_recall@5": "recall@5", "pooled_norm_precision@1": "norm_precision@1", "list_recall@1": "list_recall", "rows": "rows"}


def slice_as_frozen(records: pl.DataFrame, share: float) -> pl.DataFrame:
    """The records of one slice ``share`` as the frozen model's (``mode`` ``frozen``, the pooled figures under the drift report's metric names)."""
    mine = records.filter((pl.col("mode") == f"slice{share:g}") & pl.col("metric").is_in(list(POOLED_AS_FROZEN)))
    return mine.with_columns(pl.lit("frozen").alias("mode"), pl.col("metric").replace(POOLED_AS_FROZEN))


def targets_text(records: pl.DataFrame, share: float, replays: pl.DataFrame | None) -> str:
    """Headline (frozen lists with the ``share`` slice, and the replays when given) and the issue's targets; the ordinary-period
    reference is the model alone (share 0) on the same worlds."""
    frozen = slice_as_frozen(records, share)
    scenarios = frozen.get_column("scenario").unique(maintain_order=True).to_list()
    both = frozen if replays is None else pl.concat([frozen, replays.select(frozen.columns).cast(frozen.schema)])
    reference = ordinary_np(slice_as_frozen(records, 0.0))
    checks = check_targets(aggregate(frozen), scenarios, reference_ordinary=reference)
    agg = aggregate(both)
    per_pattern = "".join(f"\nPer pattern, {s}:\n\n" + pattern_markdown(agg, s) for s in scenarios if s != ORDINARY)
    return f"\nFrozen model with a {share:.0%} integrity slice:\n\n" + headline_markdown(agg, scenarios) + "\n" + targets_markdown(checks) + per_pattern


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dump", type=Path, nargs="+", required=True, help="one or more dump directories (e.g. one per seed range)")
    parser.add_argument("--spec", type=int, default=0, help="which dumped score (index of the ablation's feature spec)")
    parser.add_argument("--shares", default="0,0.1,0.2")
    parser.add_argument("--out", type=Path, help="write records.csv and integrity.md here")
    parser.add_argument("--replay", type=Path, nargs="*", default=[], help="finished `targeting drift --no-frozen` output directories: their headline, and their curves on the plot")
    parser.add_argument("--plot", type=Path, help="cumulative recall of the new pattern: frozen, frozen with the --plot-share slice, replay")
    parser.add_argument("--plot-share", type=float, default=0.1)
    parser.add_argument("--targets-share", type=float, help="also print the headline and the issue's targets for this slice share (the product's: 0.1)")
    args = parser.parse_args(argv)
    shares = [float(s) for s in args.shares.split(",")]
    wall, cpu = time.perf_counter(), time.process_time()
    curves: list[dict] = []
    records = window_records(args.dump, args.spec, shares, curves=curves, curve_share=args.plot_share)
    text = markdown(records, shares)
    replays = pl.concat([pl.read_csv(d / "records.csv", schema=RECORD_SCHEMA) for d in args.replay]) if args.replay else None
    if replays is not None:
        scenarios = replays.get_column("scenario").unique(maintain_order=True).to_list()
        text += "\nReplay (daily lists with weekly retraining):\n\n" + headline_markdown(aggregate(replays), scenarios)
        curves += pl.concat([pl.read_csv(d / "curves.csv", schema=CURVE_SCHEMA) for d in args.replay]).to_dicts()
    if args.targets_share is not None:
        text += targets_text(records, args.targets_share, replays)
    if args.plot:
        frame = pl.DataFrame(curves, schema=CURVE_SCHEMA)
        recall_plot(frame, frame.get_column("scenario").unique(maintain_order=True).to_list(), args.plot)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        records.write_csv(args.out / "integrity_records.csv")
        (args.out / "integrity.md").write_text(text)
    print(text)
    print(f"total {time.perf_counter() - wall:,.1f} s wall, {time.process_time() - cpu:,.1f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
