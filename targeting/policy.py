"""The selection policy: which candidates of a port-day go on the inspection list, and why.

Pure and deterministic: no I/O, no clock, no global random state. The same
inputs (in any row order) give the same list, including the random slice,
whose seed is recorded in the list.

Steps, for a :class:`~targeting.lists.ListRequest` at port ``P`` for date ``D``
(decision time ``D`` 00:00 UTC):

1. :func:`candidates_for` picks the manifests due at ``P`` on ``D`` and filed
   strictly before the decision time.
2. The caller scores them (features, model), matches alerts
   (:func:`features.intel.match_alerts`) and evaluates the rules
   (:func:`features.rules.language.evaluate_rules` with ``at=decision_at, port=P``).
3. :func:`select` fills the capacity:

   - **WATCHLIST**: every candidate with an active alert hit (mandatory; if
     they alone exceed the capacity all are still listed,
     ``mandatory_exceeds_capacity`` is set and a warning says so);
   - **exploration slots** are then reserved: ``round_half_up(capacity x
     exploration_share)``, at most what the watchlist left;
   - **integrity slots** are reserved next: ``round_half_up(capacity x
     integrity_share)``, at most what is left (none without a model or
     without the model's integrity norms: a model registered before norms
     were bundled with it gets a warning saying so);
   - **RULE**: rule hits (``rule_score > 0``) by rule score, at most
     ``floor(capacity x max_rule_share)`` of them and at most what is left;
   - **MODEL**: the rest of the slots, by model score;
   - **INTEGRITY**: the integrity slots, filled with the candidates nothing
     above took whose seal/dwell trace is *unusual* against the model's norms
     (:func:`features.integrity.integrity_details`: a component significant
     at 0.01 after Šidák's correction for the components measured), by
     integrity surprisal descending; slots left unfilled go back to the
     model (the next candidates by model score, source MODEL). It looks
     where the model is blind: rip-on leaves a legitimate trader's manifest
     and only a seal or dwell trace, which a model trained on rule-driven
     exams rarely learns (``docs/evaluation.md``);
   - **RANDOM**: the reserved exploration slots, drawn uniformly without
     replacement from the candidates not selected above, with a numpy
     ``Generator`` seeded by the request's seed (default :func:`default_seed`).
     Each drawn item's ``selection_probability`` is ``slots / eligible``;
     every other selected item (INTEGRITY included: chosen, not drawn) has
     probability 1.0, so only RANDOM items are ever the unbiased sample.

   Everything not selected is *deferred* (reported with its score, never
   dropped).
4. The caller explains the selected rows only
   (:func:`targeting.explain.model_reasons_for`) and assembles the record with
   :func:`build_inspection_list`.

Ordering (the list's ranks 1..n): WATCHLIST, RULE, MODEL, INTEGRITY, RANDOM;
within WATCHLIST, MODEL and RANDOM by model score descending; within RULE by
rule score descending, then model score descending; within INTEGRITY by
integrity surprisal descending; remaining ties by container number, then
manifest id, ascending. Deferred items: score descending, then
container number, then manifest id.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

import numpy as np
import polars as pl

from features.candidates import DECISION_COLUMN, DIRECTION_COLUMN, PORT_COLUMN, Direction, candidates, decision_time
from targeting.lists import MAX_SEED, ListRequest
from targeting.record import build_inspection_list, compose_reasons, watchlist_reasons

__all__ = [
    "CALL_TYPES",
    "DECISION_COLUMN",
    "PolicyConfig",
    "Selection",
    "build_inspection_list",
    "candidates_for",
    "compose_reasons",
    "decision_time",
    "default_seed",
    "derive_seed",
    "exploration_slots",
    "rule_slots",
    "select",
    "watchlist_reasons",
]

CALL_TYPES = ("DISCHARGE", "TRANSSHIPMENT")

_SELECTED_SCHEMA: dict[str, pl.DataType] = {
    "rank": pl.Int64(),
    "manifest_id": pl.String(),
    "container_number": pl.String(),
    "score": pl.Float64(),
    "source": pl.String(),
    "selection_probability": pl.Float64(),
    "exam_type": pl.String(),
    "alert_count": pl.Int64(),
    "alert_max_severity": pl.Int64(),
    "alert_reasons": pl.List(pl.String()),
    "alert_severities": pl.List(pl.Int64()),
    "rule_codes": pl.List(pl.String()),
    "rule_reasons": pl.List(pl.String()),
    "rule_score": pl.Float64(),
    "integrity_surprisal": pl.Float64(),
}
_DEFERRED_SCHEMA: dict[str, pl.DataType] = {
    "manifest_id": pl.String(),
    "container_number": pl.String(),
    "score": pl.Float64(),
    "source_if_selected": pl.String(),
}


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PolicyConfig:
    """Parameters of the selection policy.

    Attributes
    ----------
    exploration_share
        Share of the capacity drawn at random for quality control (0..1).
        Used only when the request states none: a
        :class:`~targeting.lists.ListRequest` always carries its own
        ``exploration_share`` (default 0.10 as well), which wins, because it
        is what the stored list records and what a replay reuses.
    max_rule_share
        Largest share of the capacity rule hits may take (0..1), so the model
        keeps slots: at most ``floor(capacity x max_rule_share)`` RULE items.
    max_reasons
        Most reasons shown per item (watchlist, then rules, then model).
    model_reasons
        Most model (contribution) reasons computed per selected item.
    """

    exploration_share: float = 0.10
    max_rule_share: float = 0.50
    max_reasons: int = 5
    model_reasons: int = 5

    def __post_init__(self) -> None:
        for name in ("exploration_share", "max_rule_share"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        for name in ("max_reasons", "model_reasons"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def derive_seed(*parts: object) -> int:
    """The one seed helper: a 63-bit seed from ``parts``.

    The first 8 bytes of ``sha256`` of the parts' ``|``-joined text as a
    big-endian integer, masked to 63 bits (stable across processes and
    platforms).

    >>> derive_seed("NLRTM", "2024-04-10") == derive_seed("NLRTM", "2024-04-10")
    True
    """
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") & MAX_SEED


def default_seed(port: str, day: date, direction: Direction | str = Direction.IMPORT) -> int:
    """Seed of the random slice when the request gives none: :func:`derive_seed` of port, ISO date (and direction).

    An ``IMPORT`` list keeps the seed lists had before directions existed
    (``derive_seed(port, day)``); the other directions add their name, so the
    lists of one port-day draw independently.
    """
    direction = Direction.parse(direction)
    if direction is Direction.IMPORT:
        return derive_seed(port, day.isoformat())
    return derive_seed(port, day.isoformat(), direction.value)


def exploration_slots(capacity: int, share: float) -> int:
    """``capacity x share`` rounded half up, computed in decimal (so 25 x 0.1 is 3 and 5 x 0.1 is 1)."""
    exact = Decimal(int(capacity)) * Decimal(repr(float(share)))
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rule_slots(capacity: int, share: float) -> int:
    """Most RULE items: ``floor(capacity x share)``, computed in decimal."""
    return int((Decimal(int(capacity)) * Decimal(repr(float(share)))).to_integral_value(rounding=ROUND_FLOOR))


# --------------------------------------------------------------------------- candidates


def candidates_for(manifests: pl.LazyFrame, port: str, day: date) -> pl.LazyFrame:
    """Arrivals and transshipment calls due at ``port`` on ``day`` together, with ``call_type``.

    A convenience over the one candidate definition
    (:func:`features.candidates.candidates`): its ``IMPORT`` rows
    (``call_type='DISCHARGE'``) then its ``TRANSSHIPMENT`` rows, sorted by
    ``manifest_id``. Lists are built per direction by :mod:`targeting.kernel`;
    this union is kept for callers that count a port's whole day.
    """
    parts = [
        candidates(manifests, None, port=port, day=day, direction=direction)
        .drop(DIRECTION_COLUMN, PORT_COLUMN)
        .with_columns(pl.lit(call_type).alias("call_type"))
        for direction, call_type in ((Direction.IMPORT, "DISCHARGE"), (Direction.TRANSSHIPMENT, "TRANSSHIPMENT"))
    ]
    return pl.concat(parts, how="vertical").sort("manifest_id", maintain_order=True)


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """What :func:`select` decided, before reasons are attached.

    Attributes
    ----------
    selected
        One row per selected item in rank order: ``rank`` (1..n),
        ``manifest_id``, ``container_number``, ``score`` (model probability),
        ``source`` (WATCHLIST/RULE/MODEL/INTEGRITY/RANDOM), ``selection_probability``,
        ``exam_type`` (NII/PHYSICAL, null without a split capacity), the alert
        columns ``alert_count``, ``alert_max_severity``, ``alert_reasons``,
        ``alert_severities`` (per reason, when the alert hits give an
        ``alert_severities`` column; empty otherwise), and the rule columns ``rule_codes``, ``rule_reasons``,
        ``rule_score``, ``integrity_surprisal`` (null without norms).
    deferred
        Every candidate not selected: ``manifest_id``, ``container_number``,
        ``score``, ``source_if_selected`` (RULE for a rule hit, else MODEL),
        by score descending, then container number, then manifest id.
    seed
        Seed of the random slice (the request's, or :func:`default_seed`).
    exploration_share
        The share actually used (the request's).
    integrity_share
        The INTEGRITY share requested (recorded even when no slot could be used).
    """

    selected: pl.DataFrame
    deferred: pl.DataFrame
    seed: int
    exploration_share: float
    candidate_count: int
    warnings: tuple[str, ...] = ()
    mandatory_exceeds_capacity: bool = False
    integrity_share: float = 0.0

    @property
    def manifest_ids(self) -> list[str]:
        """Selected manifest ids in rank order."""
        return self.selected.get_column("manifest_id").to_list()


def _share(request: ListRequest, config: PolicyConfig) -> float:
    """The exploration share used: the request's (validated by :class:`~targeting.lists.ListRequest`)."""
    return float(config.exploration_share if request.exploration_share is None else request.exploration_share)


def _unique_ids(frame: pl.DataFrame, what: str) -> None:
    if "manifest_id" not in frame.columns:
        raise ValueError(f"{what} need a 'manifest_id' column")
    dupes = frame.filter(pl.col("manifest_id").is_duplicated()).get_column("manifest_id").unique().sort().to_list()
    if dupes:
        raise ValueError(f"{what} repeat manifest ids: {', '.join(map(str, dupes[:20]))}")


def _check_scores(candidates: pl.DataFrame, scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.shape[0] != candidates.height:
        raise ValueError(f"scores must be one value per candidate: got shape {values.shape} for {candidates.height} candidates")
    bad = ~np.isfinite(values)
    if bad.any():
        ids = sorted(candidates.get_column("manifest_id").filter(pl.Series(bad)).to_list())
        shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
        raise ValueError(f"non-finite scores for manifest ids: {shown}")
    return values


NO_NORMS_WARNING = (
    "No INTEGRITY items: model version {version} has no integrity norms (it was registered before they were bundled "
    "with the model); its slots went to the model"
)


def _integrity_frame(candidates: pl.DataFrame, integrity: pl.DataFrame | None) -> pl.DataFrame:
    """``manifest_id``, ``integrity_surprisal`` and ``integrity_unusual`` of every candidate (null/false without norms)."""
    ids = candidates.select(pl.col("manifest_id").cast(pl.String()))
    if integrity is None:
        return ids.with_columns(pl.lit(None, dtype=pl.Float64()).alias("integrity_surprisal"), pl.lit(False).alias("integrity_unusual"))
    if integrity.height != candidates.height or not {"integrity_surprisal", "integrity_unusual"} <= set(integrity.columns):
        raise ValueError(f"integrity must be one row per candidate with integrity_surprisal and integrity_unusual: got {integrity.height} rows for {candidates.height} candidates")
    values = integrity.get_column("integrity_surprisal").cast(pl.Float64())
    if not values.is_finite().all():
        raise ValueError("integrity surprisal must be finite for every candidate")
    return pl.concat([ids, integrity.select(values, pl.col("integrity_unusual").cast(pl.Boolean()))], how="horizontal")


def _integrity_picks(rest: pl.DataFrame, slots: int) -> pl.DataFrame:
    """The ``slots`` most surprising *unusual* rows of ``rest`` (ties by container number, then manifest id)."""
    unusual = rest.filter(pl.col("integrity_unusual"))
    return unusual.sort(["integrity_surprisal", "container_number", "manifest_id"], descending=[True, False, False], maintain_order=True).head(slots)


def _alert_frame(alert_hits: pl.DataFrame) -> pl.DataFrame:
    _unique_ids(alert_hits, "alert hits")
    for column in ("alert_count", "alert_max_severity", "alert_reasons"):
        if column not in alert_hits.columns:
            raise ValueError(f"alert hits need a {column!r} column (the output of features.intel.match_alerts)")
    severities = (
        pl.col("alert_severities").cast(pl.List(pl.Int64()))
        if "alert_severities" in alert_hits.columns
        else pl.lit([], dtype=pl.List(pl.Int64()))
    )
    return alert_hits.select(
        pl.col("manifest_id"),
        pl.col("alert_count").cast(pl.Int64()),
        pl.col("alert_max_severity").cast(pl.Int64()),
        pl.col("alert_reasons").cast(pl.List(pl.String())),
        severities.alias("alert_severities"),
    )


def _rule_frame(rule_hits: pl.DataFrame) -> pl.DataFrame:
    _unique_ids(rule_hits, "rule hits")
    for column in ("rule_codes", "rule_reasons", "rule_score"):
        if column not in rule_hits.columns:
            raise ValueError(f"rule hits need a {column!r} column (the output of features.rules.language.evaluate_rules)")
    return rule_hits.select(
        pl.col("manifest_id"),
        pl.col("rule_codes").cast(pl.List(pl.String())),
        pl.col("rule_reasons").cast(pl.List(pl.String())),
        pl.col("rule_score").cast(pl.Float64()),
    )


_BY_SCORE = (["score", "container_number", "manifest_id"], [True, False, False])
_BY_RULE = (["rule_score", "score", "container_number", "manifest_id"], [True, True, False, False])


def _sorted(frame: pl.DataFrame, order: tuple[list[str], list[bool]]) -> pl.DataFrame:
    return frame.sort(order[0], descending=order[1], nulls_last=True, maintain_order=True)


def _assign_exams(selected: pl.DataFrame, request: ListRequest) -> pl.DataFrame:
    """PHYSICAL for the highest-risk ``physical_capacity`` items, NII for the rest (null without a split)."""
    if request.physical_capacity is None:
        return selected.with_columns(pl.lit(None, dtype=pl.String()).alias("exam_type"))
    priority = selected.with_columns((pl.col("source") == "WATCHLIST").alias("__watch")).sort(
        ["__watch", "alert_max_severity", "score", "container_number", "manifest_id"],
        descending=[True, True, True, False, False],
        nulls_last=True,
    )
    physical = set(priority.head(request.physical_capacity).get_column("manifest_id").to_list())
    return selected.with_columns(
        pl.when(pl.col("manifest_id").is_in(list(physical))).then(pl.lit("PHYSICAL")).otherwise(pl.lit("NII")).alias("exam_type")
    )


def select(
    candidates: pl.DataFrame,
    scores: np.ndarray | None,
    *,
    alert_hits: pl.DataFrame,
    rule_hits: pl.DataFrame,
    request: ListRequest,
    config: PolicyConfig,
    integrity: pl.DataFrame | None = None,
    model_version: str = "",
) -> Selection:
    """Fill the request's capacity from the candidates (see the module docstring for the policy).

    Parameters
    ----------
    candidates
        Candidate manifests with at least ``manifest_id`` (unique) and
        ``container_number``; any row order.
    scores
        Model probabilities, one finite value per candidate row, aligned with
        ``candidates``; ``None`` without a model: no MODEL slots, rule hits
        take what the watchlist and the random slice leave (no
        ``max_rule_share`` cap) and every slot still free is drawn at random
        (each item's score is 0.0).
    alert_hits
        Output of :func:`features.intel.match_alerts` (``manifest_id``,
        ``alert_count``, ``alert_max_severity``, ``alert_reasons``; an optional
        ``alert_severities`` list aligned with ``alert_reasons``). Candidates
        without a row have no hit.
    rule_hits
        Output of :func:`features.rules.language.evaluate_rules` (``manifest_id``,
        ``rule_codes``, ``rule_reasons``, ``rule_score``). Candidates without
        a row have no hit.
    request
        Port, date, capacity (and optional NII/physical split), exploration
        share and seed.
    config
        Policy parameters.
    integrity
        One row per candidate, aligned with ``candidates``, with
        ``integrity_surprisal`` and ``integrity_unusual``
        (:func:`features.integrity.integrity_details` with the model's
        norms); ``None`` when the model has none (no INTEGRITY slots; with
        scores and a positive ``integrity_share``, a warning naming
        ``model_version`` says why).

    Returns
    -------
    Selection
        Selected rows in rank order, deferred rows, the seed, warnings.

    Raises
    ------
    ValueError
        A non-finite score (the message names the manifest ids), scores not
        aligned with the candidates, repeated manifest ids, a bad capacity
        split or an out-of-range exploration share or seed.
    """
    share = _share(request, config)
    for column in ("manifest_id", "container_number"):
        if column not in candidates.columns:
            raise ValueError(f"candidates need a {column!r} column")
    _unique_ids(candidates, "candidates")
    values = np.zeros(candidates.height) if scores is None else _check_scores(candidates, scores)
    seed = default_seed(request.port, request.list_date, request.direction) if request.seed is None else int(request.seed)
    capacity = request.capacity
    rule_cap = capacity if scores is None else rule_slots(capacity, config.max_rule_share)

    frame = (
        candidates.select(pl.col("manifest_id").cast(pl.String()), pl.col("container_number").cast(pl.String()))
        .with_columns(pl.Series("score", values, dtype=pl.Float64()))
        .join(_integrity_frame(candidates, integrity), on="manifest_id", how="left")
        .join(_alert_frame(alert_hits), on="manifest_id", how="left")
        .join(_rule_frame(rule_hits), on="manifest_id", how="left")
        .with_columns(
            pl.col("alert_count").fill_null(0),
            pl.col("alert_max_severity").fill_null(0),
            pl.col("alert_reasons").fill_null(pl.lit([], dtype=pl.List(pl.String()))),
            pl.col("alert_severities").fill_null(pl.lit([], dtype=pl.List(pl.Int64()))),
            pl.col("rule_codes").fill_null(pl.lit([], dtype=pl.List(pl.String()))),
            pl.col("rule_reasons").fill_null(pl.lit([], dtype=pl.List(pl.String()))),
            pl.col("rule_score").fill_null(0.0),
        )
        # canonical order first, so nothing below depends on the input row order
        .sort("manifest_id")
    )
    warnings: list[str] = []

    watch = _sorted(frame.filter(pl.col("alert_count") > 0), _BY_SCORE)
    mandatory_exceeds = watch.height > capacity
    if mandatory_exceeds:
        warnings.append(
            f"{watch.height} watchlist/alert hits exceed the capacity of {capacity}: all are listed (mandatory); "
            "no slots are left for rule profiles, the model or the random slice"
        )
    left = max(capacity - watch.height, 0)
    explore = min(exploration_slots(capacity, share), left)
    if share > 0 and exploration_slots(capacity, share) == 0 and capacity > 0:
        warnings.append(f"exploration share {share} of capacity {capacity} rounds to 0 random slots")
    left -= explore
    integrity_share = float(request.integrity_share)
    integrity_slots = 0
    if scores is not None and integrity is not None:
        integrity_slots = min(exploration_slots(capacity, integrity_share), left)
    elif scores is not None and integrity_share > 0:
        warnings.append(NO_NORMS_WARNING.format(version=model_version or "(unnamed)"))
    left -= integrity_slots

    rest = frame.filter(pl.col("alert_count") == 0)
    rules = _sorted(rest.filter(pl.col("rule_score") > 0), _BY_RULE).head(min(rule_cap, left))
    left -= rules.height
    taken = set(rules.get_column("manifest_id").to_list())
    rest = rest.filter(~pl.col("manifest_id").is_in(list(taken)))
    if scores is None:  # no model: the slots it would fill are drawn at random
        explore, left = explore + left, 0
    model = _sorted(rest, _BY_SCORE).head(left)
    rest = rest.filter(~pl.col("manifest_id").is_in(model.get_column("manifest_id").implode()))
    unusual = _integrity_picks(rest, integrity_slots)
    rest = rest.filter(~pl.col("manifest_id").is_in(unusual.get_column("manifest_id").implode()))
    given_back = _sorted(rest, _BY_SCORE).head(integrity_slots - unusual.height)  # unused INTEGRITY slots: the model's next
    model = pl.concat([model, given_back], how="vertical")
    pool = rest.filter(~pl.col("manifest_id").is_in(given_back.get_column("manifest_id").implode())).sort("container_number", "manifest_id")

    draws = min(explore, pool.height)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(pool.height, size=draws, replace=False)) if draws else np.empty(0, dtype=np.int64)
    random_probability = draws / pool.height if pool.height else 0.0
    randoms = _sorted(pool[picked.tolist()] if draws else pool.head(0), _BY_SCORE)

    parts = [
        watch.with_columns(pl.lit("WATCHLIST").alias("source"), pl.lit(1.0).alias("selection_probability")),
        rules.with_columns(pl.lit("RULE").alias("source"), pl.lit(1.0).alias("selection_probability")),
        model.with_columns(pl.lit("MODEL").alias("source"), pl.lit(1.0).alias("selection_probability")),
        unusual.with_columns(pl.lit("INTEGRITY").alias("source"), pl.lit(1.0).alias("selection_probability")),
        randoms.with_columns(pl.lit("RANDOM").alias("source"), pl.lit(float(random_probability)).alias("selection_probability")),
    ]
    selected = pl.concat(parts, how="vertical").with_row_index("rank", offset=1).with_columns(pl.col("rank").cast(pl.Int64()))
    selected = _assign_exams(selected, request).select(
        [pl.col(name).cast(dtype) for name, dtype in _SELECTED_SCHEMA.items()]
    )
    if request.physical_capacity is not None and selected.height > capacity:
        warnings.append(
            f"{selected.height} items for {request.physical_capacity} physical and {request.nii_capacity} NII exams: "
            "the items beyond capacity are assigned NII"
        )
    if frame.height < capacity:
        warnings.append(f"only {frame.height} candidates for a capacity of {capacity}")

    chosen = set(selected.get_column("manifest_id").to_list())
    deferred = _sorted(frame.filter(~pl.col("manifest_id").is_in(list(chosen))), _BY_SCORE).select(
        "manifest_id",
        "container_number",
        "score",
        pl.when(pl.col("rule_score") > 0).then(pl.lit("RULE")).otherwise(pl.lit("MODEL")).alias("source_if_selected"),
    )
    return Selection(
        selected=selected,
        deferred=deferred.select([pl.col(n).cast(t) for n, t in _DEFERRED_SCHEMA.items()]),
        seed=seed,
        exploration_share=share,
        candidate_count=frame.height,
        warnings=tuple(warnings),
        mandatory_exceeds_capacity=mandatory_exceeds,
        integrity_share=integrity_share,
    )
