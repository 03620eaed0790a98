"""The frozen model: trained only on what was known before a cut-off day, then scoring the days after it.

Time semantics. With cut-off day ``c`` (00:00 UTC of ``start + c``, the
cut-off time), the model learns from the served rows with ``decision_at`` in
``[start + warmup, cut-off)`` (every direction, as :func:`models.dataset.served_rows`),
labelled **only** by inspection outcomes recorded (``inspected_at``) strictly
before the cut-off time: a row examined later is an uninspected row. Its
feature statistics are fitted on the same rows and outcomes. Scoring rows
later than the cut-off keep their features point in time (everything known
strictly before each row's ``decision_at``, outcomes included): the model is
frozen, the data it reads is not, as when a champion keeps serving.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from features.candidates import decision_time
from features.history import History, with_derived_columns
from features.pipeline import build_features
from features.registry import categorical_columns
from features.stats import FeatureStats, fit_stats
from models.dataset import served_rows, with_labels, with_oracle
from models.risk_model import RiskModel, predict_proba
from targeting.evaluation.drift.config import DriftError

UNLABELLED_WEIGHT = 0.05
RANDOM_WEIGHT = 5.0
"""Sample weights as :class:`models.training.TrainConfig`: uninspected rows are weak negatives, random-slice exams weigh 5."""


@dataclass(frozen=True)
class FrozenModel:
    """A model frozen at ``cutoff``: booster, statistics, the features it uses, and what it was trained on."""

    booster: object
    stats: FeatureStats
    features: tuple[str, ...]
    cutoff: datetime
    rows: int
    seizures: int
    latest_label_at: datetime | None
    """The latest ``inspected_at`` of an outcome that labelled a training row (always before ``cutoff``)."""

    def score(self, frame: pl.DataFrame) -> np.ndarray:
        return predict_proba(self.booster, frame.select(self.features))


def known_before(history: History, cutoff: datetime) -> History:
    """``history`` with only the outcomes recorded strictly before ``cutoff`` (the labels a frozen model may see)."""
    return dataclasses.replace(history, outcomes=history.outcomes.filter(pl.col("inspected_at") < cutoff))


def training_rows(history: History, *, first: date, cutoff_day: date) -> pl.DataFrame:
    """Served rows with list dates in ``[first, cutoff_day)``, labelled by outcomes before ``cutoff_day`` 00:00 UTC, with ``labelled_at``."""
    known = known_before(history, decision_time(cutoff_day))
    rows = with_labels(served_rows(known, start=first, end=cutoff_day), known.outcomes).collect()
    stamps = known.outcomes.group_by("manifest_id", "port").agg(pl.col("inspected_at").max().alias("labelled_at")).collect()
    return rows.join(stamps, on=["manifest_id", "port"], how="left", maintain_order="left")


def train_frozen(
    history: History,
    *,
    first: date,
    cutoff_day: date,
    features: Sequence[str],
    seed: int,
    n_estimators: int = 150,
    learning_rate: float = 0.05,
    num_threads: int = 1,
) -> FrozenModel:
    """Train on rows from ``first`` to ``cutoff_day`` (exclusive) with labels known before ``cutoff_day`` 00:00 UTC.

    Fixed number of trees (no early stopping: no later period is looked at),
    deterministic LightGBM. Raises :class:`DriftError` without a seizure to learn from.
    """
    rows, stats, feats = training_set(history, first=first, cutoff_day=cutoff_day)
    return fit_frozen(rows, stats, feats, cutoff_day=cutoff_day, features=features, seed=seed, n_estimators=n_estimators, learning_rate=learning_rate, num_threads=num_threads)


def fit_frozen(
    rows: pl.DataFrame,
    stats: FeatureStats,
    feats: pl.DataFrame,
    *,
    cutoff_day: date,
    features: Sequence[str],
    seed: int,
    n_estimators: int = 150,
    learning_rate: float = 0.05,
    num_threads: int = 1,
) -> FrozenModel:
    """The frozen model on a :func:`training_set` already built (several feature subsets can share one: ablations)."""
    inspected = rows.get_column("inspected").to_numpy()
    labels = np.where(inspected, rows.get_column("label").fill_null(0).to_numpy(), 0).astype(float)
    if labels.sum() == 0:
        raise DriftError(f"no seizure recorded before {cutoff_day}: nothing for the frozen model to learn from")
    weights = np.where(inspected, np.where(rows.get_column("random_slice").to_numpy(), RANDOM_WEIGHT, 1.0), UNLABELLED_WEIGHT)
    columns = list(features)
    model = RiskModel(
        n_estimators=n_estimators,
        learning_rate=learning_rate,
        num_threads=num_threads,
        seed=seed,
        categorical_features=tuple(c for c in categorical_columns() if c in columns),
    ).fit(feats.select(columns), labels, sample_weight=weights)
    latest = rows.filter(pl.col("inspected")).get_column("labelled_at").max()
    return FrozenModel(model.booster_, stats, tuple(columns), decision_time(cutoff_day), rows.height, int(labels.sum()), latest)


def training_set(history: History, *, first: date, cutoff_day: date) -> tuple[pl.DataFrame, FeatureStats, pl.DataFrame]:
    """What a model frozen at ``cutoff_day`` learns from: the labelled rows (:func:`training_rows`), the statistics fitted on them and their features.

    Everything is computed from :func:`known_before` the cut-off: an outcome
    recorded on or after it changes nothing here (the leakage canary's test).
    """
    known = known_before(history, decision_time(cutoff_day))
    rows = training_rows(history, first=first, cutoff_day=cutoff_day)
    stats = fit_stats(with_derived_columns(rows.lazy()).collect(), known.outcomes.collect())
    return rows, stats, build_features(rows.drop("labelled_at"), known, stats)


def scored_window(
    model: FrozenModel,
    history: History,
    oracle: pl.DataFrame,
    *,
    start: date,
    first_day: int,
    last_day: int,
    directions: Sequence[str] = ("IMPORT",),
) -> pl.DataFrame:
    """Rows with list days ``[first_day, last_day)`` of ``directions``, scored by ``model`` with point-in-time features.

    Columns: ``day``, ``port``, ``direction``, ``manifest_id``, ``illicit``,
    ``pattern`` (the oracle's ``pattern``, else its ``method``; null when
    clean) and ``score``.
    """
    frame, feats = window_features(history, oracle, model.stats, start=start, first_day=first_day, last_day=last_day, directions=directions)
    return frame.with_columns(pl.Series("score", model.score(feats)))


def window_features(
    history: History,
    oracle: pl.DataFrame,
    stats: FeatureStats,
    *,
    start: date,
    first_day: int,
    last_day: int,
    directions: Sequence[str] = ("IMPORT",),
    keep: Sequence[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of :func:`scored_window` without ``score`` (plus the served rows' ``keep`` columns), and their point-in-time features under ``stats`` (row for row)."""
    begin, end = start + timedelta(days=first_day), start + timedelta(days=last_day)
    rows = served_rows(history, start=begin, end=end).filter(pl.col("direction").is_in(list(directions))).collect()
    if rows.height == 0:
        raise DriftError(f"no {'/'.join(directions)} rows between {begin} and {end}")
    truth = with_oracle(rows.select("manifest_id", "port", "direction"), oracle)
    pattern = "pattern" if "pattern" in oracle.columns else "method"
    patterns = oracle.select("manifest_id", pl.col(pattern).alias("__pattern"))
    truth = truth.join(patterns, on="manifest_id", how="left", maintain_order="left")
    origin = decision_time(start)
    frame = pl.DataFrame(
        {
            "day": ((rows.get_column("decision_at") - origin).dt.total_days()).cast(pl.Int64),
            "port": rows.get_column("port"),
            "direction": rows.get_column("direction"),
            "manifest_id": rows.get_column("manifest_id"),
            "illicit": truth.get_column("illicit"),
            "pattern": truth.select(pl.when(pl.col("illicit")).then(pl.col("__pattern")).otherwise(None)).to_series(),
        }
    ).with_columns(rows.get_column(c) for c in keep)
    return frame, build_features(rows, history, stats)
