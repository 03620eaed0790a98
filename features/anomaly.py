"""An unsupervised anomaly score: how far a manifest is from the norms of its commodity and its lane.

Norms are robust (median and scaled median absolute deviation, MAD x 1.4826)
and fitted once at training time on the training manifests
(:func:`fit_anomaly_norms`, stored in :attr:`features.stats.FeatureStats.anomaly_norms`);
serving only reads them. No outcome is used: the score needs no seizure to
flag something new, which is what a new modus operandi is at first.

Four robust z-scores, each clipped to [-:data:`Z_CLIP`, :data:`Z_CLIP`]:

- ``value``: log USD value per kg against the HS subheading's norm (falling back to the heading, the chapter, then all goods);
- ``mass``: log gross mass against the HS heading's norm (chapter, all goods);
- ``packing``: log packages per tonne against the HS heading's norm (chapter, all goods);
- ``transit``: declared transit hours against the lane's norm (loading port to discharge port; then the discharge port; then all lanes).

``anomaly_score`` is their root mean square over the z-scores that can be
computed (0 when none can). Norms need :data:`MIN_NORM_COUNT` rows per group.
"""

from __future__ import annotations

import math

import polars as pl

from features.registry import declare
from features.stats import FeatureStats, log_mass, log_value_per_kg

MIN_NORM_COUNT = 20
Z_CLIP = 10.0
MAD_SCALE = 1.4826
MIN_SCALE = 0.05
"""Smallest scale used (in log units, or hours for transit): a group whose values are all equal is not infinitely strict."""


def _log_packing() -> pl.Expr:
    ratio = pl.col("packages").cast(pl.Float64) / (pl.col("gross_mass_kg") / 1000.0)
    return pl.when(ratio.is_finite() & (ratio > 0)).then(ratio.log()).otherwise(None)


def _transit_hours() -> pl.Expr:
    return (pl.col("eta") - pl.col("etd")).dt.total_microseconds().cast(pl.Float64) / 3_600_000_000


def _lane() -> pl.Expr:
    return pl.concat_str(pl.col("port_of_loading"), pl.lit(">"), pl.col("port_of_discharge"))


MEASURES: dict[str, tuple[pl.Expr, tuple[tuple[str, pl.Expr], ...]]] = {
    "value": (log_value_per_kg(), (("hs6", pl.col("hs_code").str.slice(0, 6)), ("hs4", pl.col("hs_code").str.slice(0, 4)), ("hs2", pl.col("hs_code").str.slice(0, 2)))),
    "mass": (log_mass(), (("hs4", pl.col("hs_code").str.slice(0, 4)), ("hs2", pl.col("hs_code").str.slice(0, 2)))),
    "packing": (_log_packing(), (("hs4", pl.col("hs_code").str.slice(0, 4)), ("hs2", pl.col("hs_code").str.slice(0, 2)))),
    "transit": (_transit_hours(), (("lane", _lane()), ("discharge", pl.col("port_of_discharge")))),
}
"""Measure -> (its expression, its grouping levels most specific first; all rows are the last fallback)."""

ANOMALY_SCORE = declare(
    "anomaly_score",
    "anomaly",
    "Unsupervised distance of the manifest from the norms of its goods and lane: root mean square of robust z-scores "
    "(median and MAD fitted on training manifests, no outcomes) of log value per kg (HS subheading), log gross mass and "
    "log packages per tonne (HS heading) and transit hours (lane), each clipped to +-10; 0 when none can be computed.",
)


def _robust(values: pl.Expr) -> list[pl.Expr]:
    median = values.median()
    return [pl.len().alias("n"), median.alias("median"), ((values - median).abs().median() * MAD_SCALE).alias("scale")]


def _finite(value) -> float | None:  # noqa: ANN001
    return float(value) if value is not None and math.isfinite(value) else None


def fit_anomaly_norms(manifests: pl.DataFrame) -> dict[str, dict]:
    """Robust norms per measure and level from training ``manifests`` (MANIFESTS columns): plain JSON.

    ``{measure: {level: {key: [median, scale]}, "all": [median, scale]}}``; groups with fewer than
    :data:`MIN_NORM_COUNT` usable rows are left out (their rows fall back to the next level).
    """
    out: dict[str, dict] = {}
    for measure, (expr, levels) in MEASURES.items():
        frame = manifests.select(expr.alias("_v"), *(key.alias(name) for name, key in levels)).filter(usable(pl.col("_v")))
        norms: dict = {name: level_norms(frame.group_by(name).agg(_robust(pl.col("_v"))).rename({name: "key"})) for name, _key in levels}
        norms["all"] = overall_norm(frame.select(_robust(pl.col("_v"))).row(0, named=True) if frame.height else None)
        out[measure] = norms
    return out


def usable(values: pl.Expr) -> pl.Expr:
    """Values a norm is fitted on: known and finite."""
    return values.is_not_null() & values.is_finite()


def level_norms(grouped: pl.DataFrame) -> dict[str, list[float]]:
    """One level's norms from its groups (``key``, ``n`` usable rows, ``median``, ``scale``): groups of enough rows."""
    kept = grouped.filter((pl.col("n") >= MIN_NORM_COUNT) & pl.col("key").is_not_null()).sort("key")
    return {row["key"]: _norm(row) for row in kept.iter_rows(named=True)}


def overall_norm(row: dict | None) -> list[float]:
    """The norm of all usable rows (``median``, ``scale``), or (0, 1) when there is none."""
    return _norm(row or {"median": 0.0, "scale": 1.0})


def _norm(row: dict) -> list[float]:
    return [_finite(row["median"]) or 0.0, max(_finite(row["scale"]) or 0.0, MIN_SCALE)]


def _z(measure: str, norms: dict) -> pl.Expr:
    expr, levels = MEASURES[measure]
    median: pl.Expr = pl.lit(norms["all"][0], dtype=pl.Float64)
    scale: pl.Expr = pl.lit(norms["all"][1], dtype=pl.Float64)
    for name, key in reversed(levels):
        table = norms.get(name, {})
        medians = {k: v[0] for k, v in table.items()}
        scales = {k: v[1] for k, v in table.items()}
        median = key.replace_strict(medians, default=None, return_dtype=pl.Float64).fill_null(median)
        scale = key.replace_strict(scales, default=None, return_dtype=pl.Float64).fill_null(scale)
    z = ((expr - median) / scale).clip(-Z_CLIP, Z_CLIP)
    return pl.when(z.is_finite()).then(z).otherwise(None)


def anomaly_score(stats: FeatureStats) -> pl.Expr:
    """The ``anomaly_score`` expression for manifest rows (0 when the statistics hold no norms)."""
    norms = stats.anomaly_norms
    if not norms:
        return pl.lit(0.0, dtype=pl.Float64).alias(ANOMALY_SCORE)
    zs = [_z(m, norms[m]) for m in MEASURES if m in norms]
    squares = pl.sum_horizontal(*(z.pow(2).fill_null(0.0) for z in zs))
    count = pl.sum_horizontal(*(z.is_not_null().cast(pl.Float64) for z in zs))
    return pl.when(count > 0).then((squares / count).sqrt()).otherwise(0.0).alias(ANOMALY_SCORE)


def with_anomaly_score(frame: pl.LazyFrame, stats: FeatureStats) -> pl.LazyFrame:
    """Add ``anomaly_score`` (row-wise; reads only the row and the fitted norms)."""
    return frame.with_columns(anomaly_score(stats))
