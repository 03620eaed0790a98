"""Small pure functions of the backtest (capacities, PPS sampling, UCB weights, reviewed alerts) and the selection of one port-period through the kernel."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl

from features.candidates import Direction
from targeting.lists import ListRequest
from targeting import kernel
from targeting.policy import PolicyConfig
from targeting.evaluation.backtest.config import BacktestConfig, BacktestError, Strategy


# --------------------------------------------------------------------------- small pure functions


@contextmanager
def _timed(timers: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall time of the block to ``timers[key]``."""
    began = time.perf_counter()
    try:
        yield
    finally:
        timers[key] = timers.get(key, 0.0) + time.perf_counter() - began


def round_half_up(value: float) -> int:
    """``value`` rounded half up, computed in decimal (so 2.5 is 3 and 0.1 x 25 is 3)."""
    return int(Decimal(repr(float(value))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def capacity_for(arrivals: int, share: float) -> int:
    """Inspections for ``arrivals`` candidates: ``arrivals x share`` rounded half up (in decimal), at least 1 when there are arrivals.

    >>> capacity_for(2000, 0.01), capacity_for(150, 0.01), capacity_for(0, 0.01)
    (20, 2, 0)
    """
    if arrivals <= 0:
        return 0
    return max(1, int((Decimal(int(arrivals)) * Decimal(repr(float(share)))).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def pps_inclusion(weights: np.ndarray, m: int) -> np.ndarray:
    """Inclusion probabilities proportional to ``weights`` for a sample of ``m`` items, capped at 1.

    ``pi_i = min(1, c * w_i)`` with ``c`` such that ``sum(pi) = m`` (items whose
    share would exceed 1 are taken with certainty and the rest is rescaled).
    Weights must be finite and non-negative with at least ``m`` positive ones.

    >>> pps_inclusion(np.array([1.0, 1.0, 2.0, 8.0]), 2).tolist()
    [0.25, 0.25, 0.5, 1.0]
    """
    w = np.asarray(weights, dtype=float)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise BacktestError("sampling weights must be finite and non-negative")
    if m < 0 or m > int(np.count_nonzero(w)):
        raise BacktestError(f"cannot sample {m} items from {int(np.count_nonzero(w))} with positive weight")
    pi = np.zeros(len(w))
    if m == 0:
        return pi
    fixed = np.zeros(len(w), dtype=bool)
    while True:
        free = ~fixed
        remaining = m - int(fixed.sum())
        if remaining == 0:
            pi[free] = 0.0
            break
        pi[free] = remaining * w[free] / w[free].sum()
        over = free & (pi >= 1.0)
        if not over.any():
            break
        pi[over] = 1.0
        fixed |= over
    return pi


def systematic_sample(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a randomised systematic sample with inclusion probabilities ``pi`` (sum an integer, each <= 1).

    Items are put in random order, then the points ``u, u + 1, ...`` (``u``
    uniform in [0, 1)) pick the items whose cumulative probability interval
    contains them: item ``i`` is drawn with probability exactly ``pi[i]`` and
    the sample has exactly ``sum(pi)`` distinct items. Returned sorted.
    """
    pi = np.asarray(pi, dtype=float)
    m = int(round(pi.sum()))
    if m == 0:
        return np.empty(0, dtype=np.int64)
    if np.any(pi > 1.0 + 1e-12) or abs(pi.sum() - m) > 1e-6:
        raise BacktestError("inclusion probabilities must be <= 1 and sum to an integer")
    order = rng.permutation(len(pi))
    cumulative = np.cumsum(pi[order])
    cumulative *= m / cumulative[-1]
    points = rng.random() + np.arange(m)
    picked = order[np.searchsorted(cumulative, points, side="right")]
    return np.sort(picked)


def ucb_weights(scores: np.ndarray, inspections: np.ndarray, *, prior_rate: float, kappa: float) -> np.ndarray:
    """Exploration weights of the ``ucb`` strategy: an upper confidence bound on each candidate's seizure rate.

    ``w = p + kappa * sqrt(r (1 - r) / (1 + n))`` where ``p`` is the model
    score, ``r`` the prior seizure rate of an inspection (fitted with the
    feature statistics) and ``n`` the number of inspections recorded, strictly
    before the decision time, of the candidate's least-known context (the
    smaller of its lane's and its HS-heading-by-origin-country's counts).
    Containers from contexts the unit rarely inspected (new ports of loading,
    new cover loads: where displaced traffickers go) get the largest bonus.
    """
    p = np.asarray(scores, dtype=float)
    n = np.maximum(np.asarray(inspections, dtype=float), 0.0)
    r = min(max(float(prior_rate), 1e-6), 1 - 1e-6)
    return p + kappa * np.sqrt(r * (1.0 - r) / (1.0 + n))


def reviewed_alerts(alerts: pl.DataFrame, alert_days: int | None) -> pl.DataFrame:
    """Alerts as the unit keeps them: PARTY alerts active at most ``alert_days`` days from ``valid_from``.

    A PARTY alert's ``valid_to`` becomes ``min(valid_to, valid_from +
    alert_days)`` (an open-ended one gets that end too); other kinds (container
    tip-offs, standing HS-code alerts) and every alert when ``alert_days`` is
    ``None`` are unchanged.
    """
    if alert_days is None:
        return alerts
    cap = pl.col("valid_from") + timedelta(days=alert_days)
    shorten = (pl.col("kind") == "PARTY") & (pl.col("valid_to").is_null() | (pl.col("valid_to") > cap))
    return alerts.with_columns(pl.when(shorten).then(cap).otherwise(pl.col("valid_to")).alias("valid_to"))


def unlabelled_sample(manifest_ids: Sequence[str], share: float, *, seed: int, day: int) -> list[str]:
    """The uninspected candidates of ``day`` kept as training negatives: a seeded Bernoulli(``share``) sample, in id order.

    Depends only on the ids, the seed and the day (never on labels), so the
    sample is the same whoever computes it.
    """
    ids = sorted(manifest_ids)
    keep = np.random.default_rng([seed, 3, day]).random(len(ids)) < share
    return [i for i, k in zip(ids, keep) if k]


# --------------------------------------------------------------------------- selection of one port-period


def plan_port_selection(
    strategy: Strategy,
    candidates: pl.DataFrame,
    scores: np.ndarray | None,
    *,
    alert_hits: pl.DataFrame,
    rule_hits: pl.DataFrame,
    port: str,
    list_date: date,
    capacity: int,
    seed: int,
    config: BacktestConfig,
    warmup: bool = False,
    weights: np.ndarray | None = None,
    direction: Direction = Direction.IMPORT,
    integrity: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The inspection list of one port and list period under ``strategy``, built by the kernel (:func:`targeting.kernel.selection`).

    Parameters
    ----------
    strategy
        What to run. ``warmup=True`` runs the warm-up behaviour instead
        (watchlist, rules, a ``warmup_random_share`` random slice), whatever
        the strategy.
    candidates
        ``manifest_id`` (unique) and ``container_number`` of the port's candidates.
    scores
        Model probabilities aligned with ``candidates`` (``None``: no model; all 0).
    alert_hits, rule_hits
        :func:`features.intel.match_alerts` and :func:`features.rules.language.evaluate_rules` output for the candidates.
    port, list_date, capacity, seed
        The request (``seed`` seeds the random slice).
    config
        ``rule_share``, ``physical_share``, ``warmup_random_share``.
    direction
        The population listed (recorded in the request; the seed is the caller's).
    weights
        ``ucb`` only: exploration weights aligned with ``candidates``
        (:func:`ucb_weights`); the policy's RANDOM slots are re-drawn among the
        candidates the policy did not select, with probability proportional to
        them (:func:`pps_inclusion`, :func:`systematic_sample`).
    integrity
        Model strategies: ``integrity_surprisal`` and ``integrity_unusual`` aligned with
        ``candidates`` under the current model's norms (``None``: no norms yet, no INTEGRITY
        slots); the request's ``integrity_share`` is ``config.integrity_share``.

    Returns
    -------
    pl.DataFrame
        One row per selected item in rank order: ``rank``, ``manifest_id``,
        ``container_number``, ``score``, ``source`` (WATCHLIST, RULE, MODEL,
        INTEGRITY, RANDOM), ``selection_probability`` (1.0 except for RANDOM: the
        probability the item had to be drawn) and ``exam_type``.
    """
    kind = "rules" if warmup else strategy.kind
    integrity_share = 0.0
    if kind == "random":  # no model, every slot drawn at random
        values, share, rule_share = None, 1.0, 0.0
    elif kind == "rules":  # no model: watchlist, a random slice, rule hits, and the rest at random
        values, share, rule_share = None, (config.warmup_random_share if warmup else 0.0), 1.0
    else:
        values = np.zeros(candidates.height) if scores is None else np.asarray(scores, dtype=float)
        share, rule_share = strategy.exploration_share, config.rule_share
        integrity_share = config.integrity_share if integrity is not None else 0.0
    physical = min(capacity, round_half_up(capacity * config.physical_share))
    request = ListRequest(
        port=port, list_date=list_date, capacity=capacity, exploration_share=share, nii_capacity=capacity - physical,
        physical_capacity=physical, seed=seed, direction=direction, integrity_share=integrity_share,
    )
    prepared = kernel.Prepared(candidates.select("manifest_id", "container_number"), None, values, alert_hits, integrity=integrity if integrity_share else None)
    selection = kernel.selection(prepared, rule_hits, request, PolicyConfig(exploration_share=share, max_rule_share=rule_share))
    rows = selection.selected.select("rank", "manifest_id", "container_number", "score", "source", "selection_probability", "exam_type")
    if kind == "ucb" and weights is not None:
        rows = _redraw_exploration(rows, selection.deferred, candidates, np.asarray(weights, dtype=float), seed)
    return rows


def _redraw_exploration(rows: pl.DataFrame, deferred: pl.DataFrame, candidates: pl.DataFrame, weights: np.ndarray, seed: int) -> pl.DataFrame:
    """Replace the policy's uniform RANDOM picks by a PPS draw (same count, same exam types) from the same pool."""
    drawn = rows.filter(pl.col("source") == "RANDOM")
    if drawn.height == 0:
        return rows
    weight_of = candidates.select("manifest_id", pl.Series("weight", weights, dtype=pl.Float64))
    pool = (
        pl.concat([drawn.select("manifest_id", "container_number", "score"), deferred.select("manifest_id", "container_number", "score")])
        .join(weight_of, on="manifest_id", how="left")
        .sort("manifest_id")
    )
    pi = pps_inclusion(pool.get_column("weight").to_numpy(), drawn.height)
    picked = systematic_sample(pi, np.random.default_rng([seed, 4]))
    chosen = (
        pool.with_columns(pl.Series("selection_probability", pi))[picked.tolist()]
        .sort(["score", "container_number", "manifest_id"], descending=[True, False, False])
        .with_columns(pl.lit("RANDOM").alias("source"), pl.Series("exam_type", drawn.get_column("exam_type").to_list()))
    )
    kept = rows.filter(pl.col("source") != "RANDOM")
    chosen = chosen.with_columns((pl.int_range(chosen.height, dtype=pl.Int64) + kept.height + 1).alias("rank"))
    return pl.concat([kept, chosen.select(kept.columns)], how="vertical")
