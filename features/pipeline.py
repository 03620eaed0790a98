"""The feature pipeline: one code path for training and for serving.

:func:`build_features` turns candidate manifests (each with a ``decision_at``)
into one row of finite numeric features per candidate, using only history
available strictly before each row's decision time. Training passes the raw
history (:func:`features.entity.entity_features_batch` handles per-row
decision times); a daily list passes an :class:`~features.entity.EntityState`
built for its single decision time. Both give identical frames (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from features import loading, manifest, routing  # noqa: F401  (registers their features)
from features.data.contracts import ALERT_KINDS, MANIFESTS
from features.entity import EntityState, entity_columns, entity_features_batch, internal_entity_columns
from features.parties import PartyResolution, apply_resolution, resolve_parties
from features.history import DECISION_COLUMN, History, ensure_decision_column, with_derived_columns
from features.intel import match_alerts
from features.anomaly import ANOMALY_SCORE, with_anomaly_score
from features.manifest import row_feature_functions, with_norm_deviations
from features.priors import prior_columns, with_priors
from features.registry import REGISTRY, categorical_columns, computed_columns, declare, feature_columns
from features.routing import restrict_events, voyage_window, with_event_features, with_route_geometry
from features.stats import CATEGORICAL_SOURCES, FeatureStats, encode_categoricals

KEY_COLUMNS = ("manifest_id", "container_number", "port_of_discharge", DECISION_COLUMN)
"""Identifying columns kept beside the features (not model inputs)."""

ALERT_FEATURES = {
    "alert_count": "Watchlist/intelligence alerts active at decision_at (valid_from <= decision_at < valid_to) matching the manifest.",
    "alert_max_severity": "Highest severity (1-5) among the active matching alerts; 0 when none.",
    **{f"alert_count_{k.lower()}": f"Active matching alerts of kind {k} at decision_at." for k in ALERT_KINDS},
}
for _name, _text in ALERT_FEATURES.items():
    declare(_name, "intelligence", _text)
for _column, _source in CATEGORICAL_SOURCES.items():
    declare(
        _column,
        "categorical",
        f"Code of `{_source}` in the vocabulary fitted at training time (1..K; 0 = unknown or missing). Passed to LightGBM as categorical.",
        categorical=True,
    )


@dataclass(frozen=True)
class FeatureSet:
    """The features of a batch of candidates: key columns + :func:`computed_columns` in order (``matrix``: the default model's)."""

    frame: pl.DataFrame

    @property
    def matrix(self) -> pl.DataFrame:
        return self.frame.select(feature_columns())


def _candidates(candidates: pl.LazyFrame) -> pl.LazyFrame:
    return with_derived_columns(loading.with_optional_columns(ensure_decision_column(candidates))).with_row_index("__cand")


def _history_with_candidates(history: History, candidates: pl.LazyFrame) -> pl.LazyFrame:
    """History manifests plus the candidates missing from it (each candidate's own manifest must be in history).

    History manifests are unique by ``manifest_id`` (the lake's key); a candidate whose id is already in
    history is represented by the history row, and a candidate listed twice is added once.
    """
    manifests = loading.with_optional_columns(history.manifests).select(MANIFESTS.column_names)
    own = candidates.select(MANIFESTS.column_names).filter(pl.col("manifest_id").is_first_distinct())
    # probe the history's ids against the (smaller) candidate set instead of hashing the history into a set
    known = manifests.select("manifest_id").join(own.select("manifest_id"), on="manifest_id", how="semi")
    missing = own.join(known, on="manifest_id", how="anti")
    return with_derived_columns(pl.concat([manifests, missing]))


def _row_features(frame: pl.LazyFrame, stats: FeatureStats, alerts: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    rowwise = [fn() for fn in (*row_feature_functions("manifest"), *row_feature_functions("routing"), *row_feature_functions("loading"))]
    frame = frame.with_columns(rowwise)
    frame = with_norm_deviations(frame, stats)
    frame = with_anomaly_score(frame, stats)
    frame = with_route_geometry(frame)
    frame = frame.cache()
    window = voyage_window(frame, events).cache()  # one events join for the routing and the loading event features
    frame = with_event_features(frame, events, window=window)
    frame = loading.with_loading_event_features(frame, events, window=window)
    frame = match_alerts(frame, alerts).with_columns(pl.col(c).cast(pl.Float64) for c in ALERT_FEATURES)
    return encode_categoricals(frame, stats)


def build_features_lazy(
    candidates: pl.LazyFrame | pl.DataFrame,
    history: History,
    stats: FeatureStats,
    *,
    state: EntityState | None = None,
    resolution: PartyResolution | None = None,
) -> pl.LazyFrame:
    """Lazy version of :func:`build_features` (no ``collect`` inside)."""
    cands = _candidates(candidates.lazy())
    if state is None:
        known = _history_with_candidates(history, cands)
        resolution = resolution or party_resolution(known)
        entity = entity_features_batch(apply_resolution(cands, resolution), apply_resolution(known, resolution), history.outcomes, stats)
    else:
        entity = state.features(apply_resolution(cands, resolution or party_resolution(history.manifests)), stats)
    return assemble_features(cands, entity, history, stats)


def assemble_features(cands: pl.LazyFrame, entity: pl.LazyFrame, history: History, stats: FeatureStats) -> pl.LazyFrame:
    """The feature frame of prepared candidates (``_candidates``) from their entity features: priors, row, event and alert features.

    ``entity`` holds ``__cand`` and the raw entity columns (:func:`features.entity.entity_features_batch`
    or an :class:`EntityState`); the events and alerts are read from ``history`` (each row's only
    strictly before its ``decision_at``). Rows in candidate order.
    """
    entity = with_priors(entity, stats).drop(internal_entity_columns())
    rows = _row_features(cands, stats, history.alerts, history.events)
    out_columns = [*KEY_COLUMNS, *computed_columns()]
    return rows.join(entity, on="__cand", how="left").sort("__cand").select(out_columns).with_columns(
        pl.col(c).cast(pl.Float64) for c in computed_columns() if c not in categorical_columns()
    )


def build_features(
    candidates: pl.LazyFrame | pl.DataFrame,
    history: History,
    stats: FeatureStats,
    *,
    state: EntityState | None = None,
    resolution: PartyResolution | None = None,
) -> pl.DataFrame:
    """Features for ``candidates``, one row each, in input order.

    Parameters
    ----------
    candidates
        Manifest rows (MANIFESTS contract) with a ``decision_at`` column (UTC):
        the moment each row is scored. Every feature of a row uses only data
        available strictly before its ``decision_at``.
    history
        The lake's tables. The candidates' own manifests are added to it if missing.
    stats
        Statistics fitted at training time (vocabularies, norms, rate prior).
    state
        Pre-aggregated entity state for a single decision time; when given,
        every candidate's ``decision_at`` must equal ``state.at`` and every
        candidate filed before it must be in the history the state was built
        from (``ValueError`` otherwise).
    resolution
        The party resolution to apply instead of computing it here: it must be
        :func:`party_resolution` of a history that contains ``history`` and the
        candidates (resolution is point in time, so a longer history gives the
        same canonical ids). :mod:`features.distributed` computes it once and
        passes it to every partition.

    Returns
    -------
    ``manifest_id``, ``container_number``, ``port_of_discharge``, ``decision_at``
    and every column of :func:`features.registry.computed_columns`: Float64
    numerics, Int32 categorical codes, all finite.
    """
    candidates = ensure_decision_column(candidates.lazy()).collect()
    # Same result, but a Parquet-backed history only reads the events that can fall in a voyage window.
    history = History(history.manifests, restrict_events(history.events, candidates), history.outcomes, history.alerts)
    if state is not None:
        times = candidates.lazy().select(pl.col(DECISION_COLUMN).unique()).collect().to_series().to_list()
        if any(t != state.at for t in times):
            raise ValueError(f"entity state is for {state.at.isoformat()}; candidates have decision times {sorted(set(times))}")
        missing = state.missing(candidates)
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ValueError(f"candidates filed before the entity state's time are missing from its history: {shown}")
    return build_features_lazy(candidates, history, stats, state=state, resolution=resolution).collect()


def party_resolution(manifests: pl.LazyFrame) -> PartyResolution:
    """The party resolution entity history uses (:func:`features.parties.resolve_parties` of ``manifests``).

    Computed from the same manifests on both paths, so the batch path and an
    :class:`EntityState` give candidates the same canonical party ids.
    """
    return resolve_parties(manifests)


def entity_state(history: History, at: datetime) -> EntityState:
    """Pre-aggregate every entity's history at decision time ``at`` (for scoring many candidates at ``at``).

    Party identifiers are first replaced by canonical ones (:func:`party_resolution` of the history's manifests).
    """
    manifests = with_derived_columns(apply_resolution(history.manifests, party_resolution(history.manifests)))
    return EntityState.build(manifests, history.outcomes, at)


def assert_registry_complete() -> None:
    """Every registered feature is produced (guards against a declared-but-missing column)."""
    produced = set(entity_columns()) | set(prior_columns()) | {ANOMALY_SCORE} | set(ALERT_FEATURES) | set(CATEGORICAL_SOURCES)
    produced |= {s.name for s in REGISTRY.values() if s.family in ("manifest", "routing", "loading")}
    missing = set(computed_columns()) - produced
    if missing:
        raise AssertionError(f"declared features without producer: {sorted(missing)}")
