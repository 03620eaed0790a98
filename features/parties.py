"""Party resolution: one canonical party per real trader across spelling variants and inconsistent identifiers.

Filers spell one trader many ways (``Café Andino S.A.``, ``CAFE ANDINO SA``)
and identify it inconsistently (an EORI here, a tax number there, a
placeholder such as ``UNKNOWN`` elsewhere), so entity history keyed on the
declared identifier splits one trader into several. :func:`resolve_parties`
links the distinct party records ``(id, name, country)`` of the shipper,
consignee and notify roles (one registry for all roles) and
:func:`apply_resolution` replaces each ``<role>_id`` by the canonical id,
before entity history is computed (:func:`features.pipeline.build_features`).

Online, point in time. Records are taken in filing order: the first manifest
carrying a record (``filed_at``, ties by ``manifest_id``; within a manifest
shipper, consignee, notify) places it. Each record is linked, once, to a party
of the records placed before it, using only the names, identifiers and trading
partners of manifests filed up to its own; its canonical id never changes
afterwards. So adding later manifests never changes an earlier record's
canonical id, and a feature computed from history filed before a decision time
only sees links known then (no point-in-time leak through resolution).

Linkage rules for a record placed after others (first that applies):

1. ``id``: a record whose normalised identifier (upper case, letters and
   digits; placeholders ``UNKNOWN``, ``NA``, ``TOORDER``, all zeros ... are no
   identifier) was already seen joins that identifier's party.
2. ``name``: the same normalised name (:func:`features.names.normalise_party_name`)
   in the same country as an earlier record. A new identifier joins an earlier
   identified record of that name only if they share a trading partner (two
   real traders can share a name, rarely their partners), else a party of that
   name that has no identifier yet. A record without identifier joins the first
   identified record of that name sharing a partner, else the first identified,
   else the first record of that name.
3. ``fuzzy-name``: a record without identifier joins the most similar earlier
   identified record of its country sharing a trading partner, when rapidfuzz's
   token-sort ratio of the normalised names (0..100) is at least ``threshold``
   (default 90); ties go to the smallest (name, filing position).
4. ``new``: otherwise the record founds a party: canonical id its normalised
   identifier, else ``NAME:<country>:<normalised name>``.

Records with an identifier already seen, and identified records whose name and
country are new, are decided in bulk (Polars); only the rest, the ambiguous
records, go through the online loop. Trading partners: a shipper's are its
consignees, a consignee's and notify party's are the shippers.

Why rapidfuzz rather than splink: the records to link are few (distinct
party records, not rows), the decisive evidence is the name plus country, and
the rules are deterministic and explainable row by row without fitting an EM
model whose weights would change with (later) data.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import polars as pl
from rapidfuzz import fuzz, process

from features.names import normalise_party_name

__all__ = ["ROLES", "PartyResolution", "apply_resolution", "normalise_party_id", "party_partials", "resolve_parties", "resolve_parties_uncached", "resolve_partials"]

ROLES = ("shipper", "consignee", "notify")
PARTNER_OF = {"shipper": "consignee", "consignee": "shipper", "notify": "shipper"}
DEFAULT_THRESHOLD = 90.0
_PLACEHOLDERS = frozenset({"", "NA", "NONE", "NULL", "UNKNOWN", "UNK", "TOORDER", "TBA", "TBD", "NIL", "NOTAVAILABLE", "XXX", "XXXX"})
_NON_ALNUM = re.compile(r"[^A-Z0-9]")
_KEYS = ("raw_id", "raw_name", "country")

LINK_SCHEMA = {
    "raw_id": pl.String,
    "raw_name": pl.String,
    "country": pl.String,
    "canonical_id": pl.String,
    "method": pl.String,
    "similarity": pl.Float64,
    "matched_id": pl.String,
    "matched_name": pl.String,
    "first_filed_at": pl.Datetime("us", "UTC"),
    "first_manifest_id": pl.String,
    "rows": pl.Int64,
}


def normalise_party_id(raw: str | None) -> str | None:
    """Upper case, letters and digits only; ``None`` for a placeholder (``UNKNOWN``, ``N/A``, ``0000`` ...)."""
    if raw is None:
        return None
    value = _NON_ALNUM.sub("", str(raw).upper())
    if value in _PLACEHOLDERS or set(value) <= {"0"}:
        return None
    return value


@dataclass(frozen=True)
class PartyResolution:
    """The linkage decision for every distinct party record, in filing order.

    ``links`` has one row per distinct ``(raw_id, raw_name, country)``:
    ``canonical_id``, ``method`` (``id``, ``name``, ``fuzzy-name`` or
    ``new``: the record founded its party), ``similarity`` (0..100 to the
    matched record ``matched_id`` / ``matched_name``, an earlier one), the
    manifest that placed the record (``first_filed_at``, ``first_manifest_id``)
    and ``rows`` (its role occurrences in the manifests given).
    """

    links: pl.DataFrame

    def explain(self, raw_id: str | None, raw_name: str, country: str) -> dict | None:
        """The linkage row of one record, or ``None`` when it was not seen."""
        found = self.links.filter(
            pl.col("raw_id").eq_missing(raw_id) & (pl.col("raw_name") == raw_name) & (pl.col("country") == country)
        )
        return found.row(0, named=True) if found.height else None

    @property
    def parties(self) -> int:
        """Number of canonical parties."""
        return self.links["canonical_id"].n_unique()


def _party_columns(manifests: pl.LazyFrame | pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """``filed_at``, ``manifest_id`` and the party columns of ``manifests`` (collected), and the roles present.

    ``ValueError`` naming the column when ``filed_at`` or ``manifest_id`` is missing.
    """
    lazy = manifests.lazy()
    schema = lazy.collect_schema()
    absent = [c for c in ("filed_at", "manifest_id") if c not in schema]
    if absent:
        raise ValueError(f"party resolution needs the filing order of manifests: column(s) {absent} missing")
    roles = [r for r in ROLES if {f"{r}_id", f"{r}_name", f"{r}_country"} <= set(schema.names())]
    if not roles:
        raise ValueError("party resolution needs <role>_id, <role>_name and <role>_country of at least one role")
    columns = [f"{r}_{c}" for r in roles for c in ("id", "name", "country")]
    typed = [pl.col(c) if schema[c] == pl.String else pl.col(c).cast(pl.String) for c in ("manifest_id", *columns)]
    filed = pl.col("filed_at") if schema["filed_at"] == pl.Datetime("us", "UTC") else pl.col("filed_at").cast(pl.Datetime("us", "UTC"))
    return lazy.select(filed, *typed).collect(), roles


def _occurrences(base: pl.LazyFrame, roles: list[str]) -> pl.LazyFrame:
    """One row per (manifest, role) with a party: ``m``, ``role`` (0..2), raw keys (null name/country as ``""``), partner."""
    return pl.concat(
        [
            base.filter(pl.col(f"{r}_name").is_not_null() | pl.col(f"{r}_id").is_not_null()).select(
                "m",
                pl.lit(ROLES.index(r), dtype=pl.Int64).alias("role"),
                pl.col(f"{r}_id").alias("raw_id"),
                pl.col(f"{r}_name").fill_null("").alias("raw_name"),
                pl.col(f"{r}_country").fill_null("").alias("country"),
                (pl.col(f"{PARTNER_OF[r]}_name") if PARTNER_OF[r] in roles else pl.lit(None, pl.String)).alias("partner"),
            )
            for r in roles
        ]
    )


def _party_tables(columns: pl.DataFrame, roles: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(records, pairs)`` of :func:`_party_columns`, aggregated without sorting the occurrences.

    ``records``: distinct raw keys with ``pos`` (``3 m + role`` of the first occurrence), ``m``, ``rows`` and
    the placing manifest (``first_filed_at``, ``first_manifest_id``), sorted by ``pos``. ``pairs``: distinct
    (raw keys, raw partner name) with the first manifest ``m`` of the pair.
    """
    base = columns.with_columns(pl.arg_sort_by("filed_at", "manifest_id", nulls_last=True).arg_sort().cast(pl.Int64).alias("m")).lazy()
    occurrences = _occurrences(base, roles)
    placed = base.select("m", pl.col("filed_at").alias("first_filed_at"), pl.col("manifest_id").alias("first_manifest_id"))
    records = (
        occurrences.group_by(*_KEYS)
        .agg((pl.col("m") * 3 + pl.col("role")).min().alias("pos"), pl.len().cast(pl.Int64).alias("rows"))
        .with_columns((pl.col("pos") // 3).alias("m"))
        .join(placed, on="m", how="left")
        .sort("pos", "country", "raw_name", "raw_id", nulls_last=True)
    )
    pairs = occurrences.drop_nulls("partner").group_by(*_KEYS, "partner").agg(pl.col("m").min())
    records, pairs = pl.collect_all([records, pairs])
    return records, pairs


def _records(records: pl.DataFrame) -> pl.DataFrame:
    """Records indexed ``rec`` in placement order, with normalised id and name and the bulk decisions' inputs."""
    records = records.with_row_index("rec").with_columns(pl.col("rec").cast(pl.Int64))
    ids = records["raw_id"].unique().drop_nulls()
    names = records["raw_name"].unique()
    id_map = pl.DataFrame({"raw_id": ids, "nid": [normalise_party_id(v) for v in ids.to_list()]}, schema={"raw_id": pl.String, "nid": pl.String})
    name_map = pl.DataFrame({"raw_name": names, "nname": [normalise_party_name(v) for v in names.to_list()]}, schema={"raw_name": pl.String, "nname": pl.String})
    records = records.join(id_map, on="raw_id", how="left", maintain_order="left").join(name_map, on="raw_name", how="left", maintain_order="left")
    named = pl.col("nname") != ""
    return records.with_columns(
        pl.when(pl.col("nid").is_null()).then(None).otherwise(pl.col("rec").first().over("nid")).alias("id_founder"),
        (named & pl.col("rec").ne(pl.col("rec").first().over("country", "nname"))).alias("name_seen"),
    )


def _evidence(pairs: pl.DataFrame, records: pl.DataFrame) -> pl.DataFrame:
    """``(rec, country, p, m)``: record ``rec`` traded with partner ``p`` (normalised name) from manifest ``m`` on."""
    partners = pairs["partner"].unique()
    pmap = pl.DataFrame({"partner": partners, "p": [normalise_party_name(v) for v in partners.to_list()]}, schema={"partner": pl.String, "p": pl.String})
    return (
        pairs.join(records.select(*_KEYS, "rec"), on=list(_KEYS), how="inner", nulls_equal=True)
        .join(pmap, on="partner", how="inner")
        .filter(pl.col("p") != "")
        .group_by("rec", "country", "p")
        .agg(pl.col("m").min())
        .sort("rec", "m", "p")
    )


_CACHE: dict[tuple[int, int, tuple[str, ...], float], PartyResolution] = {}
_CACHE_SIZE = 8


def resolve_parties(manifests: pl.LazyFrame | pl.DataFrame, *, threshold: float = DEFAULT_THRESHOLD) -> PartyResolution:
    """:func:`resolve_parties_uncached`, memoised on the filing times, ids and party columns (a few recent inputs).

    Scoring a day's list resolves the same history again; those columns are cheap to collect and hash
    (an order-free hash: the result does not depend on row order), the linkage is not.
    """
    columns, roles = _party_columns(manifests)
    key = (int(columns.hash_rows().sum()) if columns.height else 0, columns.height, tuple(roles), float(threshold))
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _resolve(*_party_tables(columns, roles), threshold)
    return _CACHE[key]


def resolve_parties_uncached(manifests: pl.LazyFrame | pl.DataFrame, *, threshold: float = DEFAULT_THRESHOLD) -> PartyResolution:
    """Link the party records of ``manifests`` into canonical parties, online in filing order (module docstring).

    Parameters
    ----------
    manifests
        Frame with ``filed_at``, ``manifest_id`` and ``<role>_id``, ``<role>_name``,
        ``<role>_country`` for the roles present (shipper, consignee, notify).
        ``manifest_id`` is expected unique (the lake's key).
    threshold
        Minimum token-sort ratio (0..100) of normalised names for a record
        without an identifier to join an identified party by a fuzzy name.

    Returns
    -------
    The links table; a record's row depends only on manifests filed up to
    (and including) the manifest that placed it.
    """
    return _resolve(*_party_tables(*_party_columns(manifests)), threshold)


_FIRST = ("first_filed_at", "first_manifest_id")


def party_partials(manifests: pl.LazyFrame | pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    """The party records and pairs of one chunk of manifests, with their first manifest: combinable across chunks.

    ``(records, pairs, roles)``: records are the distinct raw keys with ``rows`` and the first occurrence
    (``first_filed_at``, ``first_manifest_id``, ``role``); pairs the distinct (raw keys, partner name)
    with their first manifest. :func:`resolve_partials` of the partials of disjoint chunks equals
    :func:`resolve_parties_uncached` of the chunks together (first occurrences are minima in filing
    order, counts are sums).
    """
    columns, roles = _party_columns(manifests)
    records, pairs = _party_tables(columns, roles)
    order = columns.select(
        pl.arg_sort_by("filed_at", "manifest_id", nulls_last=True).arg_sort().cast(pl.Int64).alias("m"),
        pl.col("filed_at").alias(_FIRST[0]),
        pl.col("manifest_id").alias(_FIRST[1]),
    )
    records = records.select(*_KEYS, "rows", *_FIRST, (pl.col("pos") % 3).alias("role"))
    return records, pairs.join(order, on="m", how="left").drop("m"), tuple(roles)


def resolve_partials(partials: list[tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]], *, threshold: float = DEFAULT_THRESHOLD) -> PartyResolution:
    """:func:`resolve_parties_uncached` of the union of disjoint manifest chunks, from their :func:`party_partials`.

    The manifests' filing order is rebuilt from the first manifests the partials name (a record's
    position ``3 m + role``, ``m`` its first manifest's rank by filing time then ``manifest_id``,
    missing times last); only order is compared, so ranks among these manifests decide as global ranks do.
    """
    if len({roles for _, _, roles in partials}) > 1:
        raise ValueError("party partials of chunks with different party roles cannot be combined")
    order = pl.col("first_filed_at").is_null(), "first_filed_at", "first_manifest_id"
    records = (
        pl.concat([r for r, _, _ in partials]).sort(*order, "role")
        .group_by(*_KEYS, maintain_order=True).agg(pl.col(*_FIRST, "role").first(), pl.col("rows").sum())
    )
    pairs = pl.concat([p for _, p, _ in partials]).sort(*order).group_by(*_KEYS, "partner", maintain_order=True).agg(pl.col(*_FIRST).first())
    ranks = pl.concat([records.select(*_FIRST), pairs.select(*_FIRST)]).unique().sort(*order).with_row_index("m").with_columns(pl.col("m").cast(pl.Int64))
    records = records.join(ranks, on=list(_FIRST), how="left", nulls_equal=True).with_columns((pl.col("m") * 3 + pl.col("role")).alias("pos"))
    records = records.select(*_KEYS, "pos", "rows", "m", *_FIRST).sort("pos", "country", "raw_name", "raw_id", nulls_last=True)
    pairs = pairs.join(ranks, on=list(_FIRST), how="left", nulls_equal=True).select(*_KEYS, "partner", "m")
    return _resolve(records, pairs, threshold)


def _resolve(raw_records: pl.DataFrame, pairs: pl.DataFrame, threshold: float) -> PartyResolution:
    records = _records(raw_records)
    n = records.height
    nid, nname, country = records["nid"].to_list(), records["nname"].to_list(), records["country"].to_list()
    founder = records["id_founder"].to_list()
    ambiguous = records.filter((pl.col("nid").is_null() & (pl.col("nname") != "")) | ((pl.col("id_founder") == pl.col("rec")) & pl.col("name_seen")))["rec"].to_list()
    canonical: list[str | None] = [v if v is not None else f"NAME:{c}:{m}" for v, c, m in zip(nid, country, nname, strict=True)]
    method = ["new" if f is None or f == i else "id" for i, f in enumerate(founder)]
    similarity = [100.0] * n
    matched: list[int | None] = [None if f is None or f == i else f for i, f in enumerate(founder)]
    online = _OnlineLinker(records, _evidence(pairs, records), ambiguous, threshold)
    for i in ambiguous:
        decision = online.decide(i, canonical)
        if decision is not None:
            how, j, score = decision
            canonical[i], method[i], similarity[i], matched[i] = online.canonical_of(j, canonical), how, score, j
            online.joined(canonical[i], nid[i])
    canonical = [canonical[f] if f is not None else c for f, c in zip(founder, canonical, strict=True)]  # id followers last
    raw_ids, raw_names = records["raw_id"].to_list(), records["raw_name"].to_list()
    links = records.select(
        *_KEYS,
        pl.Series("canonical_id", canonical, dtype=pl.String),
        pl.Series("method", method, dtype=pl.String),
        pl.Series("similarity", similarity, dtype=pl.Float64),
        pl.Series("matched_id", [raw_ids[j] if j is not None else None for j in matched], dtype=pl.String),
        pl.Series("matched_name", [raw_names[j] if j is not None else None for j in matched], dtype=pl.String),
        "first_filed_at",
        "first_manifest_id",
        "rows",
    )
    return PartyResolution(links.cast(LINK_SCHEMA))


class _OnlineLinker:
    """State of the online pass over ambiguous records (records indexed in placement order)."""

    def __init__(self, records: pl.DataFrame, evidence: pl.DataFrame, ambiguous: list[int], threshold: float) -> None:
        self.nid, self.nname = records["nid"].to_list(), records["nname"].to_list()
        self.country, self.m, self.founder = records["country"].to_list(), records["m"].to_list(), records["id_founder"].to_list()
        self.threshold = threshold
        self.named_with_id: set[str] = set()  # NAME: parties that an identified record joined
        groups = records.filter(pl.col("nname") != "").group_by("country", "nname", maintain_order=True).agg("rec")
        self.by_name = {(c, n): recs for c, n, recs in groups.iter_rows() if len(recs) > 1}
        wanted = set(ambiguous) | {j for recs in self.by_name.values() for j in recs}
        self.partners: dict[int, dict[str, int]] = {}
        for rec, _, p, m in evidence.filter(pl.col("rec").is_in(list(wanted))).iter_rows():
            self.partners.setdefault(rec, {})[p] = m
        queried = evidence.filter(pl.col("rec").is_in([i for i in ambiguous if self.nid[i] is None])).select("country", "p").unique()
        identified = records.filter(pl.col("nid").is_not_null() & (pl.col("nname") != "")).select("rec")
        index = (
            evidence.join(identified, on="rec").join(queried, on=["country", "p"])
            .group_by("country", "p").agg(pl.col("m").sort_by("m", "rec"), pl.col("rec").sort_by("m", "rec"))
        )
        self.by_partner = {(c, p): (times, recs) for c, p, times, recs in index.iter_rows()}  # identified records by (country, partner), by time

    def canonical_of(self, j: int, canonical: list[str | None]) -> str:
        f = self.founder[j]
        return canonical[f if f is not None else j]

    def joined(self, party: str, nid: str | None) -> None:
        if nid is not None and party.startswith("NAME:"):
            self.named_with_id.add(party)

    def shared_at(self, at: int, mine: set[str], j: int) -> bool:
        """Did ``j`` trade, on manifests up to position ``at``, with one of the partners ``mine``?"""
        return any(m <= at and p in mine for p, m in self.partners.get(j, {}).items())

    def decide(self, i: int, canonical: list[str | None]) -> tuple[str, int, float] | None:
        """``(method, matched record, similarity)`` for ambiguous record ``i``, or ``None`` (it founds a party)."""
        earlier = [j for j in self.by_name.get((self.country[i], self.nname[i]), ()) if j < i]
        identified = [j for j in earlier if self.nid[j] is not None]
        at = self.m[i]
        mine = {p for p, m in self.partners.get(i, {}).items() if m <= at}  # the partners on its first manifest
        if self.nid[i] is not None:
            for j in identified:
                if self.shared_at(at, mine, j):
                    return "name", j, 100.0
            for j in earlier:
                party = self.canonical_of(j, canonical)
                if self.nid[j] is None and party.startswith("NAME:") and party not in self.named_with_id:
                    return "name", j, 100.0
            return None
        if earlier:
            partnered = [j for j in identified if self.shared_at(at, mine, j)]
            return "name", (partnered or identified or earlier)[0], 100.0
        return self._fuzzy(i)

    def _fuzzy(self, i: int) -> tuple[str, int, float] | None:
        at, near = self.m[i], set()
        for p, m in self.partners.get(i, {}).items():
            if m > at or (self.country[i], p) not in self.by_partner:
                continue
            times, recs = self.by_partner[(self.country[i], p)]
            near.update(j for j in recs[: bisect.bisect_right(times, at)] if j < i)
        if not near:
            return None
        options = sorted((self.nname[j], j) for j in near)
        best = process.extractOne(self.nname[i], [o[0] for o in options], scorer=fuzz.token_sort_ratio, score_cutoff=self.threshold)
        return None if best is None else ("fuzzy-name", options[best[2]][1], float(best[1]))


def apply_resolution(manifests: pl.LazyFrame, resolution: PartyResolution) -> pl.LazyFrame:
    """``manifests`` with every ``<role>_id`` replaced by its canonical party id (other columns unchanged, same row order).

    A record absent from the resolution keeps its raw identifier.
    """
    links = resolution.links.lazy().select("raw_id", "raw_name", "country", "canonical_id")
    names = set(manifests.collect_schema().names())
    out = manifests
    for role in ROLES:
        cols = (f"{role}_id", f"{role}_name", f"{role}_country")
        if not set(cols) <= names:
            continue
        keyed = links.rename({"raw_id": cols[0], "raw_name": "__ccp_name", "country": "__ccp_country", "canonical_id": "__ccp_canonical"})
        out = (
            out.with_columns(
                pl.col(cols[0]).cast(pl.String),
                pl.col(cols[1]).cast(pl.String).fill_null("").alias("__ccp_name"),
                pl.col(cols[2]).cast(pl.String).fill_null("").alias("__ccp_country"),
            )
            .join(keyed, on=[cols[0], "__ccp_name", "__ccp_country"], how="left", nulls_equal=True, maintain_order="left")
            .with_columns(
                pl.when(pl.col(cols[0]).is_null() & pl.col(cols[1]).is_null())
                .then(None)
                .otherwise(pl.coalesce("__ccp_canonical", cols[0]))
                .alias(cols[0])
            )
            .drop("__ccp_name", "__ccp_country", "__ccp_canonical")
        )
    return out
