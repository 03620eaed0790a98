"""Drift benchmark configuration: scenarios, the world and replay settings, feature subsets (ablations)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from targeting.evaluation.backtest.config import BacktestConfig
from targeting.sim.world import WorldConfig

ORDINARY = "ordinary"
"""The no-scenario world: the ordinary test period, scored at the same day as the scenarios' change."""
NEW_SUFFIX = ":new"
"""A scenario's changed pattern is labelled ``"<scenario>:new"`` in the simulator's ``pattern`` truth column."""
DEFAULT_CHANGE_DAY = 90
BASELINE_FEATURES_FILE = Path(__file__).with_name("baseline_features.json")


class DriftError(ValueError):
    """A drift benchmark was configured inconsistently (unknown scenario, feature or setting)."""


# --------------------------------------------------------------------------- scenarios


def scenario_catalogue() -> dict[str, object]:
    """The simulator's drift scenarios by name (``targeting.sim.scenarios.SCENARIOS``); empty while the simulator has none."""
    try:
        from targeting.sim.scenarios import SCENARIOS
    except ImportError:
        return {}
    items = SCENARIOS.values() if isinstance(SCENARIOS, dict) else SCENARIOS
    return {s.name: s for s in items}


def parse_scenarios(text: str | Sequence[str]) -> tuple[str, ...]:
    """Scenario names from ``all`` or a comma-separated list; ``ordinary`` (no scenario) is always accepted.

    ``all`` is every simulator scenario followed by ``ordinary``. Unknown or
    repeated names raise :class:`DriftError`.
    """
    catalogue = scenario_catalogue()
    tokens = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not tokens:
        raise DriftError("give at least one scenario (or 'all')")
    if tokens == ["all"]:
        return (*catalogue, ORDINARY)
    unknown = [t for t in tokens if t != ORDINARY and t not in catalogue]
    if unknown:
        known = ", ".join([*catalogue, ORDINARY]) or ORDINARY
        raise DriftError(f"unknown scenario(s) {', '.join(unknown)}: known are {known}")
    if len(set(tokens)) != len(tokens):
        raise DriftError("a scenario is listed twice")
    return tuple(tokens)


def new_pattern(scenario: str) -> str | None:
    """The truth ``pattern`` of a scenario's changed shipments (``None`` for the ordinary world)."""
    return None if scenario == ORDINARY else f"{scenario}{NEW_SUFFIX}"


# --------------------------------------------------------------------------- features (ablations)


def baseline_features() -> tuple[str, ...]:
    """The current model's feature set when the benchmark was built (the ordinary-period target's reference)."""
    return tuple(json.loads(BASELINE_FEATURES_FILE.read_text(encoding="utf-8"))["features"])


def resolve_features(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """The feature columns a feature spec names, in registry order.

    ``spec`` is ``default`` (or empty/``None``: the default model's inputs,
    :func:`features.registry.feature_columns`), ``all`` (every computed
    feature, including those off by default), or
    comma-separated tokens applied left to right: ``default``, ``all``, ``baseline`` (the
    feature set of :func:`baseline_features`), a feature family
    (``manifest``, ``routing``, ``loading``, ``entity``, ``priors``, ``anomaly``,
    ``intelligence``, ``categorical``, or any family registered later), a named group
    of :data:`FEATURE_GROUPS` (``trader-change``) or a feature name adds
    columns; the same prefixed with ``-`` removes them. A spec starting with
    a removal starts from the default inputs: ``-entity`` is those but the entity
    family; ``baseline,consignee_new`` is the baseline plus one column.

    >>> resolve_features("default") == resolve_features(None)
    True
    """
    import features.pipeline  # noqa: F401  (registers every feature)
    from features.registry import REGISTRY, computed_columns, feature_columns

    everything = computed_columns()
    tokens = [t.strip() for t in (spec.split(",") if isinstance(spec, str) else (spec or ())) if t.strip()]
    if not tokens:
        return tuple(feature_columns())
    chosen: set[str] = set(feature_columns()) if tokens[0].startswith("-") else set()
    for token in tokens:
        remove = token.startswith("-")
        names = _token_features(token.lstrip("-"), REGISTRY, everything)
        chosen = chosen - names if remove else chosen | names
    if not chosen:
        raise DriftError(f"feature spec {spec!r} leaves no feature")
    return tuple(c for c in everything if c in chosen)


FEATURE_GROUPS = {
    "trader-change": ("consignee_origin_n_prior", "consignee_loading_port_n_prior", "consignee_family_n_prior", "shipper_family_n_prior"),
}
"""Named feature groups that are not a registry family (the trader-change counts are in the ``entity`` family)."""


def _token_features(token: str, registry: dict, everything: list[str]) -> set[str]:
    from features.registry import feature_columns

    if token == "all":
        return set(everything)
    if token == "default":
        return set(feature_columns())
    if token in FEATURE_GROUPS:
        missing = [f for f in FEATURE_GROUPS[token] if f not in registry]
        if missing:
            raise DriftError(f"feature group {token!r}: {', '.join(missing)} not registered")
        return set(FEATURE_GROUPS[token])
    if token == "baseline":
        missing = [f for f in baseline_features() if f not in registry]
        if missing:
            raise DriftError(f"baseline features no longer registered: {', '.join(missing[:5])}")
        return set(baseline_features())
    family = {name for name, spec in registry.items() if spec.family == token}
    if family:
        return family
    if token in registry:
        return {token}
    raise DriftError(f"unknown feature or feature family {token!r} in the feature spec")


# --------------------------------------------------------------------------- the benchmark


def scenario_world(base: WorldConfig, scenario: str, legit_churn: str, change_day: int | None = None) -> WorldConfig:
    """``base`` with the scenario (changing at ``change_day``, None: its default) and legitimate churn set (the ordinary world has no scenario).

    Raises :class:`DriftError` when the simulator does not support the asked
    setting (a scenario, or a legitimate churn other than ``static``).
    """
    fields = {f.name for f in dataclasses.fields(WorldConfig)}
    changes: dict[str, object] = {}
    if "legit_churn" in fields:
        changes["legit_churn"] = legit_churn
    elif legit_churn != "static":
        raise DriftError(f"the simulator has no legitimate churn setting yet (asked {legit_churn!r}): use --legit-churn static")
    if scenario != ORDINARY:
        if "scenario" not in fields:
            raise DriftError(f"the simulator has no drift scenarios yet (asked {scenario!r})")
        changes["scenario"] = scenario
        if change_day is not None and "change_day" in fields:
            changes["change_day"] = change_day
    return dataclasses.replace(base, **changes) if changes else base


@dataclass(frozen=True)
class DriftBacktestConfig(BacktestConfig):
    """A :class:`BacktestConfig` whose world runs a drift scenario (``scenario``) with ``legit_churn`` legitimate trade."""

    scenario: str = ORDINARY
    legit_churn: str = "realistic"
    change_day: int | None = None

    def world_config(self, seed: int) -> WorldConfig:
        return scenario_world(super().world_config(seed), self.scenario, self.legit_churn, self.change_day)


@dataclass(frozen=True)
class DriftConfig:
    """What one drift benchmark runs.

    Attributes
    ----------
    change_day
        Arrival day (0-based, from ``start``) of the regime change; ``None``: each
        scenario's own default (the ordinary world then uses :data:`DEFAULT_CHANGE_DAY`).
    window_days
        Days scored after the change ("after": ``[change, change + window)``)
        and before it ("before": ``[change - window, change)``).
    warmup_days
        First days used only as entity history (never trained on) by the frozen model.
    train_days
        The frozen models learn from the rows of the ``train_days`` days before their
        cut-off (at most back to ``warmup_days``): the "before" and "after" models are trained on
        windows of the same length when ``change_day >= warmup_days + window_days + train_days``.
    containers_per_day, ports, start, legit_churn
        The simulated world (``legit_churn``: ``realistic`` or ``static`` legitimate trade).
    capacity_share, strategy, retrain_every, alert_days
        The replay: the backtest's strategy (default ``model+5``), daily lists at
        ``capacity_share`` of arrivals, retraining every ``retrain_every`` days,
        party alerts reviewed after ``alert_days`` days (the backtest's watchlist review).
    features
        Feature spec of the model (see :func:`resolve_features`).
    frozen, replay
        Whether to run the frozen model and the day-by-day replay.
    replay_containers_per_day
        Arrivals per day of the replay's world (smaller than ``containers_per_day``:
        the replay computes features day by day and costs ~10 times more per row).
    n_estimators, learning_rate, num_threads
        LightGBM settings of both the frozen and the replay models (fixed trees, as the backtest).
    integrity_share
        Frozen model only: share of each list (the daily lists and the window's pooled top ``n`` %)
        given to the containers with the most unusual seal and dwell trace the model did not take
        (:mod:`features.integrity`, norms fitted on the model's training rows, the product's rule and default
        0.10, as its lists do); 0: the model alone.
    replay_integrity_share
        Replay: the production policy's INTEGRITY share (:class:`~targeting.evaluation.backtest.config.BacktestConfig`;
        default the product's 0.10, each retraining fitting its own norms); 0: the replay's lists before the slice.
    """

    change_day: int | None = None
    window_days: int = 30
    warmup_days: int = 15
    train_days: int = 45
    containers_per_day: int = 2000
    ports: tuple[str, ...] = ("NLRTM",)
    start: date = date(2025, 1, 1)
    legit_churn: str = "realistic"
    capacity_share: float = 0.01
    strategy: str = "model+5"
    retrain_every: int = 7
    alert_days: int | None = 90
    features: str = "default"
    frozen: bool = True
    replay: bool = True
    replay_containers_per_day: int = 400
    n_estimators: int = 150
    learning_rate: float = 0.05
    num_threads: int = 1
    integrity_share: float = 0.10
    replay_integrity_share: float = 0.10

    def __post_init__(self) -> None:
        if not 0.0 <= self.integrity_share < 1.0:
            raise DriftError(f"integrity_share must be in [0, 1), got {self.integrity_share}")
        if not 0.0 <= self.replay_integrity_share <= 1.0:
            raise DriftError(f"replay_integrity_share must be in [0, 1], got {self.replay_integrity_share}")
        if self.window_days < 1 or self.warmup_days < 1 or self.train_days < 7:
            raise DriftError("window_days and warmup_days must be at least 1, train_days at least 7")
        least = self.warmup_days + self.window_days + 7
        if self.change_day is not None and self.change_day < least:
            raise DriftError(f"change_day {self.change_day} leaves too little history: it must be at least warmup_days + window_days + 7 = {least}")
        if self.legit_churn not in ("realistic", "static"):
            raise DriftError(f"legit_churn must be 'realistic' or 'static', got {self.legit_churn!r}")

    def change_of(self, scenario: str) -> int:
        """The change day of ``scenario``: ``change_day`` if set, else the scenario's own default (:data:`DEFAULT_CHANGE_DAY` for ``ordinary``)."""
        if self.change_day is not None:
            return self.change_day
        found = scenario_catalogue().get(scenario)
        day = getattr(found, "change_day", None) if found is not None else None
        return int(day) if day is not None else DEFAULT_CHANGE_DAY

    def backtest_config(self, scenario: str, *, replay: bool = False) -> DriftBacktestConfig:
        """The world (and replay) configuration of ``scenario``: the world runs to ``change + window_days``; ``replay``: at the replay's size."""
        return DriftBacktestConfig(
            days=self.change_of(scenario) + self.window_days,
            ports=self.ports,
            containers_per_day=self.replay_containers_per_day if replay else self.containers_per_day,
            start=self.start,
            capacity_share=self.capacity_share,
            retrain_every=self.retrain_every,
            warmup_days=self.change_of(scenario) - self.window_days,  # the replay's first model serves the 'before' window
            alert_days=self.alert_days,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_threads=self.num_threads,
            features=resolve_features(self.features),
            scenario=scenario,
            legit_churn=self.legit_churn,
            change_day=self.change_of(scenario) if scenario != ORDINARY else None,
            integrity_share=self.replay_integrity_share,
        )
