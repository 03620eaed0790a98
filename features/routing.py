"""Routing features: the declared route's shape and what the container's events show before the decision time.

Route geometry uses sea-route distances between ports (``searoute``'s
maritime network, cached per port pair: :mod:`features.data.seadistance`). Event features look at the container's events in its voyage window:
``[etd - 45 days, decision_at)``, strictly before the decision time, and after
the container's previous trip (its last ``DISCHARGE``, ``GATE_OUT`` or
``EMPTY_RETURN`` event before ``etd``), so a reused container's earlier
voyage never counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from features.data.contracts import UTC_DATETIME as UTC

from features.manifest import MISSING
from features.data.seadistance import sea_distances_m
from features.registry import declare, feature

VOYAGE_LOOKBACK = timedelta(days=45)
TRIP_END_EVENTS = ("DISCHARGE", "GATE_OUT", "EMPTY_RETURN")
"""Event types that end a container's trip; the last one before a voyage's ETD starts the voyage window."""


@feature("routing")
def transshipment_count() -> pl.Expr:
    """Number of declared transshipment ports (0 for a direct call)."""
    return pl.col("transshipment_ports").list.len().fill_null(0).cast(pl.Float64).alias("transshipment_count")


@feature("routing")
def receipt_differs_from_loading() -> pl.Expr:
    """1 when the place of receipt is not the port of loading (pre-carriage from elsewhere)."""
    return (pl.col("place_of_receipt") != pl.col("port_of_loading")).fill_null(False).cast(pl.Int8).alias("receipt_differs_from_loading")


ROUTE_KM = declare(
    "route_km",
    "routing",
    "Sum of sea-route leg distances loading -> hubs -> discharge (searoute network), in km; -1 when a port has no "
    "coordinates or no sea path.",
)
CIRCUITY = declare(
    "route_circuity",
    "routing",
    "Route length over the direct sea-route distance loading -> discharge (1 = direct); -1 when unknown.",
)
ORIGIN_DWELL = declare(
    "origin_dwell_hours",
    "routing",
    "Hours between gate-in and loading at the port of loading, from events strictly before decision_at in the voyage "
    "window [etd - 45 d, decision_at) after the container's previous trip; time since gate-in when not yet loaded; "
    "-1 when no gate-in event.",
)
TS_DWELL = declare(
    "transshipment_dwell_max_hours",
    "routing",
    "Longest stay at a transshipment port (transshipment discharge to reload) from events in the voyage window "
    "(after the container's previous trip), strictly before decision_at; time since discharge when not yet reloaded; "
    "-1 when none (rip-on/rip-off exposure).",
)
SEAL_MISMATCH = declare(
    "event_seal_mismatches",
    "routing",
    "Number of events in the voyage window (after the container's previous trip), strictly before decision_at, whose "
    "seal number differs from the manifest's (events without a seal, or a manifest without one, do not count).",
)
EVENT_COUNT = declare(
    "voyage_event_count",
    "routing",
    "Number of container events in the voyage window [etd - 45 d, decision_at) after the container's previous trip "
    "(its last DISCHARGE, GATE_OUT or EMPTY_RETURN before etd).",
)
LOAD_MISSING = declare(
    "load_event_missing",
    "routing",
    "1 when the ETD is more than 48 h before decision_at but no load event at the port of loading was seen before decision_at.",
)


_ROUTE_STATS = pl.Struct({"_km": pl.Float64, "_direct": pl.Float64, "_unknown": pl.Boolean})


def route_stats(port_of_loading: str | None, hubs: list[str] | None, port_of_discharge: str | None) -> dict:
    """Sea length (km) of the declared legs, direct sea distance (km) and whether either is unknown, for one route.

    Legs and the direct distance are summed in whole metres (exact in any order), then divided by 1000.
    """
    stops = [port_of_loading, *(hubs or []), port_of_discharge]
    if any(s is None for s in stops):
        return {"_km": None, "_direct": None, "_unknown": True}
    legs = list(zip(stops[:-1], stops[1:], strict=True))
    metres = sea_distances_m([*legs, (stops[0], stops[-1])])
    if any(m is None for m in metres):
        return {"_km": None, "_direct": None, "_unknown": True}
    return {"_km": sum(metres[:-1]) / 1000.0, "_direct": metres[-1] / 1000.0, "_unknown": False}


def _route_stats_batch(routes: pl.Series) -> pl.Series:
    rows = [route_stats(r["port_of_loading"], r["transshipment_ports"], r["port_of_discharge"]) for r in routes.to_list()]
    return pl.Series(rows, dtype=_ROUTE_STATS)


def with_route_geometry(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``route_km`` and ``route_circuity`` from sea-route distances (:mod:`features.data.seadistance`).

    Computed once per distinct route (loading port, hubs, discharge port) and
    joined back: many candidates share a route, and each port pair's sea
    distance is cached. Deterministic: distances are whole metres.
    """
    route = pl.struct(
        pl.col("port_of_loading"), pl.col("transshipment_ports").fill_null(pl.lit([], pl.List(pl.String))), pl.col("port_of_discharge")
    ).alias("_route")
    frame = frame.with_columns(route).cache()  # used twice below: compute once (and keep the optimiser's plan small)
    per_route = (
        frame.select("_route")
        .unique()
        .with_columns(pl.col("_route").map_batches(_route_stats_batch, return_dtype=_ROUTE_STATS).alias("_stats"))
        .unnest("_stats")
    )
    circuity = pl.when(pl.col("_unknown")).then(MISSING).when(pl.col("_direct") < 1.0).then(1.0).otherwise(pl.col("_km") / pl.col("_direct"))
    return (
        frame.join(per_route, on="_route", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("_unknown")).then(MISSING).otherwise(pl.col("_km")).fill_null(MISSING).alias(ROUTE_KM),
            circuity.fill_null(MISSING).alias(CIRCUITY),
        )
        .drop("_route", "_km", "_unknown", "_direct")
    )


def _hours(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds().cast(pl.Float64) / 3_600_000_000


def event_horizon(candidates: pl.DataFrame) -> tuple[datetime, datetime] | None:
    """``(min(etd) - 45 days, max(decision_at))``: every voyage window of ``candidates`` lies in ``[lo, hi)``.

    ``None`` when there are no candidates. ``decision_at`` must already be UTC.
    """
    bounds = candidates.select((pl.col("etd").min() - VOYAGE_LOOKBACK).alias("lo"), pl.col("decision_at").max().alias("hi")).row(0)
    return None if bounds[0] is None or bounds[1] is None else (bounds[0], bounds[1])


def restrict_events(events: pl.LazyFrame, candidates: pl.DataFrame) -> pl.LazyFrame:
    """``events`` limited to the :func:`event_horizon` of ``candidates``, with literal bounds.

    Gives :func:`with_event_features` the same result (it only reads events
    inside each candidate's voyage window), but the literal bounds let a
    Parquet scan skip files and row groups by their statistics instead of
    reading the container's whole history.
    """
    horizon = event_horizon(candidates)
    if horizon is None:
        return events.head(0)
    lo, hi = horizon
    return events.filter((pl.col("event_time") >= pl.lit(lo, dtype=UTC)) & (pl.col("event_time") < pl.lit(hi, dtype=UTC)))


def voyage_window(frame: pl.LazyFrame, events: pl.LazyFrame) -> pl.LazyFrame:
    """Each candidate's events in its voyage window: ``__cand``, its ``container_number``, ``etd``, ``decision_at``,
    ``_doc_seal`` (the manifest's seal), ``port_of_loading``, and the event's ``event_time``, ``locode``,
    ``event_type``, ``_ev_seal``.

    Only events with ``etd - 45 days <= event_time < decision_at`` and after the container's last
    :data:`TRIP_END_EVENTS` event before ``etd`` (its previous trip) count.
    """
    keys = frame.select("__cand", "container_number", "etd", "decision_at", pl.col("seal_number").alias("_doc_seal"), "port_of_loading")
    lookback = (
        keys.join(events.select("container_number", "event_time", "locode", "event_type", pl.col("seal_number").alias("_ev_seal")), on="container_number")
        .filter((pl.col("event_time") >= pl.col("etd") - VOYAGE_LOOKBACK) & (pl.col("event_time") < pl.col("decision_at")))
    )
    # The container's previous trip ends with its last DISCHARGE / GATE_OUT / EMPTY_RETURN before this trip's ETD;
    # only events after that belong to this voyage (without this cut, a reused container's previous trip leaks in).
    previous_end = (
        pl.col("event_time").filter(pl.col("event_type").is_in(TRIP_END_EVENTS) & (pl.col("event_time") < pl.col("etd"))).max().over("__cand")
    )
    return lookback.filter(previous_end.is_null() | (pl.col("event_time") > previous_end))


def with_event_features(frame: pl.LazyFrame, events: pl.LazyFrame, *, window: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Add the event features (needs ``__cand``, ``container_number``, ``etd``, ``seal_number``, ``port_of_loading``, ``decision_at``).

    Only events in the :func:`voyage_window` count; pass ``window`` (computed from the same candidates) to
    share it with other event features.
    """
    frame = frame.cache()  # used twice below: compute once (and keep the optimiser's plan small)
    if window is None:
        window = voyage_window(frame, events)
    at_origin = pl.col("locode") == pl.col("port_of_loading")
    gate_in = pl.col("event_time").filter((pl.col("event_type") == "GATE_IN") & at_origin).min()
    load = pl.col("event_time").filter((pl.col("event_type") == "LOAD") & at_origin).min()
    per_cand = window.group_by("__cand").agg(
        pl.len().cast(pl.Float64).alias(EVENT_COUNT),
        gate_in.alias("_gate_in"),
        load.alias("_load"),
        ((pl.col("_ev_seal") != pl.col("_doc_seal")) & pl.col("_ev_seal").is_not_null()).fill_null(False).sum().cast(pl.Float64).alias(SEAL_MISMATCH),
        pl.col("decision_at").first().alias("_t"),
    )
    ts = (
        window.filter(pl.col("event_type").is_in(["TS_DISCHARGE", "TS_LOAD"]))
        .group_by("__cand", "locode")
        .agg(
            pl.col("event_time").filter(pl.col("event_type") == "TS_DISCHARGE").min().alias("_in"),
            pl.col("event_time").filter(pl.col("event_type") == "TS_LOAD").max().alias("_out"),
            pl.col("decision_at").first().alias("_t"),
        )
        .filter(pl.col("_in").is_not_null())
        .group_by("__cand")
        .agg(_hours(pl.coalesce(pl.col("_out"), pl.col("_t")) - pl.col("_in")).max().alias(TS_DWELL))
    )
    origin_dwell = pl.when(pl.col("_gate_in").is_null()).then(MISSING).otherwise(_hours(pl.coalesce(pl.col("_load"), pl.col("decision_at")) - pl.col("_gate_in")))
    load_missing = (pl.col("etd") < pl.col("decision_at") - timedelta(hours=48)) & pl.col("_load").is_null()
    return (
        frame.join(per_cand, on="__cand", how="left", maintain_order="left")
        .join(ts, on="__cand", how="left", maintain_order="left")
        .with_columns(
            origin_dwell.alias(ORIGIN_DWELL),
            pl.col(TS_DWELL).fill_null(MISSING),
            pl.col(SEAL_MISMATCH).fill_null(0.0),
            pl.col(EVENT_COUNT).fill_null(0.0),
            load_missing.cast(pl.Int8).alias(LOAD_MISSING),
        )
        .drop("_gate_in", "_load", "_t")
    )
