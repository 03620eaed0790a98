"""Targeting quality metrics: one implementation, used by training, comparison, backtests and benchmarks.

For a batch of N items and inspection rate n%, ``k = floor(N * n / 100)``; the
top ``k`` by score are inspected, ties broken deterministically (by the given
tie-break key, ascending). Then:

- ``precision@n`` = illicit in top k / k;
- ``recall@n`` = illicit in top k / all illicit;
- ``value@n`` = share of the total seized quantity (or value) in the top k;
- ``oracle_precision@n`` = min(#illicit / k, 1); ``norm_precision@n`` = precision / oracle precision;
- ``lift@n`` = precision / base rate.

Ranking-free metrics: PR-AUC (average precision), ROC-AUC, Brier score and a
reliability curve for probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

RATES: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)


def rate_label(rate: float) -> str:
    """``1.0 -> "1"``, ``0.5 -> "0.5"`` (used in metric names such as ``precision@1``)."""
    return f"{rate:g}"


def top_k(n: int, rate: float) -> int:
    """``floor(n * rate / 100)``."""
    return int(math.floor(n * rate / 100.0 + 1e-9))


def ranking_order(scores: np.ndarray, tiebreak: Sequence[str] | np.ndarray | None = None) -> np.ndarray:
    """Indices sorted by score descending, ties by ``tiebreak`` ascending (then by position).

    Raises ``ValueError`` on non-finite scores (NaN sorts above +inf in some
    libraries and would silently corrupt a ranking).
    """
    scores = np.asarray(scores, dtype=float)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite (found NaN or infinity)")
    keys = [np.arange(len(scores))]
    if tiebreak is not None:
        tb = np.asarray(tiebreak)
        _, tb_rank = np.unique(tb, return_inverse=True)
        keys.insert(0, tb_rank)
    keys.insert(0, -scores)
    return np.lexsort(tuple(reversed(keys)))


def _check_lengths(n: int, **arrays) -> None:
    """Every given array has one entry per score (a shorter or longer one would silently misalign the ranking)."""
    for name, array in arrays.items():
        if array is not None and len(array) != n:
            raise ValueError(f"{name} has {len(array)} entries but scores has {n}")


@dataclass(frozen=True)
class RankingReport:
    """Metrics of one score on one evaluation stream."""

    n: int
    positives: int
    metrics: dict[str, float]

    def row(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in self.metrics.items()}


def ranking_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    values: np.ndarray | None = None,
    tiebreak: Sequence[str] | np.ndarray | None = None,
    rates: Sequence[float] = RATES,
    probabilities: bool = False,
) -> RankingReport:
    """All targeting metrics of ``scores`` against binary ``labels``.

    ``values`` (seized quantity or value per item, 0 for non-illicit) enables
    ``value@n``. ``probabilities`` adds the Brier score. Metrics that are
    undefined (no positives, or one class only) are NaN.
    """
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    n = len(scores)
    _check_lengths(n, labels=labels, values=values, tiebreak=tiebreak)
    positives = int(labels.sum())
    order = ranking_order(scores, tiebreak)
    ranked_labels = labels[order]
    cum_hits = np.cumsum(ranked_labels)
    base_rate = positives / n if n else float("nan")
    out: dict[str, float] = {"n": float(n), "positives": float(positives), "base_rate": base_rate}
    if values is not None:
        ranked_values = np.asarray(values, dtype=float)[order]
        cum_values = np.cumsum(ranked_values)
        total_value = float(cum_values[-1]) if n else 0.0
    for rate in rates:
        k = top_k(n, rate)
        tag = rate_label(rate)
        hits = float(cum_hits[k - 1]) if k > 0 else 0.0
        precision = hits / k if k > 0 else float("nan")
        oracle = min(positives / k, 1.0) if k > 0 else float("nan")
        out[f"k@{tag}"] = float(k)
        out[f"precision@{tag}"] = precision
        out[f"recall@{tag}"] = hits / positives if positives else float("nan")
        out[f"oracle_precision@{tag}"] = oracle
        out[f"norm_precision@{tag}"] = precision / oracle if k > 0 and oracle > 0 else float("nan")
        out[f"lift@{tag}"] = precision / base_rate if k > 0 and base_rate > 0 else float("nan")
        if values is not None:
            out[f"value@{tag}"] = float(cum_values[k - 1]) / total_value if k > 0 and total_value > 0 else float("nan")
    both_classes = 0 < positives < n
    out["pr_auc"] = float(average_precision_score(labels, scores)) if both_classes else float("nan")
    out["roc_auc"] = float(roc_auc_score(labels, scores)) if both_classes else float("nan")
    if probabilities:
        out["brier"] = float(brier_score_loss(labels, np.clip(scores, 0, 1))) if n else float("nan")
    return RankingReport(n=n, positives=positives, metrics=out)


def reliability_curve(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 10) -> pl.DataFrame:
    """Mean predicted probability vs observed frequency per quantile bin (for the reliability plot)."""
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels, dtype=float)
    if len(p) == 0:
        return pl.DataFrame(schema={"bin": pl.Int64, "mean_predicted": pl.Float64, "observed": pl.Float64, "n": pl.Int64})
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    frame = pl.DataFrame({"bin": idx, "p": p, "y": y})
    return frame.group_by("bin").agg(pl.col("p").mean().alias("mean_predicted"), pl.col("y").mean().alias("observed"), pl.len().cast(pl.Int64).alias("n")).sort("bin")


def lift_curve(scores: np.ndarray, labels: np.ndarray, *, tiebreak=None, points: int = 100) -> pl.DataFrame:
    """Share inspected vs share of illicit found (cumulative gains), for the lift plot."""
    labels = np.asarray(labels, dtype=bool)
    _check_lengths(len(scores), labels=labels, tiebreak=tiebreak)
    order = ranking_order(scores, tiebreak)
    hits = np.cumsum(labels[order])
    n = len(labels)
    positives = max(int(labels.sum()), 1)
    ks = np.unique(np.linspace(1, n, min(points, n)).astype(int)) if n else np.array([], dtype=int)
    return pl.DataFrame({"share_inspected": ks / max(n, 1), "share_found": hits[ks - 1] / positives if n else []})


def source_hit_rates(outcomes: pl.DataFrame) -> pl.DataFrame:
    """Hit rate per selection source: one row per source with ``inspections``, ``seizures``, ``hit_rate``, ``seized_kg``.

    ``outcomes`` has the inspection-outcome contract's ``manifest_id``,
    ``inspected_at``, ``selection_source``, ``result`` and ``quantity_kg``; a
    manifest examined several times (NII, then physical) counts once, under
    the source of its first exam, and as a seizure if any exam seized.
    Sources in name order; ``hit_rate`` is null for a source without
    inspections (never the case for a listed source).
    """
    per_manifest = outcomes.group_by("manifest_id").agg(
        pl.col("selection_source").sort_by("inspected_at").first(),
        (pl.col("result") == "SEIZURE").any().alias("seized"),
        pl.col("quantity_kg").filter(pl.col("result") == "SEIZURE").sum().fill_null(0.0).alias("seized_kg"),
    )
    return (
        per_manifest.group_by("selection_source")
        .agg(pl.len().alias("inspections"), pl.col("seized").sum().alias("seizures"), pl.col("seized_kg").sum())
        .with_columns((pl.col("seizures") / pl.col("inspections")).alias("hit_rate"))
        .select("selection_source", "inspections", "seizures", "hit_rate", "seized_kg")
        .sort("selection_source")
    )
