"""Backtest strategies, configuration, constants and errors."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date

import polars as pl

from targeting.sim.trafficking import METHODS
from targeting.sim.world import WorldConfig



DEFAULT_STRATEGIES = "rules,random,model,model+5,model+10,model+20,ucb"
SOURCES = ("WATCHLIST", "RULE", "MODEL", "INTEGRITY", "RANDOM")
CATEGORIES = tuple(sorted({m.category for m in METHODS}))
"""Contraband categories the simulated organisations ship (columns of the summary)."""
ORACLE_COLUMNS = frozenset({"illicit", "category", "org_id", "method", "concealment", "oracle_kg", "pattern"})
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
    "direction": pl.String,
}
DIRECTIONS = ("IMPORT", "TRANSSHIPMENT", "EXPORT")
"""Every served population, in report order."""
HUB_PORTS = ("PAMIT", "COCTG", "ESALG")
"""Default transshipment hubs with a control unit in the backtest (the world routes much traffic through them)."""


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
    directions
        Populations replayed (names of :class:`features.candidates.Direction`):
        IMPORT lists at ``ports``, TRANSSHIPMENT lists at ``hub_ports``,
        EXPORT lists at the world's export control ports.
    hub_ports
        Hub ports with a transshipment control unit.
    alert_days
        Watchlist review: the unit keeps a PARTY alert active at most this
        many days from its ``valid_from`` (see :func:`reviewed_alerts`);
        ``None`` keeps alerts as issued. The world issues a year-long party
        alert after many seizures (often naming a legitimate exporter whose
        name a front used), so without a review the mandatory watchlist grows
        with the strategy's own success and crowds out the other sources.
    n_estimators, learning_rate, num_leaves, min_child_samples, num_threads
        LightGBM settings of the retrained model (fixed number of trees, no early stopping).
    features
        Feature columns the retrained model learns from (an ablation, any computed feature); empty:
        the default model's inputs (:func:`features.registry.feature_columns`).
    integrity_share
        Model strategies: the policy's INTEGRITY share (:mod:`targeting.policy`; the product's
        default 0.10). Each retraining fits its integrity norms on its own training rows (the
        sampled candidates it did not list); 0 reproduces the lists without the INTEGRITY slice.
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
    directions: tuple[str, ...] = DIRECTIONS
    hub_ports: tuple[str, ...] = HUB_PORTS
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    num_threads: int = 1
    features: tuple[str, ...] = ()
    integrity_share: float = 0.10

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
        for name in ("warmup_random_share", "rule_share", "physical_share", "adapt_probability", "integrity_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise BacktestError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.unlabelled_sample <= 1.0:
            raise BacktestError(f"unlabelled_sample must be in (0, 1], got {self.unlabelled_sample}")
        if self.period_days > 28:
            raise BacktestError("period_days must be at most 28")
        if self.alert_days is not None and (isinstance(self.alert_days, bool) or not isinstance(self.alert_days, int) or self.alert_days < 1):
            raise BacktestError(f"alert_days must be a positive integer or None, got {self.alert_days!r}")
        unknown = [d for d in self.directions if d not in DIRECTIONS]
        if unknown or not self.directions or "IMPORT" not in self.directions or len(set(self.directions)) != len(self.directions):
            raise BacktestError(f"directions must list IMPORT and optionally TRANSSHIPMENT, EXPORT once each, got {self.directions!r}")
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
