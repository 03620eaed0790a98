"""Hierarchical empirical-Bayes risk priors: what a port, a commodity or a flow inherits from its neighbours.

Each prior is a seizure rate among inspections recorded strictly before the
row's ``decision_at``, smoothed level by level down a hierarchy of
:mod:`features.hierarchy`, from the most general level to the row's own::

    rate(level) = (findings(level) + s(level) * rate(parent)) / (inspections(level) + s(level))

starting from the training prior (:attr:`features.stats.FeatureStats.prior_finding_rate`)
above the top level. ``s(level)`` is the level's empirical-Bayes strength
fitted at training time (:attr:`~features.stats.FeatureStats.hierarchy_strengths`).
A port never inspected gets its country's rate, a country never inspected
its M49 sub-region's; an HS subheading never inspected its heading's, and so
on: a new origin or cover load inherits what its neighbours taught.

Inputs are the inspection and finding counts of each level, produced by the
entity families of the same names (:mod:`features.entity`; levels that are no
model input themselves are ``export=False`` families), so the point-in-time
semantics (outcomes with ``inspected_at < decision_at``) and the batch /
snapshot parity are theirs.
"""

from __future__ import annotations

import polars as pl

from features.registry import declare
from features.stats import FeatureStats

HIERARCHIES: dict[str, tuple[str, ...]] = {
    "origin_prior_rate": ("loading_port", "origin_country", "origin_region", "origin_continent"),
    "commodity_prior_rate": ("hs_subheading", "hs_heading", "hs_chapter", "commodity_family"),
    "flow_prior_rate": ("hs_origin", "region_family", "origin_region"),
}
"""Prior feature -> its levels, most specific first (each an entity family with inspection and finding counts)."""

_BEFORE = "recorded strictly before decision_at"
declare(
    "origin_prior_rate",
    "priors",
    f"Seizure rate of the port of loading among inspections {_BEFORE}, smoothed towards its country's, the country's towards "
    "its UN M49 sub-region's and the sub-region's towards its continent's (empirical-Bayes strengths fitted at training "
    "time): a new origin port inherits its neighbours' risk.",
)
declare(
    "commodity_prior_rate",
    "priors",
    f"Seizure rate of the HS subheading (6 digits) among inspections {_BEFORE}, smoothed towards its heading's, the "
    "heading's towards its chapter's and the chapter's towards its commodity family's (HS section, reefer apart; "
    "empirical-Bayes strengths fitted at training time): a new cover load inherits what similar goods taught.",
)
declare(
    "flow_prior_rate",
    "priors",
    f"Seizure rate of the HS heading from the origin country among inspections {_BEFORE}, smoothed towards the rate of "
    "the commodity family from the origin's UN M49 sub-region, and that towards the sub-region's (empirical-Bayes "
    "strengths fitted at training time): a known flow moved to a neighbouring country or similar goods keeps its risk.",
)


def prior_rate(levels: tuple[str, ...], stats: FeatureStats) -> pl.Expr:
    """The smoothed rate down ``levels`` (most specific first) from ``<level>_n_inspections`` / ``<level>_n_findings`` columns."""
    rate: pl.Expr = pl.lit(stats.prior_finding_rate, dtype=pl.Float64)
    for level in reversed(levels):
        s = float(stats.hierarchy_strengths.get(level, stats.prior_strength))
        inspections = pl.col(f"{level}_n_inspections").cast(pl.Float64).fill_null(0.0)
        findings = pl.col(f"{level}_n_findings").cast(pl.Float64).fill_null(0.0)
        rate = (findings + s * rate) / (inspections + s)
    return rate


def prior_columns() -> list[str]:
    return list(HIERARCHIES)


def with_priors(entity: pl.LazyFrame, stats: FeatureStats) -> pl.LazyFrame:
    """Add every prior of :data:`HIERARCHIES` to an entity feature frame (which holds every level's counts)."""
    return entity.with_columns(prior_rate(levels, stats).alias(name) for name, levels in HIERARCHIES.items())
