"""Drift figures per pattern on scored or selected rows, against the simulator's hidden truth.

Every function reads a frame with one row per candidate: ``day`` (days from
the world's start), ``port``, ``direction``, ``manifest_id``, ``illicit``
(Boolean, hidden truth: contraband an exam at that port could find) and
``pattern`` (the truth pattern of an illicit row: the method name, or
``"<scenario>:new"`` for a scenario's changed shipments; null when clean);
scored frames have a ``score`` column, selected frames a Boolean
``selected`` (and ``seized``, for days to the first seizure).

Rankings and normalised precision come from :func:`models.metrics.ranking_metrics`
(ties broken by ``manifest_id``): for a batch of ``N`` rows at rate ``n`` %,
the top ``k = floor(N n / 100)``; recall of a pattern is the share of that
pattern's rows in the top ``k``; normalised precision is precision over the
oracle's ``min(#illicit / k, 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from models.metrics import ranking_metrics, ranking_order, rate_label, top_k

ALL = "all"
"""The pseudo-pattern of every illicit row."""
WINDOW_RATES = (1.0, 5.0)


def _labels(frame: pl.DataFrame, pattern: str) -> np.ndarray:
    if pattern == ALL:
        return frame.get_column("illicit").fill_null(False).to_numpy().astype(bool)
    return (frame.get_column("pattern") == pattern).fill_null(False).to_numpy().astype(bool)


def patterns_of(frame: pl.DataFrame, extra: Iterable[str | None] = ()) -> list[str]:
    """``all``, then ``extra`` patterns (when not ``None``), then every other pattern present, sorted."""
    present = sorted(p for p in frame.get_column("pattern").drop_nulls().unique().to_list())
    wanted = [p for p in extra if p is not None]
    return [ALL, *wanted, *(p for p in present if p not in wanted)]


def window_metrics(
    frame: pl.DataFrame, patterns: Sequence[str], *, rates: Sequence[float] = WINDOW_RATES, explore: str | None = None, share: float = 0.0
) -> list[dict]:
    """Pooled ranking of a scored window: per pattern, ``rows`` (its illicit rows), ``recall@n`` for each rate; for ``all`` also ``norm_precision@n`` and ``precision@n``.

    The window is one batch (all its days and ports ranked together), as the
    test period of :func:`models.training.evaluate_scores` is. A pattern
    without a row in the window gets ``rows`` 0 and no recall. With ``share > 0``
    the top ``n`` % is :func:`sliced_top` over the window (``share`` of it by
    the ``explore`` column, the rest by score) instead of the score alone.
    """
    scores = frame.get_column("score").to_numpy()
    ids = frame.get_column("manifest_id").to_numpy()
    sliced = {}
    if share > 0 and frame.height:
        for rate in rates:
            chosen = sliced_top(frame, rate, explore=explore, share=share, per_day=False).get_column("selected").to_numpy()
            sliced[rate] = (chosen.astype(float), 100.0 * chosen.sum() / frame.height)
    out = []
    for pattern in patterns:
        labels = _labels(frame, pattern)
        out.append({"pattern": pattern, "metric": "rows", "value": float(labels.sum())})
        if frame.height == 0 or labels.sum() == 0:
            continue
        report = ranking_metrics(scores, labels, tiebreak=ids, rates=rates) if not sliced else None
        for rate in rates:
            tag = rate_label(rate)
            if sliced:
                chosen, effective = sliced[rate]
                found = ranking_metrics(chosen, labels, tiebreak=ids, rates=(effective,)).metrics
                values = {name: found[f"{name}@{rate_label(effective)}"] for name in ("recall", "norm_precision", "precision")}
            else:
                values = {name: report.metrics[f"{name}@{tag}"] for name in ("recall", "norm_precision", "precision")}
            out.append({"pattern": pattern, "metric": f"recall@{tag}", "value": values["recall"]})
            if pattern == ALL:
                for name in ("norm_precision", "precision"):
                    out.append({"pattern": pattern, "metric": f"{name}@{tag}", "value": values[name]})
    return out


def daily_top(frame: pl.DataFrame, rate: float = 1.0) -> pl.DataFrame:
    """``frame`` with ``selected``: the top ``floor(N rate / 100)`` rows by score of each day's list (per ``day``, ``port`` and ``direction``).

    The frozen model's daily lists at a capacity of ``rate`` % of each list's candidates, with no
    other selection source (ties by ``manifest_id``). Row order is kept.
    """
    chosen = np.zeros(frame.height, dtype=bool)
    indexed = frame.with_row_index("__row")
    for _, group in indexed.group_by(["day", "port", "direction"], maintain_order=True):
        k = top_k(group.height, rate)
        if k == 0:
            continue
        order = ranking_order(group.get_column("score").to_numpy(), group.get_column("manifest_id").to_numpy())
        chosen[group.get_column("__row").to_numpy()[order[:k]]] = True
    return frame.with_columns(pl.Series("selected", chosen))


def _top_with_slice(scores: np.ndarray, explore: np.ndarray, ids: np.ndarray, rate: float, share: float) -> np.ndarray:
    """Positions chosen from one list: ``k - e`` by score, then ``e = exploration_slots(k, share)`` by ``explore`` among the rest.

    Only rows with a finite ``explore`` value may fill the slice (NaN: not eligible, as a container whose trace is
    not unusual is not for the product's INTEGRITY slots); slots no eligible row fills go back to the score.
    """
    from targeting.policy import exploration_slots

    k = top_k(len(scores), rate)
    e = min(exploration_slots(k, share), k)
    by_score = ranking_order(scores, ids)
    rest = np.setdiff1d(np.arange(len(scores)), by_score[: k - e])
    eligible = rest[np.isfinite(explore[rest])]
    by_explore = eligible[ranking_order(explore[eligible], ids[eligible])[:e]] if e else eligible[:0]
    after = by_score[k - e :]
    refill = after[~np.isin(after, by_explore)][: e - len(by_explore)]
    return np.concatenate([by_score[: k - e], by_explore, refill])


def sliced_top(frame: pl.DataFrame, rate: float = 1.0, *, explore: str, share: float, per_day: bool = True) -> pl.DataFrame:
    """``frame`` with ``selected``: lists of ``floor(N rate / 100)`` rows, ``share`` of them (rounded half up) reserved for the rows
    with the highest ``explore`` value that the score did not already take (an exploration slice aimed at unusual traffic;
    null/NaN ``explore``: not eligible, and a slot nothing eligible fills goes back to the score).

    ``per_day``: one list per ``day``, ``port`` and ``direction`` (the daily lists); otherwise one list over the
    whole frame (the pooled ranking of :func:`window_metrics`). ``share = 0`` is :func:`daily_top` (or the pooled top).
    Ties by ``manifest_id``; row order is kept.
    """
    chosen = np.zeros(frame.height, dtype=bool)
    indexed = frame.with_row_index("__row")
    groups = indexed.group_by(["day", "port", "direction"], maintain_order=True) if per_day else [(None, indexed)]
    for _, group in groups:
        picks = _top_with_slice(
            group.get_column("score").to_numpy(), group.get_column(explore).to_numpy().astype(float),
            group.get_column("manifest_id").to_numpy(), rate, share,
        )
        chosen[group.get_column("__row").to_numpy()[picks]] = True
    return frame.with_columns(pl.Series("selected", chosen))


def selection_metrics(frame: pl.DataFrame, patterns: Sequence[str], *, prefix: str = "list_") -> list[dict]:
    """Figures of a selected set (daily lists) over a window: per pattern ``{prefix}recall`` (selected rows of the pattern / all of them); for ``all`` also ``{prefix}norm_precision``.

    Normalised precision of the selection against the oracle at the same
    capacity (selected rows score 1, the rest 0, the rate is the selected
    share), as the backtest's report computes it.
    """
    out = []
    selected = frame.get_column("selected").to_numpy().astype(bool)
    for pattern in patterns:
        labels = _labels(frame, pattern)
        if labels.sum() == 0:
            continue
        out.append({"pattern": pattern, "metric": f"{prefix}recall", "value": float((labels & selected).sum() / labels.sum())})
        if pattern == ALL and selected.any():
            rate = 100.0 * selected.sum() / frame.height
            report = ranking_metrics(selected.astype(float), labels, tiebreak=frame.get_column("manifest_id").to_numpy(), rates=(rate,))
            out.append({"pattern": pattern, "metric": f"{prefix}norm_precision", "value": report.metrics[f"norm_precision@{rate_label(rate)}"]})
    return out


def days_to_first(frame: pl.DataFrame, pattern: str, change_day: int, *, column: str) -> float:
    """Days from ``change_day`` to the first row of ``pattern`` with ``column`` true, on or after the change (0: on the change day); NaN when none."""
    hits = frame.filter((pl.col("pattern") == pattern) & pl.col(column) & (pl.col("day") >= change_day))
    return float(hits.get_column("day").min() - change_day) if hits.height else math.nan


def cumulative_recall(frame: pl.DataFrame, pattern: str, change_day: int, window_days: int) -> list[float]:
    """Recall of ``pattern`` by the selected rows over days ``[change_day, change_day + d]``, for ``d = 0 .. window_days - 1`` (NaN before its first row)."""
    rows = frame.filter((pl.col("pattern") == pattern) & (pl.col("day") >= change_day) & (pl.col("day") < change_day + window_days))
    per_day = rows.group_by("day").agg(pl.len().alias("n"), pl.col("selected").sum().alias("hit"))
    n = np.zeros(window_days)
    hit = np.zeros(window_days)
    for day, count, found in per_day.iter_rows():
        n[day - change_day], hit[day - change_day] = count, found
    total, found = np.cumsum(n), np.cumsum(hit)
    return [float(f / t) if t > 0 else math.nan for f, t in zip(found, total)]
