"""Feature statistics and integrity norms fitted by Dask workers, equal to the single machine's byte for byte.

Optional: needs ``dask`` and ``distributed``. :func:`fit_stats_on_cluster` is
:func:`features.stats.fit_stats` and :func:`integrity_norms_on_cluster` is
:func:`features.integrity.fit_integrity_norms`, for row counts past what one process holds: the
rows stay in Parquet files the workers wrote (the training period's manifests with their derived
columns, :data:`STATS_COLUMNS`; the training rows' features). Counts are summed from the workers'
per-file counts; medians, median absolute deviations and quantile grids are selected exactly by
:mod:`features.distributed_quantiles`; the hierarchy strengths read only the manifests that have an
outcome. The same formatting functions as the single path turn these into the statistics
(:func:`features.stats.norm_table`, :func:`features.anomaly.level_norms`...), so both paths give
the same JSON. No time semantics of their own: the caller stages the training period's rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from features.anomaly import MAD_SCALE, MEASURES, level_norms, overall_norm, usable
from features.distributed_quantiles import Measure, group_counts, grouped_medians, values_at_ranks
from features.hierarchy import LEVEL_KEYS, fit_strengths
from features.integrity import COMPONENTS, IntegrityNorms, Reference, grid_ranks, reference_from_ranks
from features.stats import (
    CATEGORICAL_SOURCES,
    PRIOR_STRENGTH,
    FeatureStats,
    _finite,
    finding_prior,
    log_mass,
    log_value_per_kg,
    norm_table,
    tare_table,
    vocabulary,
)

NORM_LEVELS = ("hs_heading", "hs_chapter")
STATS_COLUMNS = tuple(sorted({
    "manifest_id", "hs_code", "declared_value", "currency", "gross_mass_kg", "verified_gross_mass_kg", "container_type",
    "packages", "etd", "eta", "port_of_loading", "port_of_discharge", *NORM_LEVELS, *CATEGORICAL_SOURCES.values(),
    *(key for keys in LEVEL_KEYS.values() for key in keys),
}))
"""Manifest columns (derived ones included, :func:`features.history.with_derived_columns`) that the statistics read."""


def _tare() -> pl.Expr:
    return pl.col("verified_gross_mass_kg") - pl.col("gross_mass_kg")


def _stats_measures() -> dict[str, Measure]:
    """The medians of :func:`features.stats.fit_stats` (value and mass norms, tare) as measures of the staged manifests."""
    measures = {"tare": Measure(_tare(), key=pl.col("container_type"), where=pl.col("verified_gross_mass_kg").is_not_null())}
    for column, expr in (("log_vpk", log_value_per_kg()), ("log_mass", log_mass())):
        measures[f"{column}@all"] = Measure(expr)
        measures.update({f"{column}@{level}": Measure(expr, key=pl.col(level)) for level in NORM_LEVELS})
    return measures


def _anomaly_measures() -> dict[str, Measure]:
    """The robust norms of :func:`features.anomaly.fit_anomaly_norms`: per measure, each level and all rows."""
    out = {}
    for measure, (expr, levels) in MEASURES.items():
        out[f"{measure}@all"] = Measure(expr, where=usable(expr))
        out.update({f"{measure}@{name}": Measure(expr, key=key, where=usable(expr)) for name, key in levels})
    return out


def _centred(measures: dict[str, Measure], medians: dict[str, pl.DataFrame]) -> dict[str, Measure]:
    """Each measure as distances from its groups' medians (groups with a median only)."""
    return {
        name: Measure(m.value, key=m.key, where=m.where, center=medians[name].filter(pl.col("n") > 0).select("g", pl.col("median").alias("center")))
        for name, m in measures.items()
    }


def _anomaly_norms(client, files: Sequence[str], medians: dict[str, pl.DataFrame]) -> dict[str, dict]:  # noqa: ANN001
    """:func:`features.anomaly.fit_anomaly_norms` from the measures' ``medians`` (one more selection: the MADs)."""
    measures = _anomaly_measures()
    scales = grouped_medians(client, files, _centred(measures, medians))
    out: dict[str, dict] = {}
    for measure, (_expr, levels) in MEASURES.items():
        def robust(name: str) -> pl.DataFrame:
            scale = scales[name].select("g", (pl.col("median") * MAD_SCALE).alias("scale"))
            return medians[name].select("g", "n", "median").join(scale, on="g", how="left", maintain_order="left").rename({"g": "key"})

        norms: dict = {name: level_norms(robust(f"{measure}@{name}")) for name, _key in levels}
        overall = robust(f"{measure}@all").filter(pl.col("n") > 0)
        norms["all"] = overall_norm(overall.row(0, named=True) if overall.height else None)
        out[measure] = norms
    return out


def _counted_measures() -> dict[str, Measure]:
    """Rows per value of each categorical source, and all rows (``rows``)."""
    return {"rows": Measure(pl.lit(0.0)), **{column: Measure(pl.lit(0.0), key=pl.col(source)) for column, source in CATEGORICAL_SOURCES.items()}}


def _vocabulary(counts: pl.DataFrame) -> list[str]:
    return vocabulary(counts.select(pl.col("g").alias("key"), pl.col("rows").alias("n")))


def _inspected_manifests(path: str, outcome_ids: pl.DataFrame) -> pl.DataFrame:
    """On a worker: the staged manifests of ``path`` that have an outcome (id and hierarchy keys), once each."""
    keys = sorted({k for ks in LEVEL_KEYS.values() for k in ks})
    return pl.scan_parquet(path).join(outcome_ids.lazy(), on="manifest_id", how="semi").select("manifest_id", *keys).unique("manifest_id").collect()


def _strengths(client, files: Sequence[str], outcomes: pl.DataFrame) -> dict[str, float]:  # noqa: ANN001
    """:func:`features.hierarchy.fit_strengths` from the manifests with an outcome only (the join keeps no other)."""
    ids = client.scatter(outcomes.select("manifest_id").unique(), broadcast=True, hash=False)
    parts = client.gather([client.submit(_inspected_manifests, f, ids, pure=False) for f in files])
    inspected = pl.concat(parts, how="vertical").unique("manifest_id", keep="first", maintain_order=True)
    return fit_strengths(inspected, outcomes, LEVEL_KEYS, default=PRIOR_STRENGTH)


def fit_stats_on_cluster(client, files: Sequence[str], outcomes: pl.DataFrame) -> FeatureStats:  # noqa: ANN001
    """:func:`features.stats.fit_stats` of the manifests staged in ``files`` (the workers read them), exactly.

    ``files``: Parquet files holding together the training period's manifest rows with their derived
    columns (at least :data:`STATS_COLUMNS`); ``outcomes``: the training period's outcomes.
    """
    medians = grouped_medians(client, files, {**_stats_measures(), **_anomaly_measures()})  # one selection for both
    counts = group_counts(client, files, _counted_measures())

    def norms(level: str) -> pl.DataFrame:
        vpk, mass = medians[f"log_vpk@{level}"], medians[f"log_mass@{level}"]
        return vpk.select(pl.col("g").alias("key"), pl.col("rows").alias("n"), pl.col("median").alias("log_vpk")).join(
            mass.select(pl.col("g").alias("key"), pl.col("median").alias("log_mass")), on="key", how="left", maintain_order="left"
        )

    rows = int(counts["rows"]["rows"].sum())
    inspections = outcomes.height
    findings = int((outcomes["result"] == "SEIZURE").sum()) if inspections else 0
    return FeatureStats(
        vocabularies={column: _vocabulary(counts[column]) for column in CATEGORICAL_SOURCES},
        heading_norms=norm_table(norms("hs_heading")),
        chapter_norms=norm_table(norms("hs_chapter")),
        global_norm={column: _finite(_only(medians[f"{column}@all"])) for column in ("log_vpk", "log_mass")},
        tare_by_type=tare_table(medians["tare"].select(pl.col("g").alias("key"), pl.col("rows").alias("n"), pl.col("median").alias("tare"))),
        prior_finding_rate=finding_prior(inspections, findings),
        anomaly_norms=_anomaly_norms(client, files, medians),
        hierarchy_strengths=_strengths(client, files, outcomes),
        fitted_on={"manifests": rows, "outcomes": inspections, "findings": findings},
    )


def _only(medians: pl.DataFrame) -> float | None:
    """The median of the all-rows group (None when no row had a value)."""
    return medians["median"][0] if medians.height else None


def _first_hub() -> pl.Expr:
    return pl.col("transshipment_ports").list.first()


def integrity_norms_on_cluster(client, files: Sequence[str], *, where: pl.Expr | None = None, min_group: int = 50) -> IntegrityNorms:  # noqa: ANN001
    """:func:`features.integrity.fit_integrity_norms` of the rows in ``files`` (those ``where`` keeps), exactly.

    ``files`` hold the integrity feature columns and the manifest's ``port_of_loading`` and ``transshipment_ports``.
    """
    measures, groups = {}, {}
    for column, key, _ in COMPONENTS:
        known = pl.col(column).is_not_null() & (pl.col(column) >= 0)
        known = known & _first_hub().is_not_null() if key == "first_hub" else known
        known = known & where if where is not None else known
        group = _first_hub() if key == "first_hub" else pl.col(key) if key is not None else None
        measures[column] = Measure(pl.col(column), where=known)
        if group is not None:
            measures[f"{column}@{key}"] = Measure(pl.col(column), key=group, where=known)
            groups[column] = f"{column}@{key}"
    counts = group_counts(client, files, measures)
    kept = {name: c.filter(pl.col("n") >= (min_group if name in groups.values() else 1)) for name, c in counts.items()}
    values = values_at_ranks(client, files, measures, counts, {name: _grid_ranks(c) for name, c in kept.items()})
    references = {}
    for column, _key, _ in COMPONENTS:
        if kept[column].height == 0:
            references[column] = {}
            continue
        references[column] = {None: _reference(kept[column].row(0, named=True), values[column])}
        if column in groups:
            name = groups[column]
            references[column].update({row["g"]: _reference(row, values[name]) for row in kept[name].iter_rows(named=True)})
    return IntegrityNorms(references, min_group)


def _grid_ranks(counts: pl.DataFrame) -> pl.DataFrame:
    """The ranks each group's quantile grid reads (:func:`features.integrity.grid_ranks`)."""
    frames = [pl.DataFrame({"g": g, "rank": np.unique(np.concatenate(grid_ranks(n)[:2]))}) for g, n in counts.select("g", "n").iter_rows()]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"g": pl.String, "rank": pl.Int64})


def _reference(group: dict, values: pl.DataFrame) -> Reference:
    """A group's :class:`Reference` from the values selected at its ranks."""
    mine = values.filter(pl.col("g") == group["g"]).sort("rank")
    ranks, found = mine["rank"].to_numpy(), mine["value"].to_numpy()
    return reference_from_ranks(int(group["n"]), lambda wanted: found[np.searchsorted(ranks, wanted)])
