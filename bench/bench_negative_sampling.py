"""Benchmark: model quality with negative down-sampling (every seizure, a fraction of the other rows, weights / fraction).

Run: ``nice -n 10 python -m bench.bench_negative_sampling [--rows 1e6] [--fractions 1,0.3,0.1,0.03] [--rounds 50]``.

Reads the cluster path's feature partitions of a size already measured by :mod:`bench.bench_scale`
(``bench/out/national-*/runs/features-cluster-<rows>/``). Split by time: the rows decided in the last
``--test-days`` days are the test period, the earlier ones the training period. For each fraction, a
single-process :class:`models.risk_model.RiskModel` (same parameters, ``--rounds`` rounds, no early
stopping) is trained on every seizure and that fraction of the other training rows
(:func:`models.distributed.negative_sample`, Float32 features as the cluster trains on), then
scored on the whole test period. Figures: training rows kept, fit CPU seconds, and on the test
period ROC-AUC among the inspected rows, average precision among them, and recall at 1 %: the share
of the test period's seizures among its top 1 % of rows by score (the inspection capacity). The
difference to fraction 1 is the cost of down-sampling. Results also go to
``bench/out/negative-sampling-<world>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.bench_scale import OUT, REPLICAS, feature_outputs, training_targets, world_root


def split_by_days(table: pl.DataFrame, test_days: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(training rows, test rows): the test rows are those decided in the last ``test_days`` days."""
    cut = table["decision_at"].max() - timedelta(days=test_days)
    return table.filter(pl.col("decision_at") < cut), table.filter(pl.col("decision_at") >= cut)


def recall_at(scores: np.ndarray, labels: np.ndarray, share: float) -> float:
    """Share of the positives among the top ``share`` of rows by score (ties broken by position)."""
    top = max(1, int(round(share * scores.size)))
    order = np.argsort(-scores, kind="stable")[:top]
    return float(labels[order].sum() / max(1, labels.sum()))


def evaluate(model, test: pl.DataFrame) -> dict:  # noqa: ANN001 - a fitted RiskModel
    """ROC-AUC and average precision among the inspected test rows, recall at 1 % over all test rows."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from features.registry import feature_columns
    from models.distributed import as_float32

    scores = model.predict_proba(as_float32(test).select(feature_columns()))[:, 1]
    inspected = test["inspected"].to_numpy()
    labels = np.where(inspected, test["label"].fill_null(0).to_numpy(), 0)
    return {"roc_auc_inspected": float(roc_auc_score(labels[inspected], scores[inspected])),
            "average_precision_inspected": float(average_precision_score(labels[inspected], scores[inspected])),
            "recall_at_1pct": recall_at(scores, labels, 0.01), "test_seizures": int(labels.sum()), "test_rows": test.height}


def fit_sampled(train: pl.DataFrame, fraction: float, rounds: int, threads: int) -> tuple[object, dict]:
    """A RiskModel fitted on every seizure and ``fraction`` of the other training rows (weights / fraction)."""
    import features.pipeline  # noqa: F401 - registers every feature
    from features.registry import categorical_columns, feature_columns
    from models.distributed import LABEL, WEIGHT, as_float32, negative_sample
    from models.risk_model import RiskModel

    y, w = training_targets(train)
    rows = as_float32(negative_sample(train.with_columns(pl.Series(LABEL, y), pl.Series(WEIGHT, w)), fraction))
    model = RiskModel(n_estimators=rounds, num_threads=threads, categorical_features=tuple(categorical_columns()))
    cpu = time.process_time()
    model.fit(rows.select(feature_columns()), rows[LABEL].to_numpy(), sample_weight=rows[WEIGHT].to_numpy())
    return model, {"trained_rows": rows.height, "fit_cpu_seconds": time.process_time() - cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1_004_164, help="Size whose cluster feature partitions to read (manifests).")
    parser.add_argument("--fractions", default="1,0.3,0.1,0.03")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--test-days", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--containers-per-day", type=int, default=2740)
    parser.add_argument("--years", type=int, default=5)
    args = parser.parse_args(argv)
    root = world_root(args.containers_per_day, args.years, REPLICAS)
    _, parts = feature_outputs(root, int(args.rows))
    files = sorted(parts.glob("part-*.parquet"))
    if not files:
        raise SystemExit(f"no feature partitions under {parts}: run bench.bench_scale --rows {int(args.rows)} --paths cluster --phases features first")
    train, test = split_by_days(pl.read_parquet(files), args.test_days)
    print(f"{train.height:,} training rows, {test.height:,} test rows (last {args.test_days} days); {args.rounds} rounds", flush=True)
    results = []
    for fraction in (float(f) for f in args.fractions.split(",")):
        model, fit = fit_sampled(train, fraction, args.rounds, args.threads)
        row = {"fraction": fraction, **fit, **evaluate(model, test)}
        results.append(row)
        print(f"  fraction {fraction:<5g} {row['trained_rows']:>10,} rows  fit {row['fit_cpu_seconds']:6.1f} CPU-s  ROC-AUC {row['roc_auc_inspected']:.4f}"
              f"  AP {row['average_precision_inspected']:.4f}  recall@1% {row['recall_at_1pct']:.4f} of {row['test_seizures']} seizures", flush=True)
    out = OUT / f"negative-sampling-{root.name}.json"
    out.write_text(json.dumps({"rows": int(args.rows), "rounds": args.rounds, "test_days": args.test_days, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
