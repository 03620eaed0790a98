"""Watchlist and intelligence alert matching.

An alert is *active* for a candidate when ``valid_from <= decision_at < valid_to``
(``valid_to`` null = open-ended). Alerts issued after the decision time never
match, so matching is point-in-time safe.

Match rules per kind:

- ``PARTY``: the value equals the shipper, consignee or notify party id; or, for a value
  ``NAME:<normalised name, spaces as ->`` (:func:`party_name_value`), the shipper, consignee or
  notify party *name* has a :func:`features.names.party_similarity` of at least
  :data:`NAME_MATCH_THRESHOLD` with it (legal forms, punctuation, accents and word order do not
  matter); the reason then names the party role, both spellings and the similarity;
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
from rapidfuzz import fuzz, process

from features.data.contracts import ALERT_KINDS
from features.names import normalise_party_name

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


NAME_PREFIX = "NAME:"
NAME_MATCH_THRESHOLD = 90.0
"""Smallest party-name similarity (0..100) that counts as a match."""
_NAME_COLUMNS = {"shipper_name": "shipper", "consignee_name": "consignee", "notify_name": "notify party"}


def party_name_value(name: str) -> str:
    """The PARTY alert value matching ``name`` by spelling: ``NAME:`` + its normalised form, spaces as ``-`` (<= 64 chars).

    Examples
    --------
    >>> party_name_value("Acme Trading Limited")
    'NAME:ACME-TRADING-LTD'
    """
    normalised = normalise_party_name(name)
    if not normalised:
        raise ValueError("a party name needs at least one letter or digit")
    return (NAME_PREFIX + normalised.replace(" ", "-"))[:64].rstrip("-")


def party_name_of_value(value: str) -> str | None:
    """The normalised name a ``NAME:`` PARTY value stands for, ``None`` for an identifier value."""
    if not value.startswith(NAME_PREFIX):
        return None
    return value.removeprefix(NAME_PREFIX).replace("-", " ")


def _name_similarities(names: list[str], wanted: list[str]) -> list[list[float]]:
    """Similarity (0..100) of every normalised candidate name to every normalised alert name.

    The larger of rapidfuzz's token-sort ratio (word order free) and the plain ratio with spaces removed, as
    :func:`features.names.party_similarity`, computed in one vectorised pass.
    """
    by_tokens = process.cdist(names, wanted, scorer=fuzz.token_sort_ratio, workers=1)
    unspaced = process.cdist([n.replace(" ", "") for n in names], [w.replace(" ", "") for w in wanted], scorer=fuzz.ratio, workers=1)
    return [[float(max(a, b)) for a, b in zip(row_a, row_b)] for row_a, row_b in zip(by_tokens, unspaced)]


def _name_matches(candidates: pl.LazyFrame, alerts: pl.LazyFrame) -> pl.LazyFrame | None:
    """Candidates x ``NAME:`` PARTY alerts whose party names are similar enough, the match stated in the reason.

    ``None`` when there is no such alert or the candidates carry no party names.
    """
    name_alerts = alerts.filter((pl.col("kind") == "PARTY") & pl.col("value").str.starts_with(NAME_PREFIX)).collect()
    present = [c for c in _NAME_COLUMNS if c in candidates.collect_schema().names()]
    if name_alerts.height == 0 or not present:
        return None
    wanted = [party_name_of_value(v) or "" for v in name_alerts["value"]]
    rows = []
    for column in present:
        names = candidates.select("__alert_row", "decision_at", pl.col(column).alias("name")).drop_nulls("name").collect()
        distinct = names["name"].unique().to_list()
        normalised = [normalise_party_name(n) for n in distinct]
        scores = _name_similarities(normalised, wanted)
        for name, row_scores in zip(distinct, scores):
            for j, score in enumerate(row_scores):
                if score >= NAME_MATCH_THRESHOLD:
                    rows.append({"name": name, "__alert_index": j, "__similarity": score, "__role": _NAME_COLUMNS[column], "__column": column})
    if not rows:
        return None
    matched = pl.DataFrame(rows, schema={"name": pl.String, "__alert_index": pl.UInt32, "__similarity": pl.Float64, "__role": pl.String, "__column": pl.String})
    indexed_alerts = name_alerts.with_row_index("__alert_index")
    parts = []
    for column in present:
        mine = matched.filter(pl.col("__column") == column).lazy()
        parts.append(candidates.select("__alert_row", "decision_at", pl.col(column).alias("name")).join(mine, on="name"))
    reason = pl.format(
        "{} [{} name '{}' matches '{}', similarity {}]",
        pl.col("reason"), pl.col("__role"), pl.col("name"), pl.col("value").str.strip_prefix(NAME_PREFIX).str.replace_all("-", " "),
        pl.col("__similarity").round(0).cast(pl.Int64),
    )
    return (
        pl.concat(parts)
        .join(indexed_alerts.lazy(), on="__alert_index")
        .sort(["__alert_row", "__similarity"], descending=[False, True], maintain_order=True)  # ties: shipper, consignee, notify
        .unique(["__alert_row", "alert_id"], keep="first", maintain_order=True)
        .with_columns(reason.alias("reason"))
    )


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
    by_name = _name_matches(indexed, alerts)
    parts = [exact.select(columns), route.select(columns)] + ([] if by_name is None else [by_name.select(columns)])
    hits = (
        pl.concat(parts)
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
