"""Entity history features: how well the engine knows each party, lane, commodity and route at decision time.

For every entity family (consignee, shipper, shipper-consignee pair, lane,
HS heading by origin country, container, loading port, origin country,
transshipment hubs, and the route/commodity novelty keys) a candidate gets,
from data strictly before its ``decision_at``:

- ``<family>_n_prior``: other manifests of the entity filed before decision_at;
- ``<family>_n_<W>d``: other manifests filed in ``[decision_at - W days, decision_at)``;
- ``<family>_days_since_first``: days since the entity's first manifest was filed (the candidate's own filing counts);
- ``<family>_n_inspections`` / ``<family>_n_findings``: inspections and seizures recorded before decision_at;
- ``<family>_finding_rate``: ``(findings + prior * s) / (inspections + s)``, the prior rate and strength ``s`` fitted at training time;
- ``<family>_days_since_last_finding``: days since the last seizure recorded before decision_at (3650 when none).

Two implementations share these semantics:

- :func:`entity_features_batch` for many rows with different decision times
  (training): one time-ordered stream of history events and candidate queries,
  with cumulative counts per entity key;
- :class:`EntityState` for many rows sharing one decision time (a port-day
  list): the state of every entity at that moment, aggregated once, then
  joined by key.

Precondition for both: each candidate's own manifest is part of the history.
``build_features`` adds the candidates to the history on the batch path and
refuses (``ValueError``) a state built from a history that lacks a candidate
filed before the state's time (:meth:`EntityState.missing`). The candidate
itself never counts as "other manifests".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from features.hierarchy import LEVEL_KEYS, commodity_family, hs_subheading, origin_continent, origin_region
from features.registry import declare
from features.stats import FeatureStats

NEVER_DAYS = 3650.0
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class EntityFamily:
    """An entity key and which statistics it gets.

    ``explode`` names a list column: the candidate has one key per element
    (e.g. each transshipment hub) and the family reports the maximum finding
    rate and the total findings over them.
    """

    name: str
    keys: tuple[str, ...]
    description: str
    windows: tuple[int, ...] = ()
    manifests: bool = True
    outcomes: bool = False
    first_seen: bool = False
    last_finding: bool = False
    explode: str | None = None
    export: bool = True
    """False: the family's counts only feed other features (:mod:`features.priors`) and are not model inputs."""


FAMILIES: tuple[EntityFamily, ...] = (
    EntityFamily("consignee", ("consignee_id",), "the consignee", (30, 90, 365), True, True, True, True),
    EntityFamily("shipper", ("shipper_id",), "the shipper", (30, 365), True, True, True, True),
    EntityFamily("pair", ("shipper_id", "consignee_id"), "the shipper-consignee pair", (365,), True, True, True),
    EntityFamily("lane", ("port_of_loading", "port_of_discharge"), "the lane (loading port to discharge port)", (30,), True, True),
    EntityFamily("hs_origin", ("hs_heading", "origin_country"), "the HS heading from the origin country", (365,), True, True),
    EntityFamily("consignee_heading", ("consignee_id", "hs_heading"), "the consignee with this HS heading (new commodity for a known trader)"),
    EntityFamily("consignee_route", ("consignee_id", "route_signature"), "the consignee on this exact route (new route for a known trader)"),
    EntityFamily("lane_route", ("port_of_loading", "port_of_discharge", "route_signature"), "this exact routing on the lane (route novelty)"),
    EntityFamily("exporter_heading", ("shipper_id", "hs_heading"), "the shipper (exporter) with this HS heading (new product for a known exporter)"),
    EntityFamily("exporter_destination", ("shipper_id", "port_of_discharge"), "the shipper (exporter) to this port of discharge (new destination for a known exporter)"),
    EntityFamily("destination", ("port_of_discharge",), "containers bound for the port of discharge, wherever inspected, exports included (destination risk)", (), False, True, False, True),
    EntityFamily("container", ("container_number",), "the container number", (), False, True, False, True),
    EntityFamily("loading_port", ("port_of_loading",), "the port of loading (learned risk of the origin port)", (), False, True),
    EntityFamily("origin_country", ("origin_country",), "the origin country (learned risk)", (), False, True),
    EntityFamily("hub", ("hub",), "the transshipment hubs (learned risk; max rate over the route's hubs)", (), False, True, explode="transshipment_ports"),
    # change in a known trader's behaviour (features.behaviour documents them)
    EntityFamily("consignee_origin", ("consignee_id", "origin_country"), "the consignee from this origin country (new origin for a known trader)"),
    EntityFamily("consignee_loading_port", ("consignee_id", "port_of_loading"), "the consignee from this port of loading (new origin port for a known trader)"),
    EntityFamily("consignee_family", ("consignee_id", "commodity_family"), "the consignee with this commodity family (HS section, reefer apart; new kind of goods for a known trader)"),
    EntityFamily("shipper_family", ("shipper_id", "commodity_family"), "the shipper with this commodity family (HS section, reefer apart; new kind of goods for a known shipper)"),
    # hierarchy levels whose counts only feed the hierarchical priors (features.priors)
    *(
        EntityFamily(name, LEVEL_KEYS[name], name.replace("_", " "), (), False, True, export=False)
        for name in ("origin_region", "origin_continent", "hs_subheading", "hs_heading", "hs_chapter", "commodity_family", "region_family")
    ),
)


def family_columns(f: EntityFamily) -> list[str]:
    """Output columns of a family, in canonical order."""
    cols = []
    if f.manifests:
        cols.append(f"{f.name}_n_prior")
        cols += [f"{f.name}_n_{w}d" for w in f.windows]
    if f.first_seen:
        cols.append(f"{f.name}_days_since_first")
    if f.outcomes:
        cols += [f"{f.name}_n_inspections", f"{f.name}_n_findings", f"{f.name}_finding_rate"]
    if f.last_finding:
        cols.append(f"{f.name}_days_since_last_finding")
    return cols


def _declare_family(f: EntityFamily) -> None:
    before = "strictly before decision_at"
    what = f.description
    if f.manifests:
        declare(f"{f.name}_n_prior", "entity", f"Other manifests of {what} filed {before} (all history).")
        for w in f.windows:
            declare(f"{f.name}_n_{w}d", "entity", f"Other manifests of {what} filed in the trailing {w} days, [decision_at - {w} d, decision_at).")
    if f.first_seen:
        declare(f"{f.name}_days_since_first", "entity", f"Days from the first manifest of {what} filed {before} to decision_at (own filing included).")
    if f.outcomes:
        declare(f"{f.name}_n_inspections", "entity", f"Inspections of {what} recorded {before}" + (" (summed over hubs)." if f.explode else "."))
        declare(f"{f.name}_n_findings", "entity", f"Seizures involving {what} recorded {before}" + (" (summed over hubs)." if f.explode else "."))
        declare(
            f"{f.name}_finding_rate",
            "entity",
            f"Smoothed seizure rate of {what} among inspections recorded {before}: (findings + prior x s) / (inspections + s), "
            "prior and s fitted at training time" + ("; maximum over the hubs, the prior when direct." if f.explode else "."),
        )
    if f.last_finding:
        declare(f"{f.name}_days_since_last_finding", "entity", f"Days since the last seizure involving {what} recorded {before}; 3650 when none.")


for _family in FAMILIES:
    if _family.export:
        _declare_family(_family)


def entity_columns() -> list[str]:
    """Model-input columns of the entity families (exported families only)."""
    return [c for f in FAMILIES if f.export for c in family_columns(f)]


def internal_entity_columns() -> list[str]:
    """Counts of the internal families (``export=False``): produced beside :func:`entity_columns`, never model inputs."""
    return [c for f in FAMILIES if not f.export for c in family_columns(f)]


# ----------------------------------------------------------------------------- shared inputs
def history_rows(manifests: pl.LazyFrame) -> pl.LazyFrame:
    """History manifests with the key columns of every family and ``t = filed_at``."""
    keys = sorted({k for f in FAMILIES for k in f.keys if k != "hub"} | {"transshipment_ports"})
    return manifests.select("manifest_id", pl.col("filed_at").alias("t"), *keys)


def outcome_rows(outcomes: pl.LazyFrame, manifests: pl.LazyFrame) -> pl.LazyFrame:
    """Outcomes with the inspected manifest's keys, ``t = inspected_at`` and ``finding`` (seizure)."""
    keys = history_rows(manifests).drop("t")
    return outcomes.select("manifest_id", pl.col("inspected_at").alias("t"), (pl.col("result") == "SEIZURE").alias("finding")).join(
        keys, on="manifest_id", how="inner"
    )


def _days(delta: pl.Expr) -> pl.Expr:
    return delta.dt.total_microseconds().cast(pl.Float64) / US_PER_DAY


def _finish_exprs(f: EntityFamily, stats: FeatureStats, raw=pl.col) -> list[pl.Expr]:  # noqa: ANN001
    """Feature expressions from raw counts: ``_m0`` (all-time), ``_m<W>`` (window counts), ``_self*``, ``_first``,
    ``_insp``, ``_find``, ``_last`` (and ``_rate`` for exploded families); ``raw(name)`` gives the expression of a raw count.
    """
    out = []
    if f.manifests:
        out.append((raw("_m0") - pl.col("_self0")).cast(pl.Float64).alias(f"{f.name}_n_prior"))
        out += [(raw(f"_m{w}") - pl.col(f"_self{w}")).cast(pl.Float64).alias(f"{f.name}_n_{w}d") for w in f.windows]
    if f.first_seen:
        out.append(pl.when(raw("_first").is_null()).then(-1.0).otherwise(_days(pl.col("decision_at") - raw("_first"))).alias(f"{f.name}_days_since_first"))
    if f.outcomes:
        prior, s = stats.prior_finding_rate, stats.prior_strength
        out += [
            raw("_insp").cast(pl.Float64).alias(f"{f.name}_n_inspections"),
            raw("_find").cast(pl.Float64).alias(f"{f.name}_n_findings"),
            raw("_rate").fill_null((raw("_find") + prior * s) / (raw("_insp") + s)).alias(f"{f.name}_finding_rate")
            if f.explode
            else ((raw("_find") + prior * s) / (raw("_insp") + s)).alias(f"{f.name}_finding_rate"),
        ]
    if f.last_finding:
        out.append(
            pl.when(raw("_last").is_null()).then(NEVER_DAYS).otherwise(_days(pl.col("decision_at") - raw("_last")).clip(upper_bound=NEVER_DAYS)).alias(
                f"{f.name}_days_since_last_finding"
            )
        )
    return out


def _finish(frame: pl.LazyFrame, f: EntityFamily, stats: FeatureStats) -> pl.LazyFrame:
    """Turn raw counts (see :func:`_finish_exprs`) into the family's features (``__cand`` + feature columns)."""
    return frame.select("__cand", *_finish_exprs(f, stats))


def _self_counts(candidates: pl.LazyFrame, f: EntityFamily, windows: tuple[int, ...] | None = None) -> list[pl.Expr]:
    """The candidate's own manifest, counted in ``_m*`` by construction, to subtract (for ``f``'s windows or ``windows``)."""
    exprs = [(pl.col("filed_at") < pl.col("decision_at")).cast(pl.Int64).alias("_self0")]
    exprs += [
        ((pl.col("filed_at") < pl.col("decision_at")) & (pl.col("filed_at") >= pl.col("decision_at") - timedelta(days=w))).cast(pl.Int64).alias(f"_self{w}")
        for w in (f.windows if windows is None else windows)
    ]
    return exprs


def _id_hash() -> pl.Expr:
    return pl.col("manifest_id").hash(seed=0)


# ----------------------------------------------------------------------------- batch path
def _key_hash(keys: tuple[str, ...]) -> pl.Expr:
    return pl.struct(keys).hash(seed=0) if len(keys) > 1 else pl.col(keys[0]).hash(seed=0)


_RAW_KEYS: dict[str, pl.Expr] = {
    "hs_heading": pl.col("hs_code").str.slice(0, 4),
    "origin_country": pl.col("port_of_loading").str.slice(0, 2),
    # the route as a value (loading port, hubs in order, discharge port): equal exactly when route_signature is equal,
    # without building the signature string for every history row
    "route_signature": pl.struct(pl.col("port_of_loading"), pl.col("transshipment_ports").fill_null(pl.lit([], pl.List(pl.String))), pl.col("port_of_discharge")),
    "hs_chapter": pl.col("hs_code").str.slice(0, 2),
    "origin_region": origin_region(),
    "origin_continent": origin_continent(),
    "hs_subheading": hs_subheading(),
    "commodity_family": commodity_family(),
}
_RAW_KEY_COLUMNS = ("manifest_id", "consignee_id", "shipper_id", "port_of_loading", "port_of_discharge", "hs_code", "transshipment_ports", "container_number", "reefer")


def _raw_key_hash(keys: tuple[str, ...]) -> pl.Expr:
    """Hash of a family key computed from manifest columns (derived keys from their sources; see :data:`_RAW_KEYS`)."""
    parts = [_RAW_KEYS.get(k, pl.col(k)).alias(k) for k in keys]
    return pl.struct(parts).hash(seed=0) if len(parts) > 1 else parts[0].hash(seed=0)


def _stream_counts(events: pl.LazyFrame, queries: pl.LazyFrame, *, first_seen: bool, last_finding: bool) -> pl.LazyFrame:
    """Counts of events with the query's key and ``t`` strictly before the query's ``t``.

    ``events``: ``key``, ``t``, ``m`` (manifest 0/1), ``i`` (inspection 0/1), ``fnd`` (finding 0/1).
    ``queries``: ``key``, ``t``, ``__q``. Sorting by time with queries first among equal times makes
    every count strict.
    """
    stream = pl.concat(
        [
            events.select("key", "t", pl.lit(1, pl.Int8).alias("_order"), "m", "i", "fnd", pl.lit(None, pl.UInt64).alias("__q")),
            queries.select("key", "t", pl.lit(0, pl.Int8).alias("_order"), pl.lit(0, pl.Int32).alias("m"), pl.lit(0, pl.Int32).alias("i"), pl.lit(0, pl.Int32).alias("fnd"), "__q"),
        ]
    ).sort(_stream_order())
    exprs = [
        pl.col("m").cum_sum().over("key").alias("_m"),
        pl.col("i").cum_sum().over("key").alias("_insp"),
        pl.col("fnd").cum_sum().over("key").alias("_find"),
    ]
    if first_seen:
        exprs.append(pl.col("t").filter(pl.col("m") == 1).min().over("key").alias("_first_any"))
    if last_finding:
        exprs.append(pl.when(pl.col("fnd") == 1).then(pl.col("t")).forward_fill().over("key").alias("_last"))
    return stream.with_columns(exprs).filter(pl.col("__q").is_not_null())


def _stream_order() -> pl.Expr:
    """One Int64 sort key for a stream: time in microseconds, queries (``_order`` 0) before events (1) at equal times.

    Equivalent to sorting by ``("t", "_order")`` (nulls first), in a single-column sort.
    """
    return pl.col("t").cast(pl.Datetime("us", "UTC")).dt.epoch("us") * 2 + pl.col("_order").cast(pl.Int64)


def _plain_families() -> list[EntityFamily]:
    return [f for f in FAMILIES if not f.explode]


def _flags(m: int, i: int, fnd: pl.Expr | int) -> list[pl.Expr]:
    as_flag = lambda v: v.cast(pl.Int32) if isinstance(v, pl.Expr) else pl.lit(v, pl.Int32)  # noqa: E731
    return [as_flag(m).alias("m"), as_flag(i).alias("i"), as_flag(fnd).alias("fnd")]


def plain_event_rows(hist: pl.LazyFrame, outc: pl.LazyFrame) -> pl.LazyFrame:
    """History as events of the plain families: ``_k_<family>`` key hashes, ``t``, ``m`` / ``i`` / ``fnd`` flags (Int32).

    ``hist``: manifests (:data:`_RAW_KEY_COLUMNS` but ``manifest_id``, ``t = filed_at``); ``outc``: outcomes with the
    same keys, ``t = inspected_at`` and ``finding``. A manifest is one ``m`` event at its filing time, an
    outcome one ``i`` event (``fnd`` when a seizure) at its inspection time; rows without a time are kept (null ``t``).
    """
    keys = [_raw_key_hash(f.keys).alias(f"_k_{f.name}") for f in _plain_families()]
    return pl.concat([hist.select(*keys, "t", *_flags(1, 0, 0)), outc.select(*keys, "t", *_flags(0, 1, pl.col("finding")))])


def history_event_tables(manifests: pl.LazyFrame, outcomes: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """``(events, outc)`` of the batch path: :func:`plain_event_rows` of the history, and outcomes with their manifest's raw keys.

    ``manifests`` must carry canonical party ids already (:func:`features.parties.apply_resolution`).
    """
    raw = manifests.select(*_RAW_KEY_COLUMNS, pl.col("filed_at").alias("t"))
    outc = outcomes.select("manifest_id", pl.col("inspected_at").alias("t"), (pl.col("result") == "SEIZURE").alias("finding")).join(
        raw.drop("t"), on="manifest_id", how="inner"
    )
    return plain_event_rows(raw.drop("manifest_id"), outc), outc


def _old_aggregates(old: pl.LazyFrame, families: list[EntityFamily], wanted: pl.LazyFrame | None) -> dict[str, pl.LazyFrame]:
    """Per family: the older events' counts, first filing and last finding by key (only the keys of ``wanted``, if given)."""
    tables = {}
    for f in families:
        k, aggs = f"_k_{f.name}", []
        if f.manifests:
            aggs.append(pl.col("m").sum().alias(f"{f.name}:old_m"))
        if f.outcomes:
            aggs += [pl.col("i").sum().alias(f"{f.name}:old_insp"), pl.col("fnd").sum().alias(f"{f.name}:old_find")]
        if f.first_seen:
            aggs.append(pl.col("t").filter(pl.col("m") == 1).min().alias(f"{f.name}:old_first"))
        if f.last_finding:
            aggs.append(pl.col("t").filter(pl.col("fnd") == 1).max().alias(f"{f.name}:old_last"))
        rows = old.select(k, "t", "m", "i", "fnd")
        if wanted is not None:
            rows = rows.join(wanted.select(k).unique(), on=k, how="semi")
        tables[f.name] = rows.group_by(k).agg(aggs)
    return tables


def _stream_columns(f: EntityFamily, k: str) -> list[pl.Expr]:
    """Running counts of family ``f`` over its key column ``k`` in a time-ordered stream (strictly before each query)."""
    raw = []
    if f.manifests:
        raw.append(pl.col("m").cum_sum().over(k).alias(f"{f.name}:m"))
    if f.outcomes:
        raw += [pl.col("i").cum_sum().over(k).alias(f"{f.name}:insp"), pl.col("fnd").cum_sum().over(k).alias(f"{f.name}:find")]
    if f.first_seen:
        raw.append(pl.col("t").filter(pl.col("m") == 1).min().over(k).alias(f"{f.name}:first_any"))
    if f.last_finding:
        raw.append(pl.when(pl.col("fnd") == 1).then(pl.col("t")).forward_fill().over(k).alias(f"{f.name}:last"))
    return raw


def _batch_plain(
    candidates: pl.LazyFrame,
    events: pl.LazyFrame,
    stats: FeatureStats,
    *,
    split: datetime | None = None,
    old: dict[str, pl.LazyFrame | pl.DataFrame] | None = None,
) -> pl.LazyFrame:
    """Every non-exploded family from one time-ordered stream of history events and candidate queries.

    Each candidate queries at ``decision_at - W`` for every window ``W`` in use (0 = all-time). History
    events (manifests ``m``, inspections ``i``, findings ``fnd``, each row carrying the key hash of every
    family) are split at the earliest query time:

    - older events precede every query: they are aggregated per key once (counts, first filing, last
      finding) and added to each candidate's all-time figures (they cancel out of window counts);
    - newer events and the queries form one stream, sorted once by time with queries before events at
      equal times, on which each family takes cumulative sums over its own key, so every count is
      strictly before the query time.
    """
    families = _plain_families()
    offsets = tuple(sorted({0, *(w for f in families for w in f.windows)}))
    n = len(offsets)
    keys = [_raw_key_hash(f.keys).alias(f"_k_{f.name}") for f in families]
    key_names = [f"_k_{f.name}" for f in families]
    flags = _flags
    no_query = [pl.lit(1, pl.Int8).alias("_order"), pl.lit(None, pl.UInt64).alias("__q")]
    events = events.with_columns(*no_query)
    if split is None:
        # earliest query time; events strictly before it (or without a time, which sort first) precede every query
        split_frame = candidates.select((pl.col("decision_at").min() - timedelta(days=offsets[-1])).alias("_split"))
        events = events.join(split_frame, how="cross").cache()  # split in two below: hash the keys once
        before_all = pl.col("t").is_null() | (pl.col("t") < pl.col("_split"))
        older = events.filter(before_all).drop("_split")
        recent = events.filter(before_all.not_()).drop("_split")
    else:  # a literal split (at most the earliest query time): a Parquet scan skips the row groups outside each part
        before_all = pl.col("t").is_null() | (pl.col("t") < pl.lit(split, dtype=pl.Datetime("us", "UTC")))
        older, recent = events.filter(before_all), events.filter(before_all.not_())
    queries = [
        candidates.select(
            *keys,
            (pl.col("decision_at") - timedelta(days=w)).alias("t"),
            *flags(0, 0, 0),
            pl.lit(0, pl.Int8).alias("_order"),
            (pl.col("__cand").cast(pl.UInt64) * n + j).alias("__q"),
        )
        for j, w in enumerate(offsets)
    ]
    stream = pl.concat([recent, *queries]).sort(_stream_order())

    raw = [_stream_columns(f, k) for f, k in zip(families, key_names)]
    queried = pl.col("__q").is_not_null()
    if split is None:
        windows = stream.select("__q", *(e for exprs in raw for e in exprs)).filter(queried)
    else:  # a year of national history in the stream: its running counts a few families at a time, each piece cut to the queries
        stream = stream.cache()
        pieces = [stream.select("__q", *(e for exprs in raw[g : g + 4] for e in exprs)).filter(queried) for g in range(0, len(raw), 4)]
        windows = pl.concat([pieces[0], *(piece.drop("__q") for piece in pieces[1:])], how="horizontal")
    counts = (
        windows
        .with_columns((pl.col("__q") // n).cast(pl.UInt64).alias("__cand"), (pl.col("__q") % n).alias("_w"))
        .drop("__q")
    )
    wide = candidates.select("__cand", "decision_at", *keys, *_self_counts(candidates, families[0], offsets[1:]))
    wide = wide.with_columns(pl.col("__cand").cast(pl.UInt64).alias("__cand_key"))
    now = counts.filter(pl.col("_w") == 0).drop("_w").rename({"__cand": "__cand_key"})
    wide = wide.join(now, on="__cand_key", how="left")
    for j, w in enumerate(offsets[1:], start=1):
        users = [f for f in families if w in f.windows]
        before = counts.filter(pl.col("_w") == j).select(pl.col("__cand").alias("__cand_key"), *(pl.col(f"{f.name}:m").alias(f"{f.name}:before{w}") for f in users))
        wide = wide.join(before, on="__cand_key", how="left")
    old = old if old is not None else _old_aggregates(older, families, None)
    for f, k in zip(families, key_names):
        wide = wide.join(old[f.name].lazy(), on=k, how="left")

    out: list[pl.Expr] = []
    for f in families:
        def raw_count(name: str, f: EntityFamily = f) -> pl.Expr:
            col = lambda suffix: pl.col(f"{f.name}:{suffix}")  # noqa: E731
            if name == "_m0":
                return col("m").fill_null(0) + col("old_m").fill_null(0)
            if name.startswith("_m"):  # window counts: older events precede both ends and cancel out
                w = int(name[2:])
                return (col("m") - col(f"before{w}")).fill_null(0)
            if name == "_first":
                first = pl.min_horizontal(col("first_any"), col("old_first"))
                return pl.when(col("m").fill_null(0) + col("old_m").fill_null(0) > 0).then(first)
            if name in ("_insp", "_find"):
                return col(name[1:]).fill_null(0) + col(f"old_{name[1:]}").fill_null(0)
            return pl.coalesce(col("last"), col("old_last"))  # _last: latest finding, newer events first

        out += _finish_exprs(f, stats, raw_count)
    return wide.select("__cand", *out)


def _exploded_queries(candidates: pl.LazyFrame, f: EntityFamily) -> pl.LazyFrame:
    return candidates.select("__cand", "decision_at", pl.col(f.explode).alias(f.keys[0])).explode(f.keys[0]).drop_nulls(f.keys[0])


def _exploded_outcomes(outc: pl.LazyFrame, f: EntityFamily) -> pl.LazyFrame:
    return outc.select("t", "finding", pl.col(f.explode).alias(f.keys[0])).explode(f.keys[0]).drop_nulls(f.keys[0])


def _aggregate_exploded(per_key: pl.LazyFrame, candidates: pl.LazyFrame, f: EntityFamily, stats: FeatureStats) -> pl.LazyFrame:
    """Per (candidate, hub) counts -> per candidate: summed counts, max smoothed rate."""
    prior, s = stats.prior_finding_rate, stats.prior_strength
    agg = per_key.group_by("__cand").agg(
        pl.col("_insp").sum(), pl.col("_find").sum(), ((pl.col("_find") + prior * s) / (pl.col("_insp") + s)).max().alias("_rate")
    )
    frame = candidates.select("__cand", "decision_at").join(agg, on="__cand", how="left").with_columns(pl.col("_insp", "_find").fill_null(0))
    return _finish(frame, f, stats)


def _batch_exploded(candidates: pl.LazyFrame, outc: pl.LazyFrame, f: EntityFamily, stats: FeatureStats) -> pl.LazyFrame:
    key_col = f.keys[0]
    queries = _exploded_queries(candidates, f).with_row_index("__q")
    events = _exploded_outcomes(outc, f).select(
        pl.col(key_col).hash(seed=0).alias("key"), "t", pl.lit(0, pl.Int32).alias("m"), pl.lit(1, pl.Int32).alias("i"), pl.col("finding").cast(pl.Int32).alias("fnd")
    )
    counts = _stream_counts(events, queries.select(pl.col(key_col).hash(seed=0).alias("key"), pl.col("decision_at").alias("t"), pl.col("__q").cast(pl.UInt64)), first_seen=False, last_finding=False)
    per_key = queries.select("__q", "__cand").join(counts.select(pl.col("__q").cast(pl.UInt32), "_insp", "_find"), on="__q", how="left")
    return _aggregate_exploded(per_key, candidates, f, stats)


def entity_features_batch(candidates: pl.LazyFrame, manifests: pl.LazyFrame, outcomes: pl.LazyFrame, stats: FeatureStats) -> pl.LazyFrame:
    """Entity features for candidates with arbitrary decision times (``__cand`` + feature columns).

    ``candidates`` need ``__cand``, ``decision_at``, ``filed_at`` and the key columns;
    ``manifests`` must include every candidate's own manifest.
    """
    events, outc = history_event_tables(manifests, outcomes)
    return entity_features_from_events(candidates, events, outc, stats)


def entity_features_from_events(
    candidates: pl.LazyFrame,
    events: pl.LazyFrame,
    outc: pl.LazyFrame,
    stats: FeatureStats,
    *,
    split: datetime | None = None,
    old: dict[str, pl.LazyFrame | pl.DataFrame] | None = None,
) -> pl.LazyFrame:
    """:func:`entity_features_batch` from the history's events already keyed (:func:`history_event_tables`).

    ``split`` (UTC), when given, must be at most ``min(decision_at) - 365 days`` (the longest window):
    events before it are only aggregated per key (``old``: :func:`old_entity_aggregates` for the same
    split and candidates), the others are streamed with the candidates' queries. Counts are exact
    integers, so the features equal :func:`entity_features_batch`'s whatever the split.
    """
    candidates = candidates.cache()  # used by every family: compute once
    result = _batch_plain(candidates, events, stats, split=split, old=old)
    for f in FAMILIES:
        if f.explode:
            result = result.join(_batch_exploded(candidates, outc, f, stats), on="__cand", how="left")
    return result.select("__cand", *entity_columns(), *internal_entity_columns())


def longest_window_days() -> int:
    """The longest trailing window of any family (days): a split for :func:`entity_features_from_events` is at least this before every decision."""
    return max(w for f in _plain_families() for w in f.windows)


def old_entity_aggregates(events: pl.LazyFrame, split: datetime, candidates: pl.LazyFrame) -> dict[str, pl.DataFrame]:
    """Per plain family, the events before ``split`` (or without a time) aggregated by key, for the keys of ``candidates`` only.

    Collected family by family with Polars' streaming engine: memory is bounded by the candidates'
    keys, not by the history (a Parquet scan of ``events`` is read one key column at a time).
    """
    families = _plain_families()
    wanted = candidates.select(*(_raw_key_hash(f.keys).alias(f"_k_{f.name}") for f in families)).collect()
    before = events.filter(pl.col("t").is_null() | (pl.col("t") < pl.lit(split, dtype=pl.Datetime("us", "UTC"))))
    plans = _old_aggregates(before, families, wanted.lazy())
    return {name: plan.collect(engine="streaming") for name, plan in plans.items()}


# ----------------------------------------------------------------------------- snapshot path
@dataclass(frozen=True)
class EntityState:
    """Every entity's history aggregated at one decision time ``at``.

    Built once per decision time (e.g. each morning, for the daily lists) from
    the full history; scoring a port-day's candidates is then a hash join per
    family. Same semantics as :func:`entity_features_batch` for candidates whose
    ``decision_at`` equals ``at``.
    """

    at: datetime
    tables: dict[str, pl.DataFrame]
    known: pl.Series | None = None
    """Hashes of the ``manifest_id`` of every manifest filed before ``at`` that the state counts."""

    @classmethod
    def build(cls, manifests: pl.LazyFrame, outcomes: pl.LazyFrame, at: datetime) -> "EntityState":
        hist = history_rows(manifests).filter(pl.col("t") < at)
        outc = outcome_rows(outcomes, manifests).filter(pl.col("t") < at)
        plans = {f.name: _snapshot_plan(f, hist, outc, at) for f in FAMILIES}
        *frames, known = pl.collect_all([*plans.values(), hist.select(_id_hash().sort())])
        return cls(at=at, tables=dict(zip(plans, frames)), known=known.to_series())

    def missing(self, candidates: pl.DataFrame | pl.LazyFrame) -> list[str]:
        """Ids of candidates filed before ``at`` whose manifest is not in the state's history (sorted).

        The state counts every manifest filed before ``at`` and subtracts each
        candidate's own; a candidate missing from the history it was built from
        would get counts one too low (and miss its own first filing), unlike the
        batch path, which adds candidates to the history.
        """
        if self.known is None:
            return []
        filed = candidates.lazy().filter(pl.col("filed_at") < self.at).select("manifest_id", _id_hash().alias("_h")).collect()
        if self.known.len() == 0:
            return sorted(filed["manifest_id"].unique().to_list())
        # ``known`` is sorted: a binary search per candidate instead of hashing the whole history.
        position = self.known.search_sorted(filed["_h"]).clip(upper_bound=self.known.len() - 1)
        found = self.known.gather(position) == filed["_h"]
        return sorted(filed.filter(~found)["manifest_id"].unique().to_list())

    def features(self, candidates: pl.LazyFrame, stats: FeatureStats) -> pl.LazyFrame:
        """Entity features for candidates whose ``decision_at`` all equal ``self.at``."""
        candidates = candidates.cache()  # used by every family: compute once
        result = candidates.select("__cand")
        for f in FAMILIES:
            result = result.join(self._family(candidates, f, stats), on="__cand", how="left")
        return result

    def _family(self, candidates: pl.LazyFrame, f: EntityFamily, stats: FeatureStats) -> pl.LazyFrame:
        table = self.tables[f.name].lazy()
        if f.explode:
            per_key = _exploded_queries(candidates, f).join(table, on=list(f.keys), how="left").with_columns(pl.col("_insp", "_find").fill_null(0))
            return _aggregate_exploded(per_key, candidates, f, stats)
        frame = (
            candidates.select("__cand", "decision_at", *f.keys, *_self_counts(candidates, f))
            .join(table, on=list(f.keys), how="left", nulls_equal=True)
            .with_columns(pl.col(c).fill_null(0) for c in _count_columns(f))
        )
        return _finish(frame, f, stats)


def _count_columns(f: EntityFamily) -> list[str]:
    cols = []
    if f.manifests:
        cols += ["_m0", *(f"_m{w}" for w in f.windows)]
    if f.outcomes:
        cols += ["_insp", "_find"]
    return cols


def _snapshot_plan(f: EntityFamily, hist: pl.LazyFrame, outc: pl.LazyFrame, at: datetime) -> pl.LazyFrame:
    keys = list(f.keys)
    if f.explode:
        exploded = _exploded_outcomes(outc, f)
        return exploded.group_by(keys).agg(pl.len().cast(pl.Int64).alias("_insp"), pl.col("finding").sum().cast(pl.Int64).alias("_find"))
    tables = []
    if f.manifests:
        tables.append(
            hist.group_by(keys).agg(
                pl.len().cast(pl.Int64).alias("_m0"),
                *(((pl.col("t") >= at - timedelta(days=w)).sum().cast(pl.Int64)).alias(f"_m{w}") for w in f.windows),
                *([pl.col("t").min().alias("_first")] if f.first_seen else []),
            )
        )
    if f.outcomes:
        tables.append(
            outc.group_by(keys).agg(
                pl.len().cast(pl.Int64).alias("_insp"),
                pl.col("finding").sum().cast(pl.Int64).alias("_find"),
                *([pl.col("t").filter(pl.col("finding")).max().alias("_last")] if f.last_finding else []),
            )
        )
    frame = tables[0]
    for other in tables[1:]:
        frame = frame.join(other, on=keys, how="full", coalesce=True, nulls_equal=True)
    return frame
