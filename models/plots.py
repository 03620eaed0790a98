"""PNG plots for training runs: feature importance, precision-recall, lift (cumulative gains), reliability."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from models.metrics import lift_curve, reliability_curve  # noqa: E402


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def feature_importance_plot(importance: pl.DataFrame, path: Path, *, top: int = 25) -> Path:
    """Horizontal bars of total gain for the ``top`` features (``importance``: feature, gain)."""
    data = importance.sort("gain", descending=True).head(top).reverse()
    fig, ax = plt.subplots(figsize=(7, 0.28 * data.height + 1.2))
    ax.barh(data["feature"].to_list(), data["gain"].to_list(), color="#2f6f9f")
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance")
    return _save(fig, path)


def pr_curve_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *, title: str) -> Path:
    """Precision-recall curves of several scorers on one stream (``curves``: name -> (scores, labels))."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (scores, labels) in curves.items():
        if labels.sum() == 0:
            continue
        precision, recall, _ = precision_recall_curve(labels, scores)
        ax.plot(recall, precision, label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def lift_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *, title: str, max_share: float = 0.2) -> Path:
    """Cumulative gains: share of illicit found vs share of containers inspected (up to ``max_share``)."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, (scores, labels) in curves.items():
        if labels.sum() == 0:
            continue
        curve = lift_curve(scores, labels, points=400)
        keep = curve.filter(pl.col("share_inspected") <= max_share)
        ax.plot(keep["share_inspected"] * 100, keep["share_found"] * 100, label=name)
    ax.plot([0, max_share * 100], [0, max_share * 100], ":", color="grey", label="random")
    ax.set_xlabel("% of containers inspected")
    ax.set_ylabel("% of illicit containers found")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def reliability_plot(probabilities: np.ndarray, labels: np.ndarray, path: Path, *, title: str) -> Path:
    curve = reliability_curve(probabilities, labels, bins=10)
    fig, ax = plt.subplots(figsize=(5, 5))
    top = max(float(curve["mean_predicted"].max() or 0), float(curve["observed"].max() or 0), 1e-3) if curve.height else 1.0
    ax.plot([0, top], [0, top], ":", color="grey")
    ax.plot(curve["mean_predicted"], curve["observed"], "o-")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed seizure rate")
    ax.set_title(title)
    return _save(fig, path)


def calibration_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *, title: str, bins: int = 15) -> Path:
    """Reliability diagram of several probability columns on one stream (``curves``: name -> (probabilities, labels)).

    Bins of equal width in log probability (:func:`models.calibration.reliability_table`, ``spacing="log"``), log-log axes
    (findings are rare: most probabilities are far below 1%), each point
    annotated with its bin's rows and positives (``n/k``); a bin with no
    positive is drawn on the bottom edge. The diagonal is perfect calibration.
    """
    from models.calibration import reliability_table

    fig, ax = plt.subplots(figsize=(6.5, 6))
    lo, hi = 1.0, 1e-4
    tables = {name: reliability_table(p, y, bins=bins, spacing="log") for name, (p, y) in curves.items() if len(p)}
    for table in tables.values():
        positive = table.filter(pl.col("mean_predicted") > 0)
        if positive.height:
            lo = min(lo, float(positive["mean_predicted"].min()), float(positive.filter(pl.col("observed") > 0)["observed"].min() or 1.0))
            hi = max(hi, float(positive["mean_predicted"].max()), float(positive["observed"].max()))
    lo, hi = max(lo / 2, 1e-6), min(hi * 1.5, 1.0)
    ax.plot([lo, hi], [lo, hi], ":", color="grey", label="perfect calibration")
    for name, table in tables.items():
        x = np.clip(table["mean_predicted"].to_numpy(), lo, hi)
        y = np.clip(table["observed"].to_numpy(), lo, hi)
        (line,) = ax.plot(x, y, "o-", label=name)
        for xi, yi, n, k in zip(x, y, table["n"].to_list(), table["positives"].to_list(), strict=True):
            ax.annotate(f"{n}/{k}", (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize=6, color=line.get_color())
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("mean predicted probability of a finding (bin)")
    ax.set_ylabel("observed rate (bin; bottom edge: none)")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)
