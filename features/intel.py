"""Watchlist and intelligence alert matching.

An alert is *active* for a candidate when ``valid_from <= decision_at < valid_to``
(``valid_to`` null = open-ended). Alerts issued after the decision time never
match, so matching is point-in-time safe.

Match rules per kind:

- ``PARTY``: the value equals the shipper, consignee or notify party id;
- ``CONTAINER``: the container number;
- ``BL``: the master or house bill of lading;
- ``VESSEL``: the vessel IMO number;
- ``HS_CODE``: the value is a prefix (2-10 digits) of the HS code;
- ``ROUTE``: ``FROM>TO`` where FROM matches the place of receipt, the port of
  loading or any transshipment port and TO the port of discharge or place of
  delivery; each side is a UN/LOCODE, a 2-letter country or ``*``.
"""

from __future__ import annotations

import polars as pl

from features.data.contracts import ALERT_KINDS

ALERT_OUTPUT_COLUMNS = (
    "alert_count",
    "alert_max_severity",
    "alert_ids",
    "alert_reasons",
    "alert_severities",
    *(f"alert_count_{k.lower()}" for k in ALERT_KINDS),
)

_EXACT_MATCH_COLUMNS: dict[str, tuple[str, ...]] = {
    "PARTY": ("shipper_id", "consignee_id", "notify_id"),
    "CONTAINER": ("container_number",),
    "BL": ("master_bl", "house_bl"),
    "VESSEL": ("vessel_imo",),
}
_HS_PREFIX_LENGTHS = tuple(range(2, 11))
"""Every prefix length an HS_CODE alert may have (2-10 digits, odd lengths included: ingest and the service accept them)."""


def _keys(candidates: pl.LazyFrame, alerts: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """(``__alert_row``, kind, value) pairs a candidate can be matched on, for exact-match kinds and HS prefixes.

    With ``alerts``, only pairs whose (kind, value) some alert has are kept (the others cannot match): the
    pairs are filtered before being deduplicated, which keeps large batches cheap.
    """
    parts = [
        candidates.select("__alert_row", pl.lit(kind).alias("kind"), pl.col(column).alias("value"))
        for kind, columns in _EXACT_MATCH_COLUMNS.items()
        for column in columns
    ]
    parts += [
        candidates.filter(pl.col("hs_code").str.len_chars() >= n).select(
            "__alert_row", pl.lit("HS_CODE").alias("kind"), pl.col("hs_code").str.slice(0, n).alias("value")
        )
        for n in _HS_PREFIX_LENGTHS
    ]
    if alerts is not None:
        wanted = alerts.select("kind", "value").unique()
        parts = [part.join(wanted, on=["kind", "value"], how="semi") for part in parts]
    return pl.concat(parts).drop_nulls("value").unique(maintain_order=True)


def _side_matches(side: pl.Expr, port: pl.Expr) -> pl.Expr:
    """A route side (LOCODE, country or '*') matches a UN/LOCODE expression."""
    return (side == "*") | (side == port) | ((side.str.len_chars() == 2) & (port.str.slice(0, 2) == side))


def _route_matches(candidates: pl.LazyFrame, alerts: pl.LazyFrame) -> pl.LazyFrame:
    """Candidates x ROUTE alerts whose FROM and TO sides both match.

    Matched once per distinct route shape (receipt, loading, hubs, discharge, delivery), then joined back to
    the candidates sharing it.
    """
    routes = alerts.filter(pl.col("kind") == "ROUTE").with_columns(
        pl.col("value").str.split(">").list.get(0, null_on_oob=True).alias("route_from"),
        pl.col("value").str.split(">").list.get(1, null_on_oob=True).alias("route_to"),
    )
    shape = pl.struct(
        pl.col("place_of_receipt"),
        pl.col("port_of_loading"),
        pl.col("transshipment_ports").fill_null(pl.lit([], pl.List(pl.String))),
        pl.col("port_of_discharge"),
        pl.col("place_of_delivery"),
    ).alias("_shape")
    shapes = candidates.select(shape).unique().select(
        "_shape",
        pl.concat_list(
            pl.col("_shape").struct.field("place_of_receipt"),
            pl.col("_shape").struct.field("port_of_loading"),
            pl.col("_shape").struct.field("transshipment_ports"),
        ).alias("_origin_ports"),
        pl.concat_list(pl.col("_shape").struct.field("port_of_discharge"), pl.col("_shape").struct.field("place_of_delivery")).alias("_dest_ports"),
    )
    pairs = shapes.join(routes, how="cross")
    exploded_from = pairs.explode("_origin_ports").filter(_side_matches(pl.col("route_from"), pl.col("_origin_ports")))
    matched = (
        exploded_from.unique(["_shape", "alert_id"])
        .explode("_dest_ports")
        .filter(_side_matches(pl.col("route_to"), pl.col("_dest_ports")))
        .unique(["_shape", "alert_id"])
        .drop("_origin_ports", "_dest_ports", "route_from", "route_to")
    )
    return candidates.select("__alert_row", "decision_at", shape).join(matched, on="_shape", how="inner").drop("_shape")


def _active(at: pl.Expr) -> pl.Expr:
    return (pl.col("valid_from") <= at) & (pl.col("valid_to").is_null() | (at < pl.col("valid_to")))


def _reason_with_issuer(columns: list[str]) -> pl.Expr:
    """``"<reason> (issued by <unit>)"`` when the alerts name their issuing unit, else the reason."""
    if "issuing_unit" not in columns:
        return pl.col("reason")
    issuer = pl.col("issuing_unit").str.strip_chars()
    return pl.when(issuer.is_not_null() & (issuer != "")).then(pl.format("{} (issued by {})", pl.col("reason"), issuer)).otherwise(pl.col("reason"))


def match_alerts(candidates: pl.LazyFrame, alerts: pl.LazyFrame) -> pl.LazyFrame:
    """Active alert matches per candidate row.

    Parameters
    ----------
    candidates
        Manifest rows (MANIFESTS contract columns) with a ``decision_at``
        column (UTC). One output row per input row, in input order.
    alerts
        ALERTS contract rows.

    Returns
    -------
    The input columns plus ``alert_count``, ``alert_max_severity`` (0 when
    none), ``alert_ids``, ``alert_reasons`` (each followed by "(issued by <issuing_unit>)"
    when the alerts have that column) and ``alert_severities`` (sorted by
    severity desc then id) and ``alert_count_<kind>`` per kind. Only alerts active at the row's
    ``decision_at`` count.
    """
    indexed = candidates.with_row_index("__alert_row").cache()  # used many times below: compute once
    keyed = _keys(indexed, alerts).join(indexed.select("__alert_row", "decision_at"), on="__alert_row")
    exact = keyed.join(alerts, on=["kind", "value"], how="inner")
    route = _route_matches(indexed, alerts)
    columns = ["__alert_row", "decision_at", "alert_id", "kind", "reason", "severity", "valid_from", "valid_to"]
    if "issuing_unit" in alerts.collect_schema().names():  # the officer reads who issued the alert
        columns.append("issuing_unit")
    hits = (
        pl.concat([exact.select(columns), route.select(columns)])
        .filter(_active(pl.col("decision_at")))
        .unique(["__alert_row", "alert_id"], maintain_order=True)
        .sort(["__alert_row", "severity", "alert_id"], descending=[False, True, False])
    )
    per_kind = [(pl.col("kind") == kind).sum().cast(pl.Int64).alias(f"alert_count_{kind.lower()}") for kind in ALERT_KINDS]
    summary = hits.group_by("__alert_row", maintain_order=True).agg(
        pl.len().cast(pl.Int64).alias("alert_count"),
        pl.col("severity").max().cast(pl.Int64).alias("alert_max_severity"),
        pl.col("alert_id").alias("alert_ids"),
        _reason_with_issuer(columns).alias("alert_reasons"),
        pl.col("severity").cast(pl.Int64).alias("alert_severities"),
        *per_kind,
    )
    counts = ["alert_count", "alert_max_severity", *(f"alert_count_{k.lower()}" for k in ALERT_KINDS)]
    return (
        indexed.join(summary, on="__alert_row", how="left", maintain_order="left")
        .with_columns(
            *(pl.col(c).fill_null(0) for c in counts),
            pl.col("alert_ids").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("alert_reasons").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            pl.col("alert_severities").fill_null(pl.lit([], dtype=pl.List(pl.Int64))),
        )
        .drop("__alert_row")
    )
