"""What a strategy knows and learns: the training set, the known history (lean manifests, events, revealed outcomes) and the learner."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from features.data.contracts import CONTAINER_EVENTS, INSPECTION_OUTCOMES
from features.entity import EntityState, history_rows
from features.history import History, with_derived_columns
from features.integrity import INTEGRITY_COLUMNS, IntegrityNorms, fit_integrity_norms
from features.parties import ROLES as PARTY_ROLES
from features.pipeline import build_features
from features.registry import categorical_columns, computed_columns, feature_columns
from features.stats import FeatureStats
from models.risk_model import RiskModel, predict_proba
from targeting.evaluation.backtest.config import BacktestConfig, BacktestError, EVENT_HISTORY_DAYS, ORACLE_COLUMNS
from targeting.evaluation.backtest.sampling import unlabelled_sample


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
        columns, optionally ``port`` (the inspecting port: outcomes are then
        matched by manifest and port, so an export exam never labels the same
        container's import row) and ``selected`` (Boolean: the strategy put the row on its list).
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
    keys = ["manifest_id", "port"] if "port" in rows.columns else ["manifest_id"]  # a row is labelled by the outcome at its own port
    known = (
        outcomes.filter(pl.col("inspected_at") < pl.lit(as_of).cast(outcomes.schema["inspected_at"]))
        .group_by(keys)
        .agg((pl.col("result") == "SEIZURE").any().alias("_seizure"), (pl.col("selection_source") == "RANDOM").any().alias("_random"))
    )
    labelled = rows.filter(in_window).join(known, on=keys, how="left", maintain_order="left")
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
        *computed_columns(),
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
    """A strategy's model: feature statistics (fitted once), cached feature rows, the current booster and its integrity norms."""

    config: BacktestConfig
    seed: int
    stats: FeatureStats | None = None
    booster: object | None = None
    version: int = 0
    rows: list[pl.DataFrame] = field(default_factory=list)
    trainings: list[dict] = field(default_factory=list)
    integrity_norms: IntegrityNorms | None = None
    """Seal/dwell norms fitted with the current booster (``None``: no model yet, or cached rows without the manifest columns)."""

    def fork(self) -> Learner:
        return Learner(self.config, self.seed, self.stats, self.booster, self.version, list(self.rows), [dict(t) for t in self.trainings], self.integrity_norms)

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
                columns = list(cfg.features) or feature_columns()
                model = RiskModel(
                    num_leaves=cfg.num_leaves,
                    learning_rate=cfg.learning_rate,
                    n_estimators=cfg.n_estimators,
                    min_child_samples=cfg.min_child_samples,
                    num_threads=cfg.num_threads,
                    seed=self.seed,
                    categorical_features=tuple(c for c in categorical_columns() if c in columns),
                )
                model.fit(frame.select(columns), labels, sample_weight=frame.get_column("weight").to_numpy())
                self.booster = model.booster_
                self.integrity_norms = self._integrity_norms(at)
                self.version += 1
                record.update(trained=True, version=self.version, model_sha256=model.model_sha256())
        record["seconds"] = time.perf_counter() - began
        self.trainings.append(record)
        return record

    def _integrity_norms(self, at: datetime) -> IntegrityNorms | None:
        """Norms of this training's rows: the cached candidates of its window the strategy did not list (a uniform sample of
        the traffic, so the slice's own picks never widen the norm); ``None`` when the rows lack the manifest columns."""
        rows = pl.concat(self.rows, how="vertical")
        if any(c not in rows.columns for c in INTEGRITY_COLUMNS):
            return None
        cutoff = pl.lit(at).cast(rows.schema["decision_at"])
        window = (pl.col("decision_at") < cutoff) & (pl.col("decision_at") >= cutoff - timedelta(days=self.config.train_window_days))
        return fit_integrity_norms(rows.filter(window & ~pl.col("selected")))

    def score(self, features: pl.DataFrame) -> np.ndarray:
        return predict_proba(self.booster, features, num_threads=self.config.num_threads)
