"""Voyage timing and container events, consistent with each manifest's route.

Every manifest sails origin -> transshipment hubs -> discharge port. Leg times
follow great-circle distances (sea routes are ~30% longer) at ~16 knots plus
port time; containers dwell at the origin terminal before loading and at each
hub between discharge and reload. Events are generated from the same timing so
they agree with the manifest's ETD and ETA.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from features.data.reference import haversine_km, load_ports

SEA_FACTOR = 1.3
SPEED_KMH = 30.0
PORT_HOURS = 12.0
HOUR_US = 3_600_000_000


def stops_frame(plan: pl.DataFrame) -> pl.DataFrame:
    """One row per (manifest, stop) with the sailing hours of the leg arriving at that stop.

    Precondition: ``plan`` has ``row`` (unique int), ``origin_port``, ``route``
    (List(String) of hubs) and ``dest_port``. ``pos`` is 0 at the origin and
    ``n_stops - 1`` at the discharge port.
    """
    ports = load_ports().select("locode", "latitude", "longitude")
    stops = (
        plan.select(
            "row",
            pl.concat_list(pl.col("origin_port"), pl.col("route").fill_null([]), pl.col("dest_port")).alias("stop"),
        )
        .with_columns(pl.int_ranges(0, pl.col("stop").list.len()).alias("pos"))
        .explode("stop", "pos")
        .join(ports, left_on="stop", right_on="locode", how="left", maintain_order="left")
    )
    distance = haversine_km(
        pl.col("latitude").shift(1).over("row"), pl.col("longitude").shift(1).over("row"), pl.col("latitude"), pl.col("longitude")
    )
    return stops.with_columns(
        pl.when(pl.col("pos") == 0)
        .then(0.0)
        .otherwise(distance.fill_null(0.0) * SEA_FACTOR / SPEED_KMH + PORT_HOURS)
        .alias("sail_h"),
        (pl.col("pos").max().over("row") + 1).alias("n_stops"),
    )


def with_hub_dwell(stops: pl.DataFrame, ts_dwell: pl.DataFrame) -> pl.DataFrame:
    """Attach each hub's dwell hours (``ts_dwell``: row, ts_dwell_h list aligned with the route)."""
    hub_dwell = (
        ts_dwell.select("row", pl.col("ts_dwell_h"))
        .with_columns(pl.int_ranges(1, pl.col("ts_dwell_h").list.len() + 1).alias("pos"))
        .explode("ts_dwell_h", "pos")
        .drop_nulls("pos")
    )
    return stops.join(hub_dwell, on=["row", "pos"], how="left", maintain_order="left").with_columns(
        pl.col("ts_dwell_h").fill_null(0.0)
    )


def arrival_offsets(stops: pl.DataFrame) -> pl.DataFrame:
    """Hours from departure (ETD) to arrival at each stop: sailing so far plus dwell at earlier hubs."""
    return stops.with_columns(
        (pl.col("sail_h").cum_sum().over("row") + (pl.col("ts_dwell_h").cum_sum().over("row") - pl.col("ts_dwell_h"))).alias(
            "arrive_h"
        )
    )


def voyage_hours(plan: pl.DataFrame) -> pl.DataFrame:
    """Total hours from ETD to ETA per plan row (``row``, ``voyage_h``)."""
    stops = arrival_offsets(with_hub_dwell(stops_frame(plan), plan.select("row", "ts_dwell_h")))
    return stops.filter(pl.col("pos") == pl.col("n_stops") - 1).select("row", pl.col("arrive_h").alias("voyage_h"))


def build_events(manifests: pl.DataFrame, rng: np.random.Generator, *, chunk_rows: int = 150_000) -> pl.DataFrame:
    """Container events for every manifest (see :func:`build_events_chunk`), built in chunks to bound memory."""
    chunks = [build_events_chunk(manifests.slice(i, chunk_rows), rng) for i in range(0, manifests.height, chunk_rows)]
    return pl.concat(chunks) if chunks else build_events_chunk(manifests, rng)


def build_events_chunk(manifests: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Container events for every manifest, consistent with its route, ETD and ETA.

    ``manifests`` carries the hidden timing columns ``_origin_dwell_h``,
    ``_ts_dwell_h`` (list per hub), ``_ripon_hub_extra_h`` (extra dwell at the
    first hub, taken from the first leg) and ``_event_seal`` (the seal read at
    events from loading on; differs from the documents when a seal was replaced),
    and optionally ``_seal_swap_at_hub`` (the seal was replaced at the first hub:
    the documents' seal is read up to the discharge there),
    ``_seal_swap_before_gate_in`` (replaced before the gate-in at the origin:
    the new seal is read from the gate-in on) and
    ``_export_stopped_at`` (seized at export: the container is taken out of the
    origin terminal then, a ``GATE_OUT`` there, and has no later event).
    """
    optional = {"_seal_swap_at_hub": pl.lit(False), "_seal_swap_before_gate_in": pl.lit(False), "_export_stopped_at": pl.lit(None, pl.Datetime("us", "UTC"))}
    manifests = manifests.with_columns(value.alias(name) for name, value in optional.items() if name not in manifests.columns)
    plan = manifests.select(
        pl.col("_row").alias("row"),
        "container_number",
        pl.col("port_of_loading").alias("origin_port"),
        pl.col("transshipment_ports").alias("route"),
        pl.col("port_of_discharge").alias("dest_port"),
        pl.col("_ts_dwell_h").alias("ts_dwell_h"),
        "etd",
        "eta",
        "vessel_imo",
        "voyage",
        "seal_number",
        "_origin_dwell_h",
        "_ripon_hub_extra_h",
        "_event_seal",
        "_second_vessel",
        "_seal_swap_at_hub",
        "_seal_swap_before_gate_in",
        "_export_stopped_at",
    )
    stops = arrival_offsets(with_hub_dwell(stops_frame(plan), plan.select("row", "ts_dwell_h")))
    stops = stops.join(plan, on="row", how="left", maintain_order="left")
    n = stops.height
    us = lambda hours: (hours * HOUR_US).cast(pl.Int64)  # noqa: E731
    arrive = pl.col("etd") + pl.duration(microseconds=us(pl.col("arrive_h")))
    hub_arrive = arrive - pl.when(pl.col("pos") == 1).then(pl.duration(microseconds=us(pl.col("_ripon_hub_extra_h")))).otherwise(
        pl.duration(microseconds=0)
    )
    is_origin = pl.col("pos") == 0
    is_dest = pl.col("pos") == pl.col("n_stops") - 1
    is_hub = ~is_origin & ~is_dest
    after_first_leg = pl.col("pos") >= 2
    vessel_here = pl.when(after_first_leg & pl.col("_second_vessel").is_not_null()).then(pl.col("_second_vessel")).otherwise(pl.col("vessel_imo"))
    gate_out_h = pl.Series(rng.uniform(24, 120, n))
    empty_h = pl.Series(rng.uniform(48, 192, n))
    stops = stops.with_columns(gate_out_h.alias("_gate_out_h"), empty_h.alias("_empty_h"))
    common = [pl.col("container_number"), pl.col("stop").alias("locode")]

    def event(kind: str, when: pl.Expr, mask: pl.Expr, vessel: pl.Expr | None, seal: pl.Expr) -> pl.LazyFrame:
        return (
            stops.lazy()
            .filter(mask)
            .select(
                *common,
                when.alias("event_time"),
                pl.lit(kind).alias("event_type"),
                (vessel if vessel is not None else pl.lit(None, pl.String)).alias("vessel_imo"),
                (pl.col("voyage") if vessel is not None else pl.lit(None, pl.String)).alias("voyage"),
                seal.alias("seal_number"),
                pl.col("row"),
                pl.col("pos"),
            )
        )

    doc_seal = pl.col("seal_number")
    later_seal = pl.col("_event_seal")
    swapped_at_hub = pl.col("_seal_swap_at_hub").fill_null(False)
    until_first_hub = pl.when(swapped_at_hub & (pl.col("pos") <= 1)).then(doc_seal).otherwise(later_seal)
    stopped = pl.col("_export_stopped_at").is_not_null()
    sailed = ~stopped
    frames = [
        event(
            "GATE_IN",
            pl.col("etd") - pl.duration(microseconds=us(pl.col("_origin_dwell_h"))),
            is_origin,
            None,
            pl.when(pl.col("_seal_swap_before_gate_in").fill_null(False)).then(later_seal).otherwise(doc_seal),
        ),
        event("LOAD", pl.col("etd"), is_origin & sailed, pl.col("vessel_imo"), until_first_hub),
        event("GATE_OUT", pl.col("_export_stopped_at"), is_origin & stopped, None, later_seal),
        event("TS_DISCHARGE", hub_arrive, is_hub & sailed, vessel_here, until_first_hub),
        event("TS_LOAD", arrive + pl.duration(microseconds=us(pl.col("ts_dwell_h"))), is_hub & sailed, pl.col("_second_vessel").fill_null(pl.col("vessel_imo")), later_seal),
        event("DISCHARGE", pl.col("eta"), is_dest & sailed, vessel_here, later_seal),
        event("GATE_OUT", pl.col("eta") + pl.duration(microseconds=us(pl.col("_gate_out_h"))), is_dest & sailed, None, later_seal),
        event(
            "EMPTY_RETURN",
            pl.col("eta") + pl.duration(microseconds=us(pl.col("_gate_out_h") + pl.col("_empty_h"))),
            is_dest & sailed,
            None,
            pl.lit(None, pl.String),
        ),
    ]
    order = {k: i for i, k in enumerate(("GATE_IN", "LOAD", "TS_DISCHARGE", "TS_LOAD", "DISCHARGE", "GATE_OUT", "EMPTY_RETURN"))}
    return (
        pl.concat(frames)
        .with_columns(pl.col("event_type").replace_strict(order, return_dtype=pl.Int8).alias("_k"))
        .sort("row", "pos", "_k")
        .drop("_k", "pos")
        .collect()
    )
