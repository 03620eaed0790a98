"""Loading-side features: what a unit at the port of loading can know before the container is loaded.

Export control units decide at 00:00 UTC of the departure day
(:mod:`features.candidates`, direction ``EXPORT``). What they can see then is
the booking and shipping instructions (and their changes), the terminal's gate
events and the seals read at them. These features make those signals explicit;
for arrivals and transshipments they are still defined (the same point-in-time
rules), they just describe a departure long past.

Time semantics: a booking change counts only when ``booking_amended_at`` is
strictly before ``decision_at``; events count only when ``event_time`` is
strictly before ``decision_at``, inside the voyage window of
:mod:`features.routing` (``[etd - 45 days, decision_at)`` after the container's
previous trip). Missing inputs give the documented sentinels, never nulls.

The exporter (shipper) and exporter-consignee history, the exporter's novelty
(new product, new destination) and the destination's seizure record are entity
families (:mod:`features.entity`: ``shipper_*``, ``pair_*``,
``exporter_heading_*``, ``exporter_destination_*``, ``destination_*``); the
terminal dwell before loading is ``origin_dwell_hours`` (:mod:`features.routing`).
"""

from __future__ import annotations

import polars as pl

from features.data.contracts import MANIFESTS
from features.manifest import MISSING
from features.registry import declare, feature
from features.routing import voyage_window

SENSITIVE_BOOKING_FIELDS = ("consignee", "destination", "container", "seal")
"""Booking/shipping-instruction changes that redirect a container or change its identity."""
OPTIONAL_COLUMNS = {c.name: c.dtype for c in MANIFESTS.columns if not c.required}
"""Manifest columns a feed may omit (booking changes, verified gross mass, amended fields): read as null when absent."""


def _hours(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    return (end - start).dt.total_microseconds().cast(pl.Float64) / 3_600_000_000


def _known_booking_change() -> pl.Expr:
    return pl.col("booking_amended_at").is_not_null() & (pl.col("booking_amended_at") < pl.col("decision_at"))


def with_optional_columns(frame: pl.LazyFrame) -> pl.LazyFrame:
    """``frame`` with the optional manifest columns (:data:`OPTIONAL_COLUMNS`) added as nulls when absent (older feeds and lakes)."""
    names = frame.collect_schema().names()
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in OPTIONAL_COLUMNS.items() if name not in names]
    return frame.with_columns(missing) if missing else frame


@feature("loading")
def booking_changed() -> pl.Expr:
    """1 when a booking or shipping-instruction change is known before decision_at (booking_amended_at < decision_at)."""
    return _known_booking_change().cast(pl.Int8).alias("booking_changed")


@feature("loading")
def booking_change_hours_before_etd() -> pl.Expr:
    """Hours from the last booking/shipping-instruction change known before decision_at to the ETD (0 when changed after the ETD); -1 when none known."""
    hours = _hours(pl.col("booking_amended_at"), pl.col("etd")).clip(lower_bound=0.0)
    return pl.when(_known_booking_change()).then(hours).otherwise(MISSING).fill_null(MISSING).alias("booking_change_hours_before_etd")


@feature("loading")
def booking_change_sensitive() -> pl.Expr:
    """1 when a booking change known before decision_at touched the consignee, destination, container or seal."""
    fields = pl.col("booking_amended_fields").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    sensitive = fields.list.eval(pl.element().is_in(list(SENSITIVE_BOOKING_FIELDS))).list.any()
    return (_known_booking_change() & sensitive).fill_null(False).cast(pl.Int8).alias("booking_change_sensitive")


GATE_IN_LEAD = declare(
    "gate_in_lead_hours",
    "loading",
    "Hours from the container's first gate-in at the port of loading to the ETD (etd - gate-in; 0 when it gated "
    "in after the ETD), from events strictly before decision_at in the voyage window [etd - 45 d, decision_at) "
    "after the container's previous trip; -1 when no gate-in seen (short leads: late gate-in before loading).",
)
AWAITING_GATE_IN = declare(
    "awaiting_gate_in",
    "loading",
    "1 when the container departs at or after decision_at (etd >= decision_at, an export candidate) and no gate-in at "
    "the port of loading was seen before decision_at: it can only gate in on its departure day; 0 otherwise.",
)
SEAL_CHANGES = declare(
    "seal_changes",
    "loading",
    "Times the seal number changed along the manifest's seal then the seals read at the container's events in the "
    "voyage window, in time order, strictly before decision_at (events without a seal are skipped; a change back "
    "counts again); 0 when none or no seals.",
)
LOADING_EVENT_FEATURES = (GATE_IN_LEAD, AWAITING_GATE_IN, SEAL_CHANGES)


def with_loading_event_features(frame: pl.LazyFrame, events: pl.LazyFrame, *, window: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Add :data:`LOADING_EVENT_FEATURES` (needs ``__cand``, ``container_number``, ``etd``, ``seal_number``, ``port_of_loading``, ``decision_at``).

    Only events in the voyage window of :func:`features.routing.voyage_window` count: ``etd - 45 days <=
    event_time < decision_at``, after the container's previous trip. Pass ``window`` (computed from the same
    candidates) to share it with the routing event features. Events at the same instant are ordered by
    event type then seal, so the result does not depend on input order.
    """
    if window is None:
        window = voyage_window(frame, events)
    gate_in = pl.col("event_time").filter((pl.col("event_type") == "GATE_IN") & (pl.col("locode") == pl.col("port_of_loading"))).min()
    seals = window.filter(pl.col("_ev_seal").is_not_null()).sort("__cand", "event_time", "event_type", "_ev_seal")
    changes = (
        seals.group_by("__cand")
        .agg(pl.col("_doc_seal").first().alias("_doc"), pl.col("_ev_seal").alias("_seq"))
        .select(
            "__cand",
            pl.concat_list(pl.col("_doc"), pl.col("_seq"))
            .list.drop_nulls()
            .list.eval((pl.element() != pl.element().shift(1)).cast(pl.Int64).sum())
            .list.first()
            .cast(pl.Float64)
            .alias(SEAL_CHANGES),
        )
    )
    per_cand = window.group_by("__cand").agg(gate_in.alias("_gate_in"))
    awaiting = (pl.col("etd") >= pl.col("decision_at")) & pl.col("_gate_in").is_null()
    return (
        frame.join(per_cand, on="__cand", how="left", maintain_order="left")
        .join(changes, on="__cand", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("_gate_in").is_null()).then(MISSING).otherwise(_hours(pl.col("_gate_in"), pl.col("etd")).clip(lower_bound=0.0)).alias(GATE_IN_LEAD),
            awaiting.fill_null(False).cast(pl.Int8).alias(AWAITING_GATE_IN),
            pl.col(SEAL_CHANGES).fill_null(0.0),
        )
        .drop("_gate_in")
    )
