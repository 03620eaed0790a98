"""Reference hierarchies above a port and above an HS code, and empirical-Bayes strengths between their levels.

Two hierarchies from public reference data, so that a new origin or a new
cover load inherits what its neighbours taught:

- **geography**: port of loading (UN/LOCODE) -> country (its first two
  letters, ISO 3166) -> UN M49 sub-region (``South America``, ``Caribbean``,
  ``Western Africa``...) -> continent, from ``features/data/m49_regions.csv``
  (UN Statistics Division, *Standard country or area codes for statistical
  use* (M49), as tabulated by the ``country_converter`` package 1.3.2,
  columns ``UNregion`` and ``continent``);
- **commodity**: HS subheading (6 digits) -> heading (4) -> chapter (2) ->
  commodity family: the WCO Harmonized System *section* of the chapter
  (I live animals and animal products ... XXI works of art), split by the
  manifest's reefer flag, so perishable reefer cargo (fresh fruit, fish)
  forms its own families.

Unknown countries map to ``ZZ`` regions (their own group); HS codes shorter
than a level keep what they have. Everything here is a pure expression of one
manifest row: no time semantics.

Strengths. :func:`fit_strengths` estimates, for each level, how much the
groups of that level really differ (beta-binomial method of moments on the
training outcomes): the smoothing strength ``s`` of a level is
``p (1 - p) / tau^2 - 1`` where ``tau^2`` is the between-group variance of
seizure rates left after removing binomial noise. Few real differences give a
large ``s`` (trust the parent level), large differences a small one.
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

import polars as pl

UNKNOWN_REGION = "ZZ"
HS_SECTIONS: tuple[tuple[int, int, str], ...] = (
    (1, 5, "I"), (6, 14, "II"), (15, 15, "III"), (16, 24, "IV"), (25, 27, "V"), (28, 38, "VI"), (39, 40, "VII"),
    (41, 43, "VIII"), (44, 46, "IX"), (47, 49, "X"), (50, 63, "XI"), (64, 67, "XII"), (68, 70, "XIII"), (71, 71, "XIV"),
    (72, 83, "XV"), (84, 85, "XVI"), (86, 89, "XVII"), (90, 92, "XVIII"), (93, 93, "XIX"), (94, 96, "XX"), (97, 97, "XXI"),
)
"""WCO Harmonized System sections as (first chapter, last chapter, section numeral)."""
LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "loading_port": ("port_of_loading",),
    "origin_country": ("origin_country",),
    "origin_region": ("origin_region",),
    "origin_continent": ("origin_continent",),
    "hs_subheading": ("hs_subheading",),
    "hs_heading": ("hs_heading",),
    "hs_chapter": ("hs_chapter",),
    "commodity_family": ("commodity_family",),
    "hs_origin": ("hs_heading", "origin_country"),
    "region_family": ("origin_region", "commodity_family"),
}
"""Every level of the hierarchies: name (an entity family of :mod:`features.entity`) -> its key columns."""
MIN_STRENGTH, MAX_STRENGTH = 1.0, 1000.0
MIN_GROUPS = 3


@functools.cache
def country_regions() -> dict[str, tuple[str, str]]:
    """ISO 3166 alpha-2 country -> (UN M49 sub-region, continent), from the packaged reference table."""
    text = resources.files("features.data").joinpath("m49_regions.csv").read_text(encoding="utf-8")
    return {row["country"]: (row["m49_subregion"], row["continent"]) for row in csv.DictReader(text.splitlines())}


def _country() -> pl.Expr:
    return pl.col("port_of_loading").str.slice(0, 2)


def origin_region() -> pl.Expr:
    """UN M49 sub-region of the port of loading's country (``ZZ`` when unknown)."""
    mapping = {c: r for c, (r, _) in country_regions().items()}
    return _country().replace_strict(mapping, default=UNKNOWN_REGION, return_dtype=pl.String).alias("origin_region")


def origin_continent() -> pl.Expr:
    """Continent of the port of loading's country (``ZZ`` when unknown)."""
    mapping = {c: k for c, (_, k) in country_regions().items()}
    return _country().replace_strict(mapping, default=UNKNOWN_REGION, return_dtype=pl.String).alias("origin_continent")


def hs_subheading() -> pl.Expr:
    """HS subheading: the first six digits of the HS code."""
    return pl.col("hs_code").str.slice(0, 6).alias("hs_subheading")


def hs_section() -> pl.Expr:
    """WCO HS section numeral of the code's chapter (``?`` when the chapter is not a number in 01-97)."""
    chapter = pl.col("hs_code").str.slice(0, 2).cast(pl.Int32, strict=False)
    expr = pl.when(chapter.is_null()).then(pl.lit("?"))
    for first, last, numeral in HS_SECTIONS:
        expr = expr.when(chapter.is_between(first, last)).then(pl.lit(numeral))
    return expr.otherwise(pl.lit("?")).alias("hs_section")


def commodity_family() -> pl.Expr:
    """HS section plus ``-R`` for a reefer container (perishable reefer cargo is its own family)."""
    reefer = pl.col("reefer").fill_null(False)
    return pl.concat_str(hs_section(), pl.when(reefer).then(pl.lit("-R")).otherwise(pl.lit(""))).alias("commodity_family")


def hierarchy_columns() -> list[pl.Expr]:
    """Every derived hierarchy column of a manifest row."""
    return [origin_region(), origin_continent(), hs_subheading(), commodity_family()]


def strength(inspections: list[int], findings: list[int], *, default: float) -> float:
    """Empirical-Bayes smoothing strength of one level from its groups' inspections and findings.

    Beta-binomial method of moments: ``tau^2 = V - p (1 - p) G / N`` (``V`` the
    inspection-weighted variance of the groups' rates, ``G`` groups, ``N``
    inspections) and ``s = p (1 - p) / tau^2 - 1``, clipped to
    [:data:`MIN_STRENGTH`, :data:`MAX_STRENGTH`]. ``default`` when fewer than
    :data:`MIN_GROUPS` groups were inspected or nothing was found.

    >>> strength([100, 100, 100], [0, 0, 30], default=20.0) < 20.0
    True
    >>> strength([100, 100, 100], [1, 1, 1], default=20.0)
    1000.0
    """
    pairs = [(n, k) for n, k in zip(inspections, findings) if n > 0]
    total = sum(n for n, _ in pairs)
    found = sum(k for _, k in pairs)
    if len(pairs) < MIN_GROUPS or found == 0 or found == total:
        return default
    p = found / total
    spread = sum(n * (k / n - p) ** 2 for n, k in pairs) / total
    tau2 = spread - p * (1 - p) * len(pairs) / total
    if tau2 <= 0:
        return MAX_STRENGTH
    return float(min(MAX_STRENGTH, max(MIN_STRENGTH, p * (1 - p) / tau2 - 1.0)))


def fit_strengths(manifests: pl.DataFrame, outcomes: pl.DataFrame, levels: dict[str, tuple[str, ...]], *, default: float) -> dict[str, float]:
    """Smoothing strength per level (:func:`strength`) from training ``outcomes`` joined to their ``manifests``.

    ``manifests`` need ``manifest_id`` and every key column of ``levels`` (level name -> key columns);
    outcomes of manifests not given are ignored.
    """
    if outcomes.height == 0 or manifests.height == 0:
        return {name: default for name in levels}
    keys = sorted({k for ks in levels.values() for k in ks})
    joined = outcomes.select("manifest_id", (pl.col("result") == "SEIZURE").cast(pl.Int64).alias("_f")).join(
        manifests.select("manifest_id", *keys).unique("manifest_id"), on="manifest_id", how="inner"
    )
    out = {}
    for name, ks in levels.items():
        # sorted by key: strength() sums floats over the groups, and group_by's order varies from run to run
        grouped = joined.group_by(list(ks)).agg(pl.len().alias("n"), pl.col("_f").sum().alias("k")).sort(list(ks), nulls_last=True)
        out[name] = strength(grouped["n"].to_list(), grouped["k"].to_list(), default=default)
    return out
