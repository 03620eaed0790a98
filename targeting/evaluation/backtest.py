"""Time-replay backtest: inspection strategies on a simulated world that reacts to their seizures.

Customs targeting is evaluated honestly only by replaying time: each list
period (a day by default), for each port, the strategy builds the inspection
list with the real selection policy (:func:`targeting.policy.select` on
watchlist hits from :func:`features.intel.match_alerts`, rule hits from
:func:`features.rules.language.evaluate_rules` and model scores) at a capacity given as
a share of arrivals; the simulated world examines the selected containers and
reveals outcomes **only for them**; the model is retrained on a schedule on
what has been revealed so far. Trafficking organisations adapt after each
seizure (:mod:`targeting.sim.trafficking`), so every strategy meets the
drift its own seizures cause.

Time semantics. Day ``d`` is the arrival day ``start + d``; its list is
decided at ``start + d`` 00:00 UTC (the decision time) from data available
strictly before it: manifests seen so far (the world reveals each day's
arrivals on that day), container events generated so far, the outcomes the
strategy itself revealed, and the alerts issued so far. A model retrained at
the start of day ``d`` learns from feature rows with decision times in
``[d - train_window_days, d)`` and from outcomes recorded (``inspected_at``)
strictly before ``d`` 00:00 UTC. With ``period_days > 1`` the unit decides
once per period over all of the period's arrivals (capacity pooled), each row
still scored at its own arrival day, and outcomes return at the end of the
period.

Strategies (see :func:`parse_strategy`): ``rules`` (watchlist, then rule hits
by score; slots the rules leave are drawn at random), ``random`` (watchlist,
then a uniform random draw), ``model`` / ``model+N`` (the policy with the
model's scores and ``N`` % of the capacity drawn uniformly at random), and
``ucb`` / ``ucb+N`` (as ``model+N`` but the exploration slots are drawn with
probability proportional to an upper confidence bound, see
:func:`ucb_weights`, with exact inclusion probabilities). Before the first
model exists (``warmup_days``) the model strategies run the historical
behaviour: watchlist, rule hits, and a random slice of
``warmup_random_share`` of the capacity.

Retraining uses the engine's own code path: feature statistics from
:func:`features.stats.fit_stats` (fitted once, when the warm-up ends, and kept
so every cached feature row stays encoded with the same vocabularies), features
from :func:`features.pipeline.build_features` with the snapshot
:class:`~features.entity.EntityState` of each decision time, and
:class:`models.risk_model.RiskModel` with uninspected rows as weighted
negatives (a seeded sample of them, re-weighted by the inverse sampling
share). Each day's features are computed once, at that day's decision time,
and cached for the rows training can use (the selected ones and the sample of
the others); retraining reads the cache (:func:`training_frame`).

Evaluation against the world's hidden truth (never a strategy input) uses
:func:`models.metrics.ranking_metrics`: per week and over the evaluation
period (the days after the warm-up), precision, recall and normalised
precision of the selected set against the oracle at the same capacity.

Deterministic for a seed: the world draws from its own generator; every
strategy draw (random slices, unlabelled samples, event timings) comes from a
generator seeded by ``(seed, strategy, port, day)``; LightGBM trains
deterministically. Model strategies share one warm-up run per seed (the world
is forked when the warm-up ends), which gives exactly what separate runs give.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import polars as pl

from features import clock
from features.candidates import Direction
from features.data.contracts import CONTAINER_EVENTS, INSPECTION_OUTCOMES, MANIFESTS
from features.entity import EntityState, history_rows
from features.history import History, with_derived_columns
from features.parties import ROLES as PARTY_ROLES
from features.intel import match_alerts
from features.pipeline import build_features
from features.registry import categorical_columns, feature_columns
from features.rules.language import RuleProfile, default_rule_profiles, evaluate_rules
from features.stats import FeatureStats, fit_stats
from models.metrics import rate_label, ranking_metrics
from models.risk_model import RiskModel, predict_proba
from targeting.lists import ListRequest
from targeting import kernel
from targeting.policy import PolicyConfig, decision_time, derive_seed
from targeting.sim.trafficking import METHODS
from targeting.sim.voyages import build_events
from targeting.sim.world import DayBatch, World, WorldConfig

__all__ = [
    "DEFAULT_STRATEGIES",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "Strategy",
    "StrategyInspector",
    "StrategyRun",
    "capacity_for",
    "log_to_mlflow",
    "parse_strategies",
    "parse_strategy",
    "format_value",
    "last_weeks_mean",
    "plan_port_selection",
    "pps_inclusion",
    "reviewed_alerts",
    "run_overall",
    "summary_cells",
    "summary_markdown",
    "trainings_frame",
    "run_backtest",
    "summary_table",
    "systematic_sample",
    "training_frame",
    "ucb_weights",
    "unlabelled_sample",
    "weekly_table",
    "write_outputs",
]

DEFAULT_STRATEGIES = "rules,random,model,model+5,model+10,model+20,ucb"
SOURCES = ("WATCHLIST", "RULE", "MODEL", "RANDOM")
CATEGORIES = tuple(sorted({m.category for m in METHODS}))
"""Contraband categories the simulated organisations ship (columns of the summary)."""
ORACLE_COLUMNS = frozenset({"illicit", "category", "org_id", "method", "concealment", "oracle_kg"})
"""Hidden-truth columns that must never reach a training frame."""
EVENT_HISTORY_DAYS = 150
"""Arrival days of container events kept for the event features (their voyage window is ``[etd - 45 d, decision_at)``)."""
LAST_WEEKS = 13
EXPERIMENT = "container-risk-backtest"
DECISION_SCHEMA = {
    "day": pl.Int64,
    "port": pl.String,
    "manifest_id": pl.String,
    "source": pl.String,
    "selection_probability": pl.Float64,
    "score": pl.Float64,
    "exam_type": pl.String,
}


class BacktestError(ValueError):
    """A backtest was configured or called inconsistently."""


# --------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Strategy:
    """An inspection strategy.

    Attributes
    ----------
    name
        As given on the command line (``rules``, ``random``, ``model``, ``model+10``, ``ucb``...).
    kind
        ``rules``, ``random``, ``model`` or ``ucb``.
    exploration_share
        Share of the capacity drawn for exploration (0..1): uniformly for
        ``model``, by upper confidence bound for ``ucb``; 1.0 for ``random``,
        0 for ``rules``.
    """

    name: str
    kind: str
    exploration_share: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("rules", "random", "model", "ucb"):
            raise BacktestError(f"unknown strategy kind {self.kind!r}")
        if not 0.0 <= self.exploration_share <= 1.0:
            raise BacktestError(f"exploration share of {self.name!r} must be in [0, 1], got {self.exploration_share}")

    @property
    def uses_model(self) -> bool:
        """Whether the strategy scores candidates with a (retrained) model."""
        return self.kind in ("model", "ucb")


_STRATEGY = re.compile(r"^(model|ucb)(?:\+(\d+(?:\.\d+)?))?$")


def parse_strategy(token: str) -> Strategy:
    """A strategy from its name.

    ``rules``; ``random``; ``model`` (exploration 0) or ``model+N`` (``N`` % of
    the capacity drawn uniformly at random, ``0 < N <= 100``); ``ucb`` (10 %
    exploration drawn by upper confidence bound) or ``ucb+N``.

    >>> parse_strategy("model+10")
    Strategy(name='model+10', kind='model', exploration_share=0.1)
    """
    name = token.strip().lower()
    if name == "rules":
        return Strategy("rules", "rules", 0.0)
    if name == "random":
        return Strategy("random", "random", 1.0)
    match = _STRATEGY.match(name)
    if not match:
        raise BacktestError(f"unknown strategy {token!r}: use rules, random, model, model+N, ucb or ucb+N (N in percent)")
    kind, percent = match.group(1), match.group(2)
    if percent is None:
        return Strategy(name, kind, 0.0 if kind == "model" else 0.10)
    share = float(percent) / 100.0
    if not 0.0 < share <= 1.0:
        raise BacktestError(f"exploration percentage of {token!r} must be in (0, 100]")
    return Strategy(name, kind, share)


def parse_strategies(text: str | Sequence[str]) -> tuple[Strategy, ...]:
    """Strategies from a comma-separated list (or a sequence of names); repeated names are refused."""
    tokens = [t for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not tokens:
        raise BacktestError("give at least one strategy")
    strategies = tuple(parse_strategy(t) for t in tokens)
    names = [s.name for s in strategies]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BacktestError(f"strategy listed twice: {', '.join(repeated)}")
    return strategies


WARMUP = Strategy("warm-up", "rules", 0.0)
"""What the model strategies run until their first model exists (seeds derived from this name, shared by all)."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class BacktestConfig:
    """Parameters of a backtest (the world, the inspection regime, retraining, the model).

    Attributes
    ----------
    days, ports, containers_per_day, start, illicit_rate, organisations, adapt_probability
        The simulated world (:class:`~targeting.sim.world.WorldConfig`).
    capacity_share
        Inspections per port and list period as a share of its arrivals
        (rounded half up, at least 1 when there are arrivals).
    period_days
        Length of a list period in days (1 = daily lists, 7 = weekly).
    retrain_every
        Days between retrainings once the warm-up is over.
    warmup_days
        Days before the first model (rounded up to whole list periods). The
        first model is trained at the start of the first day after them.
    warmup_random_share
        Random share of the capacity during the warm-up (rule hits take the rest).
    rule_share
        For model strategies: most of the capacity rule hits may take
        (:attr:`targeting.policy.PolicyConfig.max_rule_share`).
    physical_share
        Share of the capacity examined physically (the rest by NII scan; the
        policy gives physical exams to the highest-risk items).
    train_window_days
        Trailing window of decision days the model is trained on.
    unlabelled_sample
        Share of the uninspected candidates kept (seeded sample) as training negatives.
    unlabelled_weight, random_weight
        As in :class:`models.training.TrainConfig`: the weight of an
        uninspected row (divided by ``unlabelled_sample`` for the kept ones)
        and of an exploration (RANDOM) inspection.
    ucb_kappa
        Weight of the uncertainty bonus of the ``ucb`` strategy (see :func:`ucb_weights`).
    alert_days
        Watchlist review: the unit keeps a PARTY alert active at most this
        many days from its ``valid_from`` (see :func:`reviewed_alerts`);
        ``None`` keeps alerts as issued. The world issues a year-long party
        alert after many seizures (often naming a legitimate exporter whose
        name a front used), so without a review the mandatory watchlist grows
        with the strategy's own success and crowds out the other sources.
    n_estimators, learning_rate, num_leaves, min_child_samples, num_threads
        LightGBM settings of the retrained model (fixed number of trees, no early stopping).
    """

    days: int = 240
    ports: tuple[str, ...] = ("NLRTM",)
    containers_per_day: int = 2000
    start: date = date(2025, 1, 1)
    illicit_rate: float = 0.004
    organisations: int = 14
    adapt_probability: float = 0.7
    capacity_share: float = 0.01
    period_days: int = 1
    retrain_every: int = 7
    warmup_days: int = 60
    warmup_random_share: float = 0.2
    rule_share: float = 0.5
    physical_share: float = 1.0
    train_window_days: int = 180
    unlabelled_sample: float = 0.05
    unlabelled_weight: float = 0.05
    random_weight: float = 5.0
    ucb_kappa: float = 1.0
    alert_days: int | None = None
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    num_threads: int = 1

    def __post_init__(self) -> None:
        positive = ("days", "containers_per_day", "period_days", "retrain_every", "train_window_days", "n_estimators", "num_leaves", "num_threads")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BacktestError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.warmup_days, bool) or not isinstance(self.warmup_days, int) or self.warmup_days < 1:
            raise BacktestError(f"warmup_days must be a positive integer, got {self.warmup_days!r}")
        if not 0.0 < self.capacity_share <= 0.5:
            raise BacktestError(f"capacity_share must be in (0, 0.5], got {self.capacity_share}")
        for name in ("warmup_random_share", "rule_share", "physical_share", "adapt_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise BacktestError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.unlabelled_sample <= 1.0:
            raise BacktestError(f"unlabelled_sample must be in (0, 1], got {self.unlabelled_sample}")
        if self.period_days > 28:
            raise BacktestError("period_days must be at most 28")
        if self.alert_days is not None and (isinstance(self.alert_days, bool) or not isinstance(self.alert_days, int) or self.alert_days < 1):
            raise BacktestError(f"alert_days must be a positive integer or None, got {self.alert_days!r}")
        if not self.ports:
            raise BacktestError("give at least one port")
        if len(set(self.ports)) != len(self.ports):
            raise BacktestError("a port is listed twice")
        self.world_config(0)  # validates ports, rates and sizes with the world's own checks

    @property
    def model_start(self) -> int:
        """First day scored by a model: ``warmup_days`` rounded up to whole list periods."""
        return -(-self.warmup_days // self.period_days) * self.period_days

    def world_config(self, seed: int) -> WorldConfig:
        """The simulated world of ``seed`` (raises ``ValueError`` on unknown ports or bad rates)."""
        return WorldConfig(
            seed=seed,
            start=self.start,
            days=self.days,
            ports=tuple(self.ports),
            containers_per_day=self.containers_per_day,
            illicit_rate=self.illicit_rate,
            organisations=self.organisations,
            adapt_probability=self.adapt_probability,
        )

    def as_params(self) -> dict[str, str]:
        """Flat string parameters (for tracking)."""
        return {k: (",".join(v) if isinstance(v, tuple) else str(v)) for k, v in asdict(self).items()}


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

    Returns
    -------
    pl.DataFrame
        One row per selected item in rank order: ``rank``, ``manifest_id``,
        ``container_number``, ``score``, ``source`` (WATCHLIST, RULE, MODEL,
        RANDOM), ``selection_probability`` (1.0 except for RANDOM: the
        probability the item had to be drawn) and ``exam_type``.
    """
    kind = "rules" if warmup else strategy.kind
    if kind == "random":  # no model, every slot drawn at random
        values, share, rule_share = None, 1.0, 0.0
    elif kind == "rules":  # no model: watchlist, a random slice, rule hits, and the rest at random
        values, share, rule_share = None, (config.warmup_random_share if warmup else 0.0), 1.0
    else:
        values = np.zeros(candidates.height) if scores is None else np.asarray(scores, dtype=float)
        share, rule_share = strategy.exploration_share, config.rule_share
    physical = min(capacity, round_half_up(capacity * config.physical_share))
    request = ListRequest(
        port=port, list_date=list_date, capacity=capacity, exploration_share=share, nii_capacity=capacity - physical,
        physical_capacity=physical, seed=seed, direction=direction,
    )
    prepared = kernel.Prepared(candidates.select("manifest_id", "container_number"), None, values, alert_hits)
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


# --------------------------------------------------------------------------- the training set


def training_frame(
    rows: pl.DataFrame,
    outcomes: pl.DataFrame,
    *,
    as_of: datetime,
    window_days: int | None = None,
    unlabelled_share: float = 1.0,
    unlabelled_weight: float = 0.05,
    random_weight: float = 5.0,
) -> pl.DataFrame:
    """The rows a model retrained at ``as_of`` learns from, labelled only by revealed outcomes.

    Parameters
    ----------
    rows
        Cached feature rows: :data:`features.pipeline.KEY_COLUMNS`, the feature
        columns and ``selected`` (Boolean: the strategy put the row on its list).
        Hidden-truth columns (:data:`ORACLE_COLUMNS`) or the world's hidden
        ``_``-prefixed columns are refused.
    outcomes
        The outcomes the strategy revealed (INSPECTION_OUTCOMES columns).
    as_of
        Training time (UTC). Rows with ``decision_at < as_of`` (and
        ``>= as_of - window_days`` when a window is given) are used; outcomes
        count only when recorded strictly before ``as_of``.
    unlabelled_share
        Share of the uninspected candidates that ``rows`` keeps (their weight
        is ``unlabelled_weight / unlabelled_share``).
    unlabelled_weight, random_weight
        Weight of an uninspected row (before re-weighting) and of an
        exploration (RANDOM) inspection; other inspections weigh 1.

    Returns
    -------
    pl.DataFrame
        ``manifest_id``, ``decision_at``, ``inspected`` (an outcome was recorded
        before ``as_of``), ``label`` (1 when that outcome is a seizure, else 0:
        uninspected rows are negatives, whatever they carried),
        ``random_slice``, ``weight`` and the feature columns, in ``rows`` order.
        Selected rows whose outcome is still pending at ``as_of`` are left out.
    """
    forbidden = sorted(c for c in rows.columns if c in ORACLE_COLUMNS or c.startswith("_"))
    if forbidden:
        raise BacktestError(f"training rows carry hidden-truth columns {forbidden}: labels may only come from revealed outcomes")
    if "selected" not in rows.columns:
        raise BacktestError("training rows need a 'selected' column (whether the strategy listed the row)")
    cutoff = pl.lit(as_of).cast(rows.schema["decision_at"])
    in_window = pl.col("decision_at") < cutoff
    if window_days is not None:
        in_window &= pl.col("decision_at") >= cutoff - timedelta(days=window_days)
    known = (
        outcomes.filter(pl.col("inspected_at") < pl.lit(as_of).cast(outcomes.schema["inspected_at"]))
        .group_by("manifest_id")
        .agg((pl.col("result") == "SEIZURE").any().alias("_seizure"), (pl.col("selection_source") == "RANDOM").any().alias("_random"))
    )
    labelled = rows.filter(in_window).join(known, on="manifest_id", how="left", maintain_order="left")
    inspected = pl.col("_seizure").is_not_null()
    weight = (
        pl.when(~inspected)
        .then(pl.lit(unlabelled_weight / unlabelled_share))
        .when(pl.col("_random"))
        .then(pl.lit(random_weight))
        .otherwise(pl.lit(1.0))
    )
    return labelled.filter(inspected | ~pl.col("selected")).select(
        "manifest_id",
        "decision_at",
        inspected.alias("inspected"),
        pl.col("_seizure").fill_null(False).cast(pl.Int8).alias("label"),
        pl.col("_random").fill_null(False).alias("random_slice"),
        weight.cast(pl.Float64).alias("weight"),
        *feature_columns(),
    )


# --------------------------------------------------------------------------- what a strategy knows


@dataclass
class KnownHistory:
    """What a strategy's unit knows: manifests and events seen so far, its own revealed outcomes.

    Manifests are kept lean (the columns entity features read, with derived
    columns) per arrival day, rechunked weekly; full contract rows are kept
    only for the warm-up days (for the feature statistics and the warm-up
    feature rows). Alerts live in the world (issued over time).
    """

    lean: list[pl.DataFrame] = field(default_factory=list)
    events: list[pl.DataFrame] = field(default_factory=list)
    outcomes: list[pl.DataFrame] = field(default_factory=list)
    full: dict[int, pl.DataFrame] = field(default_factory=dict)
    _base: pl.DataFrame | None = None
    _base_days: int = 0

    def fork(self) -> KnownHistory:
        """An independent copy (frames are immutable and shared)."""
        return KnownHistory(list(self.lean), list(self.events), list(self.outcomes), dict(self.full), self._base, self._base_days)

    def add_day(self, day: int, manifests: pl.DataFrame, events: pl.DataFrame, *, keep_full: bool) -> None:
        if day != len(self.lean):
            raise BacktestError(f"days must be added in order: expected day {len(self.lean)}, got {day}")
        self.lean.append(_lean_manifests(manifests))
        self.events.append(events)
        if keep_full:
            self.full[day] = manifests

    def add_outcomes(self, outcomes: pl.DataFrame) -> None:
        if outcomes.height:
            self.outcomes.append(outcomes.select(INSPECTION_OUTCOMES.column_names))

    def outcome_frame(self) -> pl.DataFrame:
        return pl.concat(self.outcomes) if self.outcomes else pl.DataFrame(schema=INSPECTION_OUTCOMES.schema)

    def manifests_upto(self, day: int) -> pl.LazyFrame:
        """Lean manifests of arrival days ``0..day`` (a rechunked prefix plus the recent days)."""
        if day + 1 - self._base_days >= 7 and day + 1 == len(self.lean):
            self._base = pl.concat(self.lean[: day + 1], rechunk=True)
            self._base_days = day + 1
        if self._base is not None and self._base_days <= day + 1:
            parts = [self._base, *self.lean[self._base_days : day + 1]]
        else:
            parts = self.lean[: day + 1]
        return pl.concat(parts, rechunk=False).lazy()

    def events_for(self, day: int, containers: pl.Series) -> pl.DataFrame:
        """Events of ``containers`` from trips that arrived in the last :data:`EVENT_HISTORY_DAYS` days up to ``day``."""
        recent = self.events[max(0, day - EVENT_HISTORY_DAYS) : day + 1]
        if not recent:
            return pl.DataFrame(schema=CONTAINER_EVENTS.schema)
        return pl.concat(recent, rechunk=False).filter(pl.col("container_number").is_in(containers.implode()))


def _lean_manifests(manifests: pl.DataFrame) -> pl.DataFrame:
    """The columns entity features and party resolution (:mod:`features.parties`) read, with derived columns."""
    derived = with_derived_columns(manifests.lazy())
    names = ["filed_at" if c == "t" else c for c in history_rows(derived).collect_schema().names()]
    available = derived.collect_schema().names()
    party = [f"{r}_{part}" for r in PARTY_ROLES for part in ("id", "name", "country") if f"{r}_{part}" in available]
    return derived.select(list(dict.fromkeys([*names, *party]))).collect()


def _day_features(
    day: int, candidates: pl.DataFrame, known: KnownHistory, alerts: pl.DataFrame, stats: FeatureStats, outcomes: pl.DataFrame
) -> pl.DataFrame:
    """Features of one arrival day's candidates (all with the same ``decision_at``) from what was known at it (snapshot path)."""
    at = candidates.get_column("decision_at")[0]
    manifests = known.manifests_upto(day)
    state = EntityState.build(manifests, outcomes.lazy(), at)
    events = known.events_for(day, candidates.get_column("container_number"))
    history = History.from_frames(manifests, events, outcomes, alerts)
    return build_features(candidates, history, stats, state=state)


# --------------------------------------------------------------------------- the learner


@dataclass
class Learner:
    """A strategy's model: feature statistics (fitted once), cached feature rows, the current booster."""

    config: BacktestConfig
    seed: int
    stats: FeatureStats | None = None
    booster: object | None = None
    version: int = 0
    rows: list[pl.DataFrame] = field(default_factory=list)
    trainings: list[dict] = field(default_factory=list)

    def fork(self) -> Learner:
        return Learner(self.config, self.seed, self.stats, self.booster, self.version, list(self.rows), [dict(t) for t in self.trainings])

    def remember(self, features: pl.DataFrame, selected: set[str], day: int) -> None:
        """Cache the rows of a day training may use: the selected ones and the seeded sample of the others."""
        ids = features.get_column("manifest_id").to_list()
        others = [i for i in ids if i not in selected]
        keep = selected | set(unlabelled_sample(others, self.config.unlabelled_sample, seed=self.seed, day=day))
        self.rows.append(features.filter(pl.col("manifest_id").is_in(list(keep))).with_columns(pl.col("manifest_id").is_in(list(selected)).alias("selected")))

    def train(self, day: int, at: datetime, outcomes: pl.DataFrame) -> dict:
        """Retrain on the cached rows of the trailing window, labelled by outcomes recorded before ``at`` (the start of ``day``).

        Without a positive label the current model (if any) is kept. Every
        attempt is recorded in :attr:`trainings`.
        """
        began = time.perf_counter()
        cfg = self.config
        record: dict = {"day": day, "at": at, "rows": 0, "inspected": 0, "positives": 0, "trained": False}
        if self.rows:
            frame = training_frame(
                pl.concat(self.rows, how="vertical"),
                outcomes,
                as_of=at,
                window_days=cfg.train_window_days,
                unlabelled_share=cfg.unlabelled_sample,
                unlabelled_weight=cfg.unlabelled_weight,
                random_weight=cfg.random_weight,
            )
            labels = frame.get_column("label").to_numpy().astype(float)
            record.update(rows=frame.height, inspected=int(frame.get_column("inspected").sum()), positives=int(labels.sum()))
            if labels.sum() > 0:
                model = RiskModel(
                    num_leaves=cfg.num_leaves,
                    learning_rate=cfg.learning_rate,
                    n_estimators=cfg.n_estimators,
                    min_child_samples=cfg.min_child_samples,
                    num_threads=cfg.num_threads,
                    seed=self.seed,
                    categorical_features=tuple(categorical_columns()),
                )
                model.fit(frame.select(feature_columns()), labels, weight=frame.get_column("weight").to_numpy())
                self.booster = model.booster_
                self.version += 1
                record.update(trained=True, version=self.version, model_sha256=model.model_sha256())
        record["seconds"] = time.perf_counter() - began
        self.trainings.append(record)
        return record

    def score(self, features: pl.DataFrame) -> np.ndarray:
        return predict_proba(self.booster, features, num_threads=self.config.num_threads)


# --------------------------------------------------------------------------- the inspector


@dataclass
class StrategyInspector:
    """A strategy as a :class:`targeting.sim.world.Inspector`: the real selection policy per port and list period.

    Called by :meth:`targeting.sim.world.World.inspect` with a day's
    arrivals; it reads only their contract columns and the alerts, never the
    hidden ones. With a ``learner`` holding a model and ``known`` history it
    scores candidates (snapshot features at the decision time, cached for
    training); without a model (or with ``warmup``) it runs the warm-up
    behaviour for model strategies. Every draw uses generators seeded from
    ``seed``, the strategy name, the port and the day; the world's generator
    (``rng``) is never used. For multi-day list periods, :meth:`prepare`
    decides the whole period first; each call then returns its day's part.
    """

    strategy: Strategy
    config: BacktestConfig
    seed: int
    rules: list[RuleProfile] = field(default_factory=default_rule_profiles)
    learner: Learner | None = None
    known: KnownHistory | None = None
    warmup: bool = False
    prepared: dict[int, pl.DataFrame] = field(default_factory=dict)
    decisions: list[pl.DataFrame] = field(default_factory=list)
    candidates: list[pl.DataFrame] = field(default_factory=list)
    timers: dict[str, float] = field(default_factory=dict)

    def __call__(self, day: int, candidates: pl.DataFrame, alerts: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        if day not in self.prepared:
            with _timed(self.timers, "decide"):
                self.prepare({day: candidates}, alerts)
        rows = self.prepared.pop(day)
        return rows.select("manifest_id", pl.col("source").alias("selection_source"), "exam_type")

    @property
    def _featuring(self) -> bool:
        """Whether the candidates' features are computed (and cached for training): statistics exist."""
        return self.strategy.uses_model and not self.warmup and self.learner is not None and self.learner.stats is not None

    @property
    def _scoring(self) -> bool:
        """Whether the candidates are scored by a model (until the first model exists, the warm-up behaviour runs)."""
        return self._featuring and self.learner.booster is not None

    def prepare(self, arrivals: dict[int, pl.DataFrame], alerts: pl.DataFrame) -> None:
        """Decide the list period made of ``arrivals`` (arrival day -> that day's manifests), pooling capacity per port."""
        days = sorted(arrivals)
        first = self.config.start + timedelta(days=days[0])
        alerts = reviewed_alerts(alerts, self.config.alert_days)
        per_day = [self._score_day(d, arrivals[d].select(MANIFESTS.column_names), alerts) for d in days]
        pooled = pl.concat([p[0] for p in per_day], how="vertical")
        hits = pl.concat([p[1] for p in per_day], how="vertical")
        rules = pl.concat([p[2] for p in per_day], how="vertical")
        self.candidates.append(pooled.select("day", "port", "manifest_id"))
        decided = []
        label = WARMUP.name if (self.strategy.uses_model and not self._scoring) else self.strategy.name
        for port in self.config.ports:
            mine = pooled.filter(pl.col("port") == port)
            ids = mine.get_column("manifest_id").implode()
            rows = plan_port_selection(
                self.strategy,
                mine,
                mine.get_column("score").to_numpy() if self._scoring else None,
                alert_hits=hits.filter(pl.col("manifest_id").is_in(ids)),
                rule_hits=rules.filter(pl.col("manifest_id").is_in(ids)),
                port=port,
                list_date=first,
                capacity=capacity_for(mine.height, self.config.capacity_share),
                seed=derive_seed(self.seed, label, port, days[0]),
                config=self.config,
                warmup=self.strategy.uses_model and not self._scoring,
                weights=mine.get_column("weight").to_numpy() if self._scoring and self.strategy.kind == "ucb" else None,
            )
            decided.append(rows.join(mine.select("manifest_id", "day"), on="manifest_id", how="left").with_columns(pl.lit(port).alias("port")))
        decision = pl.concat(decided, how="vertical").select([pl.col(c).cast(t) for c, t in DECISION_SCHEMA.items()])
        self.decisions.append(decision)
        for d in days:
            self.prepared[d] = decision.filter(pl.col("day") == d)
        if self._featuring:
            chosen = set(decision.get_column("manifest_id").to_list())
            for d, (_, _, _, feats) in zip(days, per_day):
                if feats is not None:
                    self.learner.remember(feats, chosen, d)

    def _score_day(self, day: int, manifests: pl.DataFrame, alerts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
        """Candidates of every port on ``day`` (with score and ucb weight), their alert hits, rule hits and features."""
        list_date = self.config.start + timedelta(days=day)
        parts, rule_parts = [], []
        for port in self.config.ports:
            request = ListRequest(port=port, list_date=list_date, capacity=0, direction=Direction.IMPORT)
            found = kernel.candidate_rows(kernel.Snapshot(History.from_frames(manifests)), request)
            parts.append(found.with_columns(pl.lit(port).alias("port")))
            no_scores = kernel.Prepared(found, None, None, pl.DataFrame())
            rule_parts.append(kernel.rule_hits(self.rules, no_scores, request))
        cands = pl.concat(parts, how="vertical")
        hits = (
            match_alerts(cands.drop("port").lazy(), alerts.lazy())
            .select("manifest_id", "alert_count", "alert_max_severity", "alert_reasons", "alert_severities")
            .collect()
        )
        scores = np.zeros(cands.height)
        weights = np.zeros(cands.height)
        feats = None
        if self._featuring and cands.height:
            with _timed(self.timers, "features"):
                outcomes = self.known.outcome_frame()
                feats = _day_features(day, cands.drop("port"), self.known, alerts, self.learner.stats, outcomes)
        if self._scoring and feats is not None:
            with _timed(self.timers, "scoring"):
                scores = self.learner.score(feats)
            if self.strategy.kind == "ucb":
                seen = np.minimum(feats.get_column("lane_n_inspections").to_numpy(), feats.get_column("hs_origin_n_inspections").to_numpy())
                weights = ucb_weights(scores, seen, prior_rate=self.learner.stats.prior_finding_rate, kappa=self.config.ucb_kappa)
        scored = cands.select(
            pl.lit(day, dtype=pl.Int64).alias("day"), "port", "manifest_id", "container_number", pl.Series("score", scores), pl.Series("weight", weights)
        )
        return scored, hits, pl.concat(rule_parts, how="vertical"), feats


# --------------------------------------------------------------------------- one run


@dataclass
class StrategyRun:
    """Everything one strategy produced on one seed's world.

    ``evaluation``: one row per candidate (``day``, ``port``, ``manifest_id``,
    ``selected``, ``source``, ``illicit`` and ``category`` from the hidden
    truth, ``seized``, ``seizure_category`` from the revealed outcome);
    ``decisions``: the lists (DECISION_SCHEMA); ``outcomes``: the revealed
    outcomes; ``trainings``: one record per retraining; ``cached_rows``: the
    feature rows the learner kept (with ``selected``); ``seconds``: wall time
    of the days this run simulated on its own (after a shared warm-up, if any).
    """

    strategy: Strategy
    seed: int
    evaluation: pl.DataFrame
    decisions: pl.DataFrame
    outcomes: pl.DataFrame
    trainings: list[dict]
    cached_rows: pl.DataFrame | None
    seconds: float
    shared_seconds: float = 0.0
    timers: dict[str, float] = field(default_factory=dict)
    """Wall time by part (``world``: generating days and events; ``inspect``: the world's exams including
    ``decide``, the strategy's decisions, which include ``features`` and ``scoring``; ``training``), own days only."""


@dataclass
class _Context:
    """The mutable state of one strategy's replay (forked after a shared warm-up)."""

    world: World
    known: KnownHistory
    learner: Learner
    inspector: StrategyInspector
    evaluation: list[pl.DataFrame] = field(default_factory=list)
    day: int = 0
    next_retrain: int = 0

    def fork(self, strategy: Strategy) -> _Context:
        """An independent copy for ``strategy`` (the world is deep-copied, generator state included)."""
        learner = self.learner.fork()
        known = self.known.fork()
        inspector = replace(
            self.inspector,
            strategy=strategy,
            learner=learner,
            known=known,
            prepared={},
            decisions=list(self.inspector.decisions),
            candidates=list(self.inspector.candidates),
            timers={},
        )
        return _Context(copy.deepcopy(self.world), known, learner, inspector, list(self.evaluation), self.day, self.next_retrain)


def _day_events(batch: DayBatch, seed: int) -> pl.DataFrame:
    """Container events of a day's arrivals (the world's voyage timing; timing draws from a generator seeded by the day)."""
    ordered = batch.manifests.sort("eta", "manifest_id").with_row_index("_row")
    return build_events(ordered, np.random.default_rng([seed, 2, batch.day])).select(CONTAINER_EVENTS.column_names)


def _evaluation_rows(batch: DayBatch, decision: pl.DataFrame, candidates: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    truth = batch.truth.select("manifest_id", pl.lit(True).alias("illicit"), "category", pl.col("quantity_kg").alias("oracle_kg"))
    revealed = outcomes.select("manifest_id", (pl.col("result") == "SEIZURE").alias("seized"), "seizure_category")
    return (
        candidates.join(decision.select("manifest_id", "source"), on="manifest_id", how="left", maintain_order="left")
        .join(truth, on="manifest_id", how="left", maintain_order="left")
        .join(revealed, on="manifest_id", how="left", maintain_order="left")
        .select(
            "day",
            "port",
            "manifest_id",
            pl.col("source").is_not_null().alias("selected"),
            "source",
            pl.col("illicit").fill_null(False),
            "category",
            pl.col("oracle_kg").fill_null(0.0),
            pl.col("seized").fill_null(False),
            "seizure_category",
        )
    )


def _advance(ctx: _Context, until: int, *, seed: int, tick: Callable[[int], None]) -> None:
    """Replay days from the context's current day up to ``until`` (exclusive), period by period."""
    cfg = ctx.inspector.config
    features = ctx.inspector.strategy.uses_model
    day = ctx.day
    timers = ctx.inspector.timers
    while day < until:
        end = min((day // cfg.period_days + 1) * cfg.period_days, until, cfg.days)
        if features and not ctx.inspector.warmup and day >= ctx.next_retrain:
            with _timed(timers, "training"):
                _retrain(ctx, day)
        with _timed(timers, "world"):
            batches = {d: ctx.world.day(d) for d in range(day, end)}
            if features:
                for d, batch in batches.items():
                    ctx.known.add_day(d, batch.manifests.select(MANIFESTS.column_names), _day_events(batch, seed), keep_full=d < cfg.model_start)
        if len(batches) > 1:
            with _timed(timers, "decide"):
                ctx.inspector.prepare({d: b.manifests for d, b in batches.items()}, ctx.world.alerts_frame())
        for d, batch in batches.items():
            with _timed(timers, "inspect"):
                outcomes = ctx.world.inspect(batch, ctx.inspector)
            ctx.known.add_outcomes(outcomes)
            decision = ctx.inspector.decisions[-1].filter(pl.col("day") == d)
            candidates = ctx.inspector.candidates[-1].filter(pl.col("day") == d)
            ctx.evaluation.append(_evaluation_rows(batch, decision, candidates, outcomes))
            tick(d + 1)
        day = ctx.day = end


def _retrain(ctx: _Context, day: int) -> None:
    cfg = ctx.inspector.config
    at = decision_time(cfg.start + timedelta(days=day))
    ctx.learner.train(day, at, ctx.known.outcome_frame())
    ctx.next_retrain = day + cfg.retrain_every


def _bootstrap(ctx: _Context, *, seed: int) -> None:
    """End of the warm-up: fit the feature statistics, compute the warm-up days' feature rows, train the first model."""
    cfg = ctx.inspector.config
    day = cfg.model_start
    at = decision_time(cfg.start + timedelta(days=day))
    outcomes = ctx.known.outcome_frame()
    warm = pl.concat([ctx.known.full[d] for d in sorted(ctx.known.full)], how="vertical")
    ctx.learner.stats = fit_stats(with_derived_columns(warm.lazy()).collect(), outcomes.filter(pl.col("inspected_at") < at))
    alerts = reviewed_alerts(ctx.world.alerts_frame(), cfg.alert_days)
    decisions = pl.concat(ctx.inspector.decisions, how="vertical")
    for d in sorted(ctx.known.full):
        manifests = ctx.known.full[d]
        chosen = set(decisions.filter(pl.col("day") == d).get_column("manifest_id").to_list())
        others = [m for m in manifests.get_column("manifest_id").to_list() if m not in chosen]
        keep = chosen | set(unlabelled_sample(others, cfg.unlabelled_sample, seed=seed, day=d))
        candidates = manifests.filter(pl.col("manifest_id").is_in(list(keep))).with_columns(
            pl.lit(decision_time(cfg.start + timedelta(days=d))).alias("decision_at")
        )
        if candidates.height:
            feats = _day_features(d, candidates, ctx.known, alerts, ctx.learner.stats, outcomes)
            ctx.learner.rows.append(feats.with_columns(pl.col("manifest_id").is_in(list(chosen)).alias("selected")))
    ctx.known.full.clear()
    ctx.inspector.warmup = False
    with _timed(ctx.inspector.timers, "training"):
        _retrain(ctx, day)


def _new_context(world: World, strategy: Strategy, config: BacktestConfig, seed: int) -> _Context:
    known = KnownHistory()
    learner = Learner(config, seed)
    inspector = StrategyInspector(strategy, config, seed, learner=learner, known=known, warmup=strategy.uses_model)
    return _Context(world, known, learner, inspector)


def _finish(ctx: _Context, strategy: Strategy, seed: int, seconds: float, shared: float) -> StrategyRun:
    decisions = pl.concat(ctx.inspector.decisions, how="vertical") if ctx.inspector.decisions else pl.DataFrame(schema=DECISION_SCHEMA)
    return StrategyRun(
        strategy=strategy,
        seed=seed,
        evaluation=pl.concat(ctx.evaluation, how="vertical"),
        decisions=decisions,
        outcomes=ctx.known.outcome_frame(),
        trainings=list(ctx.learner.trainings),
        cached_rows=pl.concat(ctx.learner.rows, how="vertical") if ctx.learner.rows else None,
        seconds=seconds,
        shared_seconds=shared,
        timers={k: round(v, 3) for k, v in sorted(ctx.inspector.timers.items())},
    )


# --------------------------------------------------------------------------- the whole backtest


@dataclass
class BacktestResult:
    """The runs of every strategy on every seed, with wall times (``timings``: label -> seconds)."""

    config: BacktestConfig
    strategies: tuple[Strategy, ...]
    seeds: tuple[int, ...]
    runs: list[StrategyRun]
    timings: dict[str, float] = field(default_factory=dict)

    def weekly(self) -> pl.DataFrame:
        """See :func:`weekly_table`."""
        return weekly_table(self.runs, self.config)

    def summary(self) -> pl.DataFrame:
        """See :func:`summary_table`."""
        return summary_table(self.runs, self.config, strategies=self.strategies)

    def run(self, strategy: str, seed: int) -> StrategyRun:
        """The run of ``strategy`` (by name) on ``seed``."""
        for found in self.runs:
            if found.strategy.name == strategy and found.seed == seed:
                return found
        raise KeyError(f"no run of {strategy!r} on seed {seed}")


Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: called as a task (world generation, a warm-up, a strategy's days) advances."""


def run_backtest(
    config: BacktestConfig,
    strategies: Sequence[Strategy] | str = DEFAULT_STRATEGIES,
    seeds: Iterable[int] = (7,),
    *,
    progress: Progress | None = None,
) -> BacktestResult:
    """Replay every strategy on the world of every seed (see the module docstring).

    Per seed the world is generated once; ``rules`` and ``random`` start from
    a copy of it, the model strategies from a copy of one shared warm-up run
    (same results as separate runs: the warm-up does not depend on the
    strategy). Returns the runs in ``seeds`` x ``strategies`` order.
    """
    chosen = parse_strategies(strategies) if isinstance(strategies, str) else tuple(strategies)
    if not chosen:
        raise BacktestError("give at least one strategy")
    seed_list = tuple(int(s) for s in seeds)
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise BacktestError("give at least one seed, each once")
    say = progress or (lambda label, done, total: None)
    runs: list[StrategyRun] = []
    timings: dict[str, float] = {}
    for seed in seed_list:
        label = f"seed {seed}"
        say(f"{label} · world", 0, 1)
        began = time.perf_counter()
        world = World(config.world_config(seed))
        timings[f"{label} world"] = time.perf_counter() - began
        say(f"{label} · world", 1, 1)
        shared, shared_seconds = None, 0.0
        modelled = [s for s in chosen if s.uses_model]
        if modelled:
            shared, shared_seconds = _shared_warmup(world, modelled[0], config, seed, say)
            timings[f"{label} warm-up"] = shared_seconds
            timings.update({f"{label} warm-up {k}": v for k, v in sorted(shared.inspector.timers.items())})
        for strategy in chosen:
            task = f"{label} · {strategy.name}"
            began = time.perf_counter()
            if strategy.uses_model:
                ctx = shared.fork(strategy)
            else:
                ctx = _new_context(copy.deepcopy(world), strategy, config, seed)
            first = ctx.day
            _advance(ctx, config.days, seed=seed, tick=lambda d, task=task, first=first: say(task, d - first, config.days - first))
            seconds = time.perf_counter() - began
            timings[f"{label} {strategy.name}"] = seconds
            runs.append(_finish(ctx, strategy, seed, seconds, shared_seconds if strategy.uses_model else 0.0))
    return BacktestResult(config, chosen, seed_list, runs, timings)


def _shared_warmup(world: World, strategy: Strategy, config: BacktestConfig, seed: int, say: Progress) -> tuple[_Context, float]:
    """Run the warm-up once (and train the first model) for every model strategy of ``seed``."""
    began = time.perf_counter()
    ctx = _new_context(copy.deepcopy(world), strategy, config, seed)
    until = min(config.model_start, config.days)
    task = f"seed {seed} · warm-up"
    _advance(ctx, until, seed=seed, tick=lambda d: say(task, d, until))
    if config.model_start < config.days:
        with _timed(ctx.inspector.timers, "bootstrap"):
            _bootstrap(ctx, seed=seed)
    return ctx, time.perf_counter() - began


# --------------------------------------------------------------------------- metrics


def _selection_metrics(frame: pl.DataFrame) -> dict[str, float]:
    """Precision, recall and normalised precision of the selected set against the oracle at the same capacity.

    Computed with :func:`models.metrics.ranking_metrics`: the selected items
    score 1, the others 0, and the rate is the selected share, so the top
    ``k`` are exactly the ``k`` selected items.
    """
    n = frame.height
    k = int(frame.get_column("selected").sum()) if n else 0
    if n == 0 or k == 0:
        return {"precision": float("nan"), "recall": float("nan"), "norm_precision": float("nan"), "oracle_precision": float("nan")}
    rate = 100.0 * k / n
    report = ranking_metrics(
        frame.get_column("selected").cast(pl.Float64).to_numpy(),
        frame.get_column("illicit").to_numpy(),
        tiebreak=frame.get_column("manifest_id").to_numpy(),
        rates=(rate,),
    )
    tag = rate_label(rate)
    if int(report.metrics[f"k@{tag}"]) != k:  # pragma: no cover (guards the rate arithmetic)
        raise BacktestError(f"metric capacity {report.metrics[f'k@{tag}']} differs from the {k} inspections")
    return {
        "precision": report.metrics[f"precision@{tag}"],
        "recall": report.metrics[f"recall@{tag}"],
        "norm_precision": report.metrics[f"norm_precision@{tag}"],
        "oracle_precision": report.metrics[f"oracle_precision@{tag}"],
    }


def weekly_table(runs: Sequence[StrategyRun], config: BacktestConfig) -> pl.DataFrame:
    """One row per strategy, seed and week (days ``7w .. 7w + 6``).

    Columns: ``strategy``, ``seed``, ``week``, ``days``, ``phase``
    (``warm-up`` for weeks starting before the first model, else
    ``model``), ``arrivals``, ``inspections``, ``illicit`` (hidden truth),
    ``illicit_selected``, ``inspected_<source>`` (inspections per selection
    source), ``seizures`` (revealed), ``precision``, ``recall``,
    ``norm_precision``, ``oracle_precision``, ``cumulative_seizures``.
    """
    rows = []
    for run in runs:
        frame = run.evaluation.with_columns((pl.col("day") // 7).alias("week"))
        cumulative = 0
        for (week,), group in sorted(frame.group_by("week"), key=lambda item: item[0][0]):
            seizures = int(group.get_column("seized").sum())
            cumulative += seizures
            rows.append(
                {
                    "strategy": run.strategy.name,
                    "seed": run.seed,
                    "week": int(week),
                    "days": int(group.get_column("day").n_unique()),
                    "phase": "warm-up" if week * 7 < config.model_start else "model",
                    "arrivals": group.height,
                    "inspections": int(group.get_column("selected").sum()),
                    "illicit": int(group.get_column("illicit").sum()),
                    "illicit_selected": int((group.get_column("illicit") & group.get_column("selected")).sum()),
                    **{f"inspected_{source.lower()}": int((group.get_column("source") == source).sum()) for source in SOURCES},
                    "seizures": seizures,
                    **_selection_metrics(group),
                    "cumulative_seizures": cumulative,
                }
            )
    return pl.DataFrame(rows, schema_overrides={k: pl.Float64 for k in ("precision", "recall", "norm_precision", "oracle_precision")})


def last_weeks_mean(weekly: pl.DataFrame, column: str = "norm_precision", weeks: int = LAST_WEEKS) -> float:
    """Mean of ``column`` over the last ``weeks`` complete (7-day) model-phase weeks of one run's weekly rows (NaN weeks skipped)."""
    complete = weekly.filter((pl.col("days") == 7) & (pl.col("phase") == "model")).sort("week").tail(weeks)
    values = complete.get_column(column).drop_nans().drop_nulls()
    return float(values.mean()) if values.len() else float("nan")


def run_overall(run: StrategyRun, config: BacktestConfig) -> dict[str, float]:
    """A run's figures over the evaluation period (days from the first model on; every day when no model ever ran)."""
    first = config.model_start if config.model_start < config.days else 0
    frame = run.evaluation.filter(pl.col("day") >= first)
    selected = frame.filter(pl.col("selected"))
    out: dict[str, float] = {
        "arrivals": float(frame.height),
        "inspections": float(selected.height),
        "illicit": float(frame.get_column("illicit").sum()),
        "seizures": float(frame.get_column("seized").sum()),
        **_selection_metrics(frame),
    }
    for category in CATEGORIES:
        out[f"seized_{category.lower()}"] = float((frame.get_column("seizure_category") == category).sum())
    for source in SOURCES:
        mine = selected.filter(pl.col("source") == source)
        out[f"inspected_{source.lower()}"] = float(mine.height)
        out[f"seized_by_{source.lower()}"] = float(mine.get_column("seized").sum())
    return out


def summary_table(runs: Sequence[StrategyRun], config: BacktestConfig, *, strategies: Sequence[Strategy] | None = None) -> pl.DataFrame:
    """One row per strategy: evaluation-period figures averaged over seeds.

    ``inspections``, ``seizures`` and ``seized_<category>`` are means per
    seed; ``precision``, ``recall``, ``norm_precision`` the mean over seeds of
    each seed's pooled figure; ``norm_precision_last13`` the mean over seeds of
    the mean weekly normalised precision over the last 13 complete weeks
    (``..._sd``: its standard deviation over seeds, null with one seed);
    ``hit_rate_<source>`` seizures per inspection of that selection source,
    pooled over seeds (null when the source never inspected).
    """
    order = [s.name for s in strategies] if strategies else list(dict.fromkeys(r.strategy.name for r in runs))
    weekly = weekly_table(runs, config)
    rows = []
    for name in order:
        mine = [r for r in runs if r.strategy.name == name]
        if not mine:
            continue
        overall = [run_overall(r, config) for r in mine]
        last = [last_weeks_mean(weekly.filter((pl.col("strategy") == name) & (pl.col("seed") == r.seed))) for r in mine]
        mean = lambda key: float(np.mean([o[key] for o in overall]))  # noqa: E731
        row = {
            "strategy": name,
            "seeds": len(mine),
            "inspections": mean("inspections"),
            "seizures": mean("seizures"),
            "precision": _nanmean([o["precision"] for o in overall]),
            "recall": _nanmean([o["recall"] for o in overall]),
            "norm_precision": _nanmean([o["norm_precision"] for o in overall]),
            "norm_precision_last13": _nanmean(last),
            "norm_precision_last13_sd": float(np.std(last, ddof=1)) if len(last) > 1 and np.all(np.isfinite(last)) else None,
        }
        for source in SOURCES:
            inspected = sum(o[f"inspected_{source.lower()}"] for o in overall)
            row[f"hit_rate_{source.lower()}"] = sum(o[f"seized_by_{source.lower()}"] for o in overall) / inspected if inspected else None
        for category in CATEGORIES:
            row[f"seized_{category.lower()}"] = mean(f"seized_{category.lower()}")
        rows.append(row)
    float_columns = [c for c in (rows[0] if rows else {}) if c not in ("strategy", "seeds")]
    return pl.DataFrame(rows, schema_overrides={c: pl.Float64 for c in float_columns})


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


# --------------------------------------------------------------------------- outputs


SUMMARY_HEADERS = {
    "strategy": "strategy",
    "seeds": "seeds",
    "inspections": "inspections",
    "seizures": "seizures",
    "precision": "precision",
    "recall": "recall",
    "norm_precision": "norm. precision",
    "norm_precision_last13": "norm. precision, last 13 wk",
}
"""Headline columns of the summary and their display names (the last-13-weeks one shows ``mean ± sd over seeds``)."""
DETAIL_HEADERS = {
    "strategy": "strategy",
    "hit_rate_watchlist": "hit WATCHLIST",
    "hit_rate_rule": "hit RULE",
    "hit_rate_model": "hit MODEL",
    "hit_rate_random": "hit RANDOM",
    **{f"seized_{c.lower()}": c.lower() for c in CATEGORIES},
}
"""Second table: seizures per inspection by selection source, seizures (per seed) by category."""


def format_value(value: object, column: str) -> str:
    """Display text of a summary cell (3 decimals for rates, 1 for per-seed counts, ``-`` for missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        counts = column in ("inspections", "seizures") or column.startswith("seized_")
        return f"{value:,.1f}" if counts else f"{value:.3f}"
    return str(value)


def summary_cells(summary: pl.DataFrame) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """Headers and display rows of the two summary tables (headline; hit rates and seizures by category)."""
    head = list(SUMMARY_HEADERS)
    rows = []
    for row in summary.iter_rows(named=True):
        cells = [format_value(row[c], c) for c in head]
        sd = row.get("norm_precision_last13_sd")
        if sd is not None and math.isfinite(sd):
            cells[-1] += f" ± {sd:.3f}"
        rows.append(cells)
    detail = list(DETAIL_HEADERS)
    detail_rows = [[format_value(row[c], c) for c in detail] for row in summary.iter_rows(named=True)]
    return [SUMMARY_HEADERS[c] for c in head], rows, [DETAIL_HEADERS[c] for c in detail], detail_rows


def summary_markdown(summary: pl.DataFrame) -> str:
    """The summary as two Markdown tables: headline figures; hit rates by source and seizures by category."""
    head, rows, detail, detail_rows = summary_cells(summary)

    def table(headers: list[str], body: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
        return lines + ["| " + " | ".join(cells) + " |" for cells in body]

    return "\n".join([*table(head, rows), "", *table(detail, detail_rows)]) + "\n"


def _plot_by_week(weekly: pl.DataFrame, column: str, path: Path, *, title: str, ylabel: str, model_week: float | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for name in list(dict.fromkeys(weekly.get_column("strategy").to_list())):
        series = (
            weekly.filter(pl.col("strategy") == name)
            .group_by("week")
            .agg(pl.col(column).fill_nan(None).mean())
            .sort("week")
        )
        ax.plot(series.get_column("week").to_numpy(), series.get_column(column).cast(pl.Float64).to_numpy(), marker=".", linewidth=1.4, label=name)
    if model_week is not None:
        ax.axvline(model_week, color="grey", linestyle=":", linewidth=1)
        ax.annotate("first model", (model_week, ax.get_ylim()[1]), xytext=(3, -12), textcoords="offset points", fontsize=8, color="grey")
    ax.set_xlabel("week")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result: BacktestResult, out: Path) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.md``, ``weekly.csv``, ``trainings.csv`` and the two PNG plots under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    weekly = result.weekly()
    summary = result.summary()
    seeds = ", ".join(str(s) for s in result.seeds)
    model_week = result.config.model_start / 7 if result.config.model_start < result.config.days else None
    paths = {
        "summary_csv": out / "summary.csv",
        "summary_md": out / "summary.md",
        "weekly_csv": out / "weekly.csv",
        "trainings_csv": out / "trainings.csv",
    }
    summary.write_csv(paths["summary_csv"])
    paths["summary_md"].write_text(summary_markdown(summary))
    weekly.write_csv(paths["weekly_csv"])
    trainings_frame(result.runs).write_csv(paths["trainings_csv"])
    paths["norm_precision_png"] = _plot_by_week(
        weekly,
        "norm_precision",
        out / "norm_precision.png",
        title=f"Weekly normalised precision (mean over seeds {seeds})",
        ylabel="normalised precision",
        model_week=model_week,
    )
    paths["cumulative_seizures_png"] = _plot_by_week(
        weekly,
        "cumulative_seizures",
        out / "cumulative_seizures.png",
        title=f"Cumulative seizures (mean over seeds {seeds})",
        ylabel="seizures",
        model_week=model_week,
    )
    return paths


def trainings_frame(runs: Sequence[StrategyRun]) -> pl.DataFrame:
    """One row per retraining: strategy, seed, day, rows, inspected rows, positives, whether a model was trained, seconds."""
    rows = [
        {
            "strategy": r.strategy.name,
            "seed": r.seed,
            "day": t.get("day"),
            "rows": t["rows"],
            "inspected": t.get("inspected", 0),
            "positives": t["positives"],
            "trained": t["trained"],
            "version": t.get("version"),
            "seconds": round(t.get("seconds", 0.0), 3),
        }
        for r in runs
        for t in r.trainings
    ]
    schema = {
        "strategy": pl.String,
        "seed": pl.Int64,
        "day": pl.Int64,
        "rows": pl.Int64,
        "inspected": pl.Int64,
        "positives": pl.Int64,
        "trained": pl.Boolean,
        "version": pl.Int64,
        "seconds": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def metric_key(name: str) -> str:
    """A tracking-safe metric name (``model+10`` -> ``model-10``)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "-", name.replace("+", "-"))


def log_to_mlflow(result: BacktestResult, tracking_uri: str, artifacts: dict[str, Path], *, run_name: str | None = None) -> str:
    """Log the backtest as one parent run with a nested child run per strategy; returns the parent run id.

    Parent: the configuration as parameters, each strategy's headline figures
    as ``<strategy>/<metric>``, the plots, tables and CSVs as artifacts.
    Child (one per strategy): its parameters, weekly metrics as steps (the
    mean over seeds, and ``seed_<s>/<metric>`` per seed when there are
    several), evaluation-period figures as ``overall/<metric>`` and
    ``last13/norm_precision``, and its weekly CSV as an artifact.
    """
    import tempfile

    import mlflow
    from mlflow.entities import Metric

    from models.tracking import configure, ensure_experiment

    client = configure(tracking_uri)
    experiment_id = ensure_experiment(client, EXPERIMENT)
    weekly = result.weekly()
    summary = result.summary()
    cfg = result.config
    name = run_name or f"backtest {cfg.days}d {','.join(cfg.ports)} x{cfg.containers_per_day} seeds {','.join(map(str, result.seeds))}"
    headline = ("precision", "recall", "norm_precision", "norm_precision_last13", "seizures", "inspections")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as parent:
        mlflow.log_params({**cfg.as_params(), "strategies": ",".join(s.name for s in result.strategies), "seeds": ",".join(map(str, result.seeds))})
        parent_metrics = {
            f"{metric_key(row['strategy'])}/{k}": row[k] for row in summary.iter_rows(named=True) for k in headline if _finite(row[k])
        }
        mlflow.log_metrics(parent_metrics)
        for path in artifacts.values():
            mlflow.log_artifact(str(path))
        for strategy in result.strategies:
            mine = weekly.filter(pl.col("strategy") == strategy.name)
            with mlflow.start_run(experiment_id=experiment_id, run_name=strategy.name, nested=True) as child:
                seeds = ",".join(map(str, result.seeds))
                mlflow.log_params({"strategy": strategy.name, "kind": strategy.kind, "exploration_share": strategy.exploration_share, "seeds": seeds})
                now = int(clock.now().timestamp() * 1000)  # MLflow metric timestamps from the one clock
                metrics = _weekly_metrics(mine, len(result.seeds) > 1, now)
                row = summary.filter(pl.col("strategy") == strategy.name).row(0, named=True)
                for key, value in row.items():
                    if key not in ("strategy", "seeds") and _finite(value):
                        target = "last13/norm_precision" if key == "norm_precision_last13" else f"overall/{key}"
                        metrics.append(Metric(target, float(value), now, 0))
                for i in range(0, len(metrics), 900):
                    client.log_batch(child.info.run_id, metrics=metrics[i : i + 900])
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / f"weekly_{metric_key(strategy.name)}.csv"
                    mine.write_csv(path)
                    mlflow.log_artifact(str(path))
        return parent.info.run_id


def _weekly_metrics(weekly: pl.DataFrame, per_seed: bool, now: int) -> list:
    from mlflow.entities import Metric

    weekly = weekly.with_columns((pl.col("inspected_watchlist") / pl.col("inspections")).alias("watchlist_share"))
    columns = ("precision", "recall", "norm_precision", "inspections", "seizures", "illicit", "cumulative_seizures", "watchlist_share")
    metrics = []
    means = weekly.group_by("week").agg(pl.col(c).cast(pl.Float64).fill_nan(None).mean() for c in columns).sort("week")
    for row in means.iter_rows(named=True):
        metrics += [Metric(c, float(row[c]), now, int(row["week"])) for c in columns if _finite(row[c])]
    if per_seed:
        for row in weekly.sort("seed", "week").iter_rows(named=True):
            metrics += [Metric(f"seed_{row['seed']}/{c}", float(row[c]), now, int(row["week"])) for c in columns if _finite(row[c])]
    return metrics


def _finite(value: object) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(float(value))
