"""Party resolution: one canonical party per real trader across spelling variants and inconsistent identifiers.

Filers spell one trader many ways (``Café Andino S.A.``, ``CAFE ANDINO SA``)
and identify it inconsistently (an EORI here, a tax number there, a
placeholder such as ``UNKNOWN`` elsewhere), so entity history keyed on the
declared identifier splits one trader into several. :func:`resolve_parties`
links the distinct party records ``(id, name, country)`` of the shipper,
consignee and notify roles (one registry for all roles) and
:func:`apply_resolution` replaces each ``<role>_id`` by the canonical id,
before entity history is computed (:meth:`features.history.History.from_lake`).

Linkage rules (deterministic, in this order; union-find over records):

1. ``id``: records with the same identifier after normalisation (upper case,
   only letters and digits) are one party. Placeholders (empty, ``UNKNOWN``,
   ``NA``, ``NONE``, ``TOORDER``, all zeros ...) are no identifier.
2. ``name``: records in the same country with the same normalised name
   (:func:`features.names.normalise_party_name`: case, accents, punctuation
   and legal-form spelling ignored) are one party when at most one of them
   carries an identifier, or, under different identifiers (another filer's
   code for the trader), when they also share a counterparty (a shipper,
   consignee or notify party of the same normalised name on their
   manifests): two real traders can share a name, rarely their partners.
3. ``fuzzy-name``: a record without an identifier joins the most similar
   identified record of its country that shares a counterparty with it, when
   :func:`features.names.party_similarity` (rapidfuzz token-sort ratio,
   0..100) is at least ``threshold`` (default 90): typos and word order.
   Records that carry different identifiers are never merged on a fuzzy name.

Why rapidfuzz rather than splink: the records to link are few (distinct
party records, not rows), the decisive evidence is the name plus country, and
the rules above are deterministic and explainable row by row without fitting
an EM model; splink would add DuckDB and a probabilistic model whose weights
change with the data.

The canonical id of a party is its most used normalised identifier (ties:
the smallest); a party without any identifier gets
``NAME:<country>:<normalised name>`` of its most used record. The decision for every record is kept in the links
table (:class:`PartyResolution`).

Time semantics: resolution looks at party names and identifiers of every
manifest given (not at outcomes); it has no clock.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import polars as pl
from rapidfuzz import fuzz, process

from features.names import normalise_party_name

__all__ = ["ROLES", "PartyResolution", "apply_resolution", "normalise_party_id", "resolve_parties"]

ROLES = ("shipper", "consignee", "notify")
DEFAULT_THRESHOLD = 90.0
_PLACEHOLDERS = frozenset({"", "NA", "NONE", "NULL", "UNKNOWN", "UNK", "TOORDER", "TBA", "TBD", "NIL", "NOTAVAILABLE", "XXX", "XXXX"})
_NON_ALNUM = re.compile(r"[^A-Z0-9]")

LINK_SCHEMA = {
    "raw_id": pl.String,
    "raw_name": pl.String,
    "country": pl.String,
    "canonical_id": pl.String,
    "method": pl.String,
    "similarity": pl.Float64,
    "matched_name": pl.String,
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
    """The linkage decision for every distinct party record.

    ``links`` has one row per distinct ``(raw_id, raw_name, country)``:
    ``canonical_id``, ``method`` (``id``, ``name``, ``fuzzy-name`` or
    ``new``: the record founded its party), ``similarity`` (0..100 to
    ``matched_name``, the record it was linked to), and ``rows`` (how many
    role occurrences in the manifests).
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


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def party_records(manifests: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Distinct ``(raw_id, raw_name, country)`` over the three roles with their row counts, sorted (deterministic)."""
    lazy = manifests.lazy()
    names = set(lazy.collect_schema().names())
    parts = [
        lazy.select(pl.col(f"{r}_id").alias("raw_id"), pl.col(f"{r}_name").alias("raw_name"), pl.col(f"{r}_country").alias("country"))
        for r in ROLES
        if {f"{r}_id", f"{r}_name", f"{r}_country"} <= names
    ]
    stacked = pl.concat(parts).filter(pl.col("raw_name").is_not_null() | pl.col("raw_id").is_not_null())
    return (
        stacked.with_columns(pl.col("raw_name").fill_null(""), pl.col("country").fill_null(""))
        .group_by("raw_id", "raw_name", "country")
        .len("rows")
        .with_columns(pl.col("rows").cast(pl.Int64))
        .sort("country", "raw_name", "raw_id", nulls_last=True)
        .collect()
    )


def _partner_pairs(manifests: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Distinct ``(raw_id, raw_name, country, other)``: a record and the raw name of one of its trading partners.

    A shipper's partners are its consignees; a consignee's or notify party's partners are the shippers (a notify
    party is often the consignee itself or a broker serving many traders: no evidence of identity).
    """
    lazy = manifests.lazy()
    names = set(lazy.collect_schema().names())
    roles = [r for r in ROLES if {f"{r}_id", f"{r}_name", f"{r}_country"} <= names]
    parts = [
        lazy.select(
            pl.col(f"{r}_id").cast(pl.String).alias("raw_id"),
            pl.col(f"{r}_name").cast(pl.String).fill_null("").alias("raw_name"),
            pl.col(f"{r}_country").cast(pl.String).fill_null("").alias("country"),
            pl.col(f"{o}_name").cast(pl.String).alias("other"),
        )
        for r, o in (("shipper", "consignee"), ("consignee", "shipper"), ("notify", "shipper"))
        if r in roles and o in roles
    ]
    if not parts:
        return pl.DataFrame(schema={"raw_id": pl.String, "raw_name": pl.String, "country": pl.String, "other": pl.String})
    return pl.concat(parts).drop_nulls("other").unique().sort(pl.all(), nulls_last=True).collect()


def _counterparties(pairs: pl.DataFrame) -> dict[tuple, frozenset[str]]:
    """Per record ``(raw_id, raw_name, country)``: normalised names of its trading partners."""
    grouped = pairs.group_by("raw_id", "raw_name", "country").agg("other")
    return {
        (rid, rname, country): frozenset(normalise_party_name(o) for o in others)
        for rid, rname, country, others in grouped.iter_rows()
    }


_CACHE: dict[tuple[int, int, float], PartyResolution] = {}
_CACHE_SIZE = 8


def resolve_parties(manifests: pl.LazyFrame | pl.DataFrame, *, threshold: float = DEFAULT_THRESHOLD) -> PartyResolution:
    """:func:`resolve_parties_uncached`, memoised on the party records and their partners (a few recent inputs).

    Scoring a day's list resolves the same history again; the records and partner pairs are cheap to
    collect and hash, the linkage is not.
    """
    records = party_records(manifests)
    partners = _partner_pairs(manifests)
    key = (int(records.hash_rows().sum()) ^ records.height, (int(partners.hash_rows().sum()) if partners.height else 0) ^ partners.height, float(threshold))
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _resolve(records, partners, threshold)
    return _CACHE[key]


def resolve_parties_uncached(manifests: pl.LazyFrame | pl.DataFrame, *, threshold: float = DEFAULT_THRESHOLD) -> PartyResolution:
    """Link the party records of ``manifests`` into canonical parties (see the module docstring).

    Parameters
    ----------
    manifests
        Frame with ``<role>_id``, ``<role>_name`` and ``<role>_country`` for
        the roles present (shipper, consignee, notify).
    threshold
        Minimum :func:`features.names.party_similarity` (0..100) for a record
        without an identifier to join an identified party by a fuzzy name.
    """
    return _resolve(party_records(manifests), _partner_pairs(manifests), threshold)


def _resolve(records: pl.DataFrame, pairs: pl.DataFrame, threshold: float) -> PartyResolution:
    partners = _counterparties(pairs)
    keys = list(zip(records["raw_id"].to_list(), records["raw_name"].to_list(), records["country"].to_list(), strict=True))
    shared = [partners.get(k, frozenset()) for k in keys]
    ids = [normalise_party_id(v) for v in records["raw_id"].to_list()]
    names = [normalise_party_name(v) for v in records["raw_name"].to_list()]
    countries = records["country"].to_list()
    n = records.height
    uf = _UnionFind(n)
    method: list[str] = ["new"] * n
    similarity: list[float] = [100.0] * n
    matched: list[str | None] = [None] * n

    def link(i: int, first: int, how: str, score: float) -> None:
        if uf.find(i) != uf.find(first):
            uf.union(i, first)
            if method[i] == "new":
                method[i], similarity[i], matched[i] = how, score, records["raw_name"][first]

    first_by_id: dict[str, int] = {}
    by_name: dict[tuple[str, str], list[int]] = {}
    for i in range(n):
        if ids[i] is not None:
            first = first_by_id.setdefault(ids[i], i)
            if first != i:
                link(i, first, "id", 100.0)
        if names[i]:
            by_name.setdefault((countries[i], names[i]), []).append(i)
    for group in by_name.values():
        identified = [i for i in group if ids[i] is not None]
        for pos, i in enumerate(identified):  # different identifiers: only with a shared trading partner
            for j in identified[:pos]:
                if ids[i] == ids[j] or shared[i] & shared[j]:
                    link(i, j, "name", 100.0)
                    break
        anonymous = [i for i in group if ids[i] is None]
        for i in anonymous:  # no identifier: join one identified record (a partner in common first), never bridge two
            partners = [j for j in identified if shared[i] & shared[j]]
            target = (partners or identified or anonymous)[0]
            if target != i:
                link(i, target, "name", 100.0)

    _link_fuzzy(ids, names, countries, shared, threshold, lambda i, j, s: link(i, j, "fuzzy-name", s))
    canonical = _canonical_ids(uf, ids, [f"{c}:{m}" for c, m in zip(countries, names, strict=True)], records["rows"].to_list())
    links = records.select(
        "raw_id",
        "raw_name",
        "country",
        pl.Series("canonical_id", canonical, dtype=pl.String),
        pl.Series("method", method, dtype=pl.String),
        pl.Series("similarity", similarity, dtype=pl.Float64),
        pl.Series("matched_name", matched, dtype=pl.String),
        "rows",
    )
    return PartyResolution(links.cast(LINK_SCHEMA))


def _link_fuzzy(ids, names, countries, shared, threshold, link) -> None:  # noqa: ANN001
    """Records without an identifier join the most similar identified record of their country sharing a counterparty.

    Candidates are scored with rapidfuzz's token-sort ratio; the best score wins, ties go to the first in
    (name, record) order, so the result does not depend on input row order.
    """
    by_partner: dict[tuple[str, str], set[int]] = {}  # (country, partner name) -> identified records trading with it
    for i, (pid, name, country) in enumerate(zip(ids, names, countries, strict=True)):
        if pid is not None and name:
            for partner in shared[i]:
                by_partner.setdefault((country, partner), set()).add(i)
    for i, (pid, name, country) in enumerate(zip(ids, names, countries, strict=True)):
        if pid is not None or not name:
            continue
        near = set().union(*(by_partner.get((country, partner), set()) for partner in shared[i]))
        options = sorted((names[j], j) for j in near)
        if not options:
            continue
        best = process.extractOne(name, [o[0] for o in options], scorer=fuzz.token_sort_ratio, score_cutoff=threshold)
        if best is not None:
            link(i, options[best[2]][1], float(best[1]))


def _canonical_ids(uf: _UnionFind, ids: list, names: list, rows: list[int]) -> list[str]:
    """Per record, its party's most used identifier (ties: smallest), else ``NAME:<country>:<most used normalised name>``."""
    id_use: dict[int, Counter] = {}
    name_use: dict[int, Counter] = {}
    for i, (pid, name, count) in enumerate(zip(ids, names, rows, strict=True)):
        root = uf.find(i)
        if pid is not None:
            id_use.setdefault(root, Counter())[pid] += count
        name_use.setdefault(root, Counter())[name] += count
    best: dict[int, str] = {}
    for root, counter in id_use.items():
        best[root] = min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    for root, counter in name_use.items():
        best.setdefault(root, "NAME:" + min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0])
    return [best[uf.find(i)] for i in range(len(ids))]


def apply_resolution(manifests: pl.LazyFrame, resolution: PartyResolution) -> pl.LazyFrame:
    """``manifests`` with every ``<role>_id`` replaced by its canonical party id (other columns unchanged, same row order)."""
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
