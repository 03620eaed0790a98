"""The decision kernel: one port-day-direction decision, from what is known at the decision time to the list.

Serving (:class:`targeting.lake_engine.LakeEngine`), ``audit replay`` (the
same engine's :meth:`~targeting.lake_engine.LakeEngine.replay`), the backtest
(:mod:`targeting.evaluation.backtest`) and the extraction of training rows
(:mod:`models.dataset`) all call these functions; none of them restates the
candidate rule, the scoring or the selection.

A decision for a :class:`~targeting.lists.ListRequest` (port ``P``, date
``D``, direction, capacities, exploration share, seed) is made at ``D`` 00:00
UTC (:func:`features.candidates.decision_time`) in four pure steps:

1. :func:`prepare`: the candidates of ``P`` on ``D`` in the request's
   direction (:func:`features.candidates.candidates`, the one definition), their
   point-in-time features and model scores (none without a model), their
   seal/dwell integrity under the model's norms (none without norms) and their
   watchlist/alert hits (:func:`features.intel.match_alerts` over the
   snapshot's alerts plus the service's watchlist) and their precursor hits
   (:func:`precursor_hits`);
2. :func:`rule_hits`: the rule profiles active at the decision time for ``P``,
   with the precursor hits joined to them (:func:`with_precursor_hits`);
3. :func:`targeting.policy.select`: the selection (counts, not shares);
4. :func:`assemble`: model reasons for the selected rows only and the
   :class:`~targeting.lists.InspectionList` record.

:func:`decide` runs the four steps; callers that cache (the engine caches
``prepare`` per port-day and model, ``rule_hits`` per rule set) call the steps
themselves with the same arguments, so a cached decision is the decision.

**Day one without a model.** With ``model=None`` the list is made of the
watchlist hits, the rule profiles and a random slice (every slot the rules
leave is drawn at random); the record's ``model_version`` is
:data:`NO_MODEL_VERSION` and its warnings start with :data:`NO_MODEL_WARNING`.

**Precursor controls.** A candidate under a precursor's HS code (or a code
precursors are misdeclared under) that no pre-export notification known
strictly before the decision time covers, or that declares far more than the
notification (:func:`features.precursors.precursor_flags`), is a rule-like hit
with source ``RULE``: code :data:`PRECURSOR_CODES` and the flag's reason
naming the chemical, the HS code and what is missing, weight
:data:`PRECURSOR_WEIGHT`. A missing notification is a classic diversion
signal officers must see whatever the model thinks, so these hits are taken
ahead of the model ranking, within the rule share, in every direction. They
are computed from the snapshot's ``pre_export_notifications`` (the lake commit
a list records), so a replay reproduces them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import lightgbm as lgb
import numpy as np
import polars as pl

from features.candidates import DIRECTION_COLUMN, PORT_COLUMN, candidates, decision_time
from features.entity import EntityState
from features.history import History
from features.integrity import IntegrityNorms, integrity_details, integrity_inputs
from features.intel import match_alerts
from features.pipeline import build_features
from features.precursors import precursor_codes, precursor_flags
from features.rules.language import RuleProfile, evaluate_rules
from features.stats import FeatureStats
from models.calibration import Calibrator
from models.risk_model import predict_proba
from targeting.explain import model_reasons_for
from targeting.lists import InspectionList, ListRequest
from targeting.policy import PolicyConfig, Selection, build_inspection_list, select
from targeting.record import with_risk

MODEL_NAME = "container-risk"
NO_MODEL_VERSION = "none"
NO_MODEL_WARNING = (
    "No champion model yet: this list comes from the watchlist, the rule profiles and a random slice only "
    "(train and promote a model to rank the other candidates by risk)"
)
PRECURSOR_WEIGHT = 100.0
"""Rule score of a precursor hit: the highest weight a rule profile may have, so it ranks first among rule hits."""
PRECURSOR_CODES = {"NO_PEN": "PRECURSOR-NO-PEN", "MISDECLARED": "PRECURSOR-MISDECLARED-NO-PEN", "QUANTITY": "PRECURSOR-QUANTITY"}
"""Rule codes of precursor hits: own code without a notification, misdeclaration code without one, quantity far above it."""
_RULE_HIT_SCHEMA = {"manifest_id": pl.String(), "rule_codes": pl.List(pl.String()), "rule_reasons": pl.List(pl.String()), "rule_score": pl.Float64()}


@dataclass(frozen=True)
class Snapshot:
    """What is known at a decision time: the lake tables, optionally with the entity state pre-aggregated at it.

    The tables may hold rows at or after the decision time: every step reads
    only what was known strictly before it (manifests by ``filed_at``, events
    by ``event_time``, outcomes by ``inspected_at``, alerts by validity,
    pre-export notifications by ``notified_at``; no notifications table means
    none are known).
    ``state``, when given, must be :func:`features.pipeline.entity_state` of
    ``history`` at the decision time (a cache, never a different answer).
    """

    history: History
    state: EntityState | None = None


@dataclass(frozen=True)
class Scorer:
    """The model a decision is scored with: booster, fitted feature statistics and provenance."""

    version: str
    artifact_sha256: str
    booster: lgb.Booster
    stats: FeatureStats
    name: str = MODEL_NAME
    calibrator: Calibrator | None = None
    """The version's own score calibrator (``None``: its lists are not rated)."""
    integrity_norms: IntegrityNorms | None = None
    """The version's own seal/dwell norms (``None``: its lists have no INTEGRITY items)."""

    @classmethod
    def of(cls, loaded) -> "Scorer":  # noqa: ANN001 - targeting.champion.LoadedModel
        """The scorer of a loaded champion (``version``, ``model_sha256``, ``booster``, ``stats``, optionally ``calibrator``, ``integrity_norms``)."""
        return cls(version=loaded.version, artifact_sha256=loaded.model_sha256, booster=loaded.booster, stats=loaded.stats,
                   calibrator=getattr(loaded, "calibrator", None), integrity_norms=getattr(loaded, "integrity_norms", None))


@dataclass(frozen=True)
class Prepared:
    """A port-day-direction's candidates with what every list of it shares (step 1)."""

    candidates: pl.DataFrame
    features: pl.DataFrame | None
    """Model inputs aligned with ``candidates`` (``None`` without a model)."""
    scores: np.ndarray | None
    """Model probabilities aligned with ``candidates`` (``None`` without a model)."""
    alert_hits: pl.DataFrame
    precursor_hits: pl.DataFrame | None = None
    """Rule-like precursor hits (:func:`precursor_hits`; ``None``: not computed, e.g. a backtest's own candidates)."""
    integrity: pl.DataFrame | None = None
    """:func:`features.integrity.integrity_details` aligned with ``candidates`` under the model's norms (``None``: no model or no norms)."""
    model_version: str = ""
    """The scoring model's version ("" without one): named by the policy's warning when it has no norms."""


def candidate_rows(snapshot: Snapshot, request: ListRequest) -> pl.DataFrame:
    """The candidates of the request's port, date and direction (manifest columns plus ``decision_at``)."""
    history = snapshot.history
    found = candidates(history.manifests, history.events, port=request.port, day=request.list_date, direction=request.direction)
    return found.drop(DIRECTION_COLUMN, PORT_COLUMN).collect()


def prepare(
    snapshot: Snapshot,
    model: Scorer | None,
    watchlist: pl.DataFrame | None,
    request: ListRequest,
    *,
    rows: pl.DataFrame | None = None,
    threads: int = 2,
) -> Prepared:
    """Step 1: candidates, features and scores (with a model) and alert hits.

    ``rows`` are the request's :func:`candidate_rows` when the caller already
    has them (a cache); ``watchlist`` rows (ALERTS contract) are added to the
    snapshot's alerts.
    """
    history = snapshot.history.with_alerts(watchlist)
    rows = candidate_rows(snapshot, request) if rows is None else rows
    features = scores = integrity = None
    if model is not None:
        features = build_features(rows, history, model.stats, state=snapshot.state)
        scores = predict_proba(model.booster, features, num_threads=threads)
        scores.setflags(write=False)
        if model.integrity_norms is not None:
            integrity = integrity_details(model.integrity_norms, integrity_inputs(rows, features))
    alert_hits = match_alerts(rows.lazy(), history.alerts).collect()
    notifications = history.notifications_before(decision_time(request.list_date))
    return Prepared(rows, features, scores, alert_hits, precursor_hits(rows, notifications), integrity, "" if model is None else model.version)


def precursor_hits(rows: pl.DataFrame, notifications: pl.DataFrame) -> pl.DataFrame:
    """Rule hits (``manifest_id``, ``rule_codes``, ``rule_reasons``, ``rule_score``) of the flagged precursor shipments.

    ``rows`` are candidates with ``decision_at``; ``notifications`` must already be restricted to those known
    strictly before the decision time (:meth:`features.history.History.notifications_before`;
    :func:`features.precursors.precursor_flags` checks ``notified_at < decision_at`` again). Only flagged rows
    are returned, one code and one reason each (see :data:`PRECURSOR_CODES`).
    """
    chemical = rows.filter(pl.col("hs_code").str.slice(0, 6).is_in(precursor_codes().get_column("hs6").implode())) if rows.height else rows
    if chemical.height == 0:
        return pl.DataFrame(schema=_RULE_HIT_SCHEMA)
    flags = precursor_flags(chemical, notifications).filter(pl.col("precursor_reason").is_not_null())
    code = (
        pl.when(pl.col("precursor_notified")).then(pl.lit(PRECURSOR_CODES["QUANTITY"]))
        .when(pl.col("precursor_code")).then(pl.lit(PRECURSOR_CODES["NO_PEN"]))
        .otherwise(pl.lit(PRECURSOR_CODES["MISDECLARED"]))
    )
    return flags.select(
        "manifest_id",
        pl.concat_list(code).alias("rule_codes"),
        pl.concat_list("precursor_reason").alias("rule_reasons"),
        pl.lit(PRECURSOR_WEIGHT).alias("rule_score"),
    ).cast(_RULE_HIT_SCHEMA)


def with_precursor_hits(hits: pl.DataFrame, precursor: pl.DataFrame | None) -> pl.DataFrame:
    """Rule hits plus precursor hits: a flagged row gets its precursor code and reason first and its weight added."""
    if precursor is None or precursor.height == 0:
        return hits
    empty_list = pl.lit([], dtype=pl.List(pl.String()))
    base = hits.select([pl.col(name).cast(dtype) for name, dtype in _RULE_HIT_SCHEMA.items()])
    joined = base.join(precursor, on="manifest_id", how="full", coalesce=True, suffix="_precursor")
    return joined.select(
        "manifest_id",
        pl.concat_list(pl.col("rule_codes_precursor").fill_null(empty_list), pl.col("rule_codes").fill_null(empty_list)).alias("rule_codes"),
        pl.concat_list(pl.col("rule_reasons_precursor").fill_null(empty_list), pl.col("rule_reasons").fill_null(empty_list)).alias("rule_reasons"),
        (pl.col("rule_score").fill_null(0.0) + pl.col("rule_score_precursor").fill_null(0.0)).alias("rule_score"),
    )


def rule_hits(rules: Sequence[RuleProfile], prepared: Prepared, request: ListRequest) -> pl.DataFrame:
    """Step 2: the rule profiles active at the decision time, evaluated for the request's port, plus the precursor hits.

    Every caller that selects with these hits (serving, ``audit replay``, the backtest's kernel-parity check)
    therefore selects the flagged precursor shipments as RULE items with their precursor reason first. A
    :class:`Prepared` built without precursor hits (``None``, e.g. the backtest's own) adds none.
    """
    at = decision_time(request.list_date)
    hits = evaluate_rules(rules, prepared.candidates.lazy(), at=at, port=request.port).collect()
    return with_precursor_hits(hits, prepared.precursor_hits)


def selection(prepared: Prepared, hits: pl.DataFrame, request: ListRequest, config: PolicyConfig) -> Selection:
    """Step 3: :func:`targeting.policy.select` over the prepared candidates (no scores without a model).

    ``hits`` are :func:`rule_hits` (rule profiles and precursor hits).
    """
    keys = prepared.candidates.select("manifest_id", "container_number")
    return select(keys, prepared.scores, alert_hits=prepared.alert_hits, rule_hits=hits, request=request, config=config,
                  integrity=prepared.integrity, model_version=prepared.model_version)


def integrity_of(prepared: Prepared, manifest_ids: Sequence[str]) -> dict[str, dict] | None:
    """The integrity details row of each of ``manifest_ids`` (``None`` when the model has no norms)."""
    if prepared.integrity is None:
        return None
    wanted = set(manifest_ids)
    ids = prepared.candidates.get_column("manifest_id").to_list()
    return {m: row for m, row in zip(ids, prepared.integrity.iter_rows(named=True), strict=True) if m in wanted}


def model_reasons(prepared: Prepared, model: Scorer | None, manifest_ids: Sequence[str], *, top: int) -> dict[str, tuple[str, ...]]:
    """Model reasons of ``manifest_ids`` (the selected rows only; empty without a model)."""
    if model is None or prepared.features is None:
        return {m: () for m in manifest_ids}
    found = model_reasons_for(model.booster, prepared.features, list(manifest_ids), top=top, vocabularies=model.stats.vocabularies)
    return {m: tuple(found.get(m, ())) for m in manifest_ids}


def assemble(
    chosen: Selection,
    request: ListRequest,
    model: Scorer | None,
    reasons: Mapping[str, Sequence[str]],
    *,
    ruleset_version: int,
    input_data_sha256: str,
    config: PolicyConfig,
    integrity: Mapping[str, Mapping] | None = None,
) -> InspectionList:
    """Step 4: the list record (direction, provenance, calibrated risk bands and, without a model, the day-one warning).

    ``integrity`` is :func:`integrity_of` the selected rows (recorded per item; the INTEGRITY items' reasons).

    Every item and deferred candidate carries the model's calibrated
    probability and risk band (:func:`targeting.record.with_risk`); without a
    model, or with a version that has no calibrator, they are ``NOT_RATED``.
    """
    if model is None:
        chosen = replace(chosen, warnings=(NO_MODEL_WARNING, *chosen.warnings))
    built = build_inspection_list(
        chosen,
        request=request,
        model_reasons=reasons,
        decision_at=decision_time(request.list_date),
        model_name=MODEL_NAME if model is None else model.name,
        model_version=NO_MODEL_VERSION if model is None else model.version,
        model_artifact_sha256="" if model is None else model.artifact_sha256,
        ruleset_version=ruleset_version,
        input_data_sha256=input_data_sha256,
        config=config,
        integrity=integrity,
    )
    return with_risk(replace(built, direction=request.direction.value), None if model is None else model.calibrator)


def decide(
    snapshot: Snapshot,
    model: Scorer | None,
    rules: Sequence[RuleProfile],
    watchlist: pl.DataFrame | None,
    request: ListRequest,
    *,
    ruleset_version: int = 0,
    input_data_sha256: str = "",
    config: PolicyConfig = PolicyConfig(),
    threads: int = 2,
    explain: Callable[[Prepared, Sequence[str]], Mapping[str, Sequence[str]]] | None = None,
) -> InspectionList:
    """The whole decision: the list for ``request`` from ``snapshot``, ``model`` (or none), ``rules`` and ``watchlist``.

    Pure: the same arguments give the same list (row order of the inputs does
    not matter; the random slice is seeded by the request's seed or
    :func:`targeting.policy.default_seed`). ``explain`` replaces
    :func:`model_reasons` (a cache of reasons; it must return what
    :func:`model_reasons` would).
    """
    prepared = prepare(snapshot, model, watchlist, request, threads=threads)
    chosen = selection(prepared, rule_hits(rules, prepared, request), request, config)
    if explain is None:
        reasons = model_reasons(prepared, model, chosen.manifest_ids, top=config.model_reasons)
    else:
        reasons = explain(prepared, chosen.manifest_ids)
    return assemble(chosen, request, model, reasons, ruleset_version=ruleset_version, input_data_sha256=input_data_sha256, config=config,
                    integrity=integrity_of(prepared, chosen.manifest_ids))
