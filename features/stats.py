"""Statistics fitted once at training time and read at serving time.

:class:`FeatureStats` holds the categorical vocabularies, the per-HS norms of
value per kg and gross mass, the typical tare per container type, and the
prior for smoothed finding rates. It is saved as a versioned JSON artifact
beside the model; serving never refits it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from features.hierarchy import LEVEL_KEYS, fit_strengths

STATS_FORMAT = "ccp-feature-stats/1"
UNKNOWN_CODE = 0
"""Code of values not in a vocabulary (and of nulls)."""

CATEGORICAL_SOURCES: dict[str, str] = {
    "carrier_code": "carrier",
    "port_of_loading_code": "port_of_loading",
    "origin_country_code": "origin_country",
    "port_of_discharge_code": "port_of_discharge",
    "last_hub_code": "last_hub",
    "container_type_code": "container_type",
    "freight_payment_code": "freight_payment",
    "hs_chapter_code": "hs_chapter",
    "hs_heading_code": "hs_heading",
    "currency_code": "currency",
}
"""Categorical feature column -> source column (derived manifest columns included)."""

USD_PER_UNIT: dict[str, float] = {
    "USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CHF": 1.12, "CNY": 0.14, "JPY": 0.0067, "KRW": 0.00073, "INR": 0.012,
    "BRL": 0.18, "MXN": 0.055, "CAD": 0.73, "AUD": 0.66, "SGD": 0.74, "HKD": 0.128, "AED": 0.272, "ZAR": 0.054,
    "TRY": 0.031, "COP": 0.00025, "PEN": 0.27, "CLP": 0.0011, "ARS": 0.0011, "VND": 0.00004, "THB": 0.028, "MYR": 0.21,
    "IDR": 0.000063, "PKR": 0.0036, "EGP": 0.02, "MAD": 0.1, "NGN": 0.00065, "GHS": 0.065, "KES": 0.0077,
}
"""Approximate conversion rates used to compare declared values (a fixed table, documented, not fitted)."""

MIN_VOCAB_COUNT = 5
MIN_NORM_COUNT = 20
PRIOR_STRENGTH = 20.0


@dataclass
class FeatureStats:
    """Fitted statistics; see the module docstring. All fields are plain JSON types."""

    vocabularies: dict[str, list[str]]
    heading_norms: dict[str, dict[str, float]]
    chapter_norms: dict[str, dict[str, float]]
    global_norm: dict[str, float]
    tare_by_type: dict[str, float]
    prior_finding_rate: float
    prior_strength: float = PRIOR_STRENGTH
    fitted_on: dict = field(default_factory=dict)
    hierarchy_strengths: dict[str, float] = field(default_factory=dict)
    """Empirical-Bayes smoothing strength per hierarchy level (:func:`features.hierarchy.fit_strengths`); a level
    missing here (statistics saved before the hierarchies existed) uses ``prior_strength``."""
    anomaly_norms: dict = field(default_factory=dict)
    """Robust norms of :mod:`features.anomaly` (empty: statistics saved before it existed; the score is then 0)."""
    format: str = STATS_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "FeatureStats":
        data = json.loads(text)
        if data.get("format") != STATS_FORMAT:
            raise ValueError(f"unsupported feature statistics format {data.get('format')!r}; expected {STATS_FORMAT!r}")
        return cls(**data)

    def save(self, path: Path) -> Path:
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: Path) -> "FeatureStats":
        return cls.from_json(Path(path).read_text())

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def usd_value() -> pl.Expr:
    """Declared value converted to USD with :data:`USD_PER_UNIT` (null for unknown currencies)."""
    rate = pl.col("currency").replace_strict(USD_PER_UNIT, default=None, return_dtype=pl.Float64)
    return pl.col("declared_value") * rate


def log_value_per_kg() -> pl.Expr:
    """log(USD value per kg of gross mass); null when value, currency or mass is unusable."""
    vpk = usd_value() / pl.col("gross_mass_kg")
    return pl.when((vpk > 0) & vpk.is_finite()).then(vpk.log()).otherwise(None)


def log_mass() -> pl.Expr:
    return pl.when(pl.col("gross_mass_kg") > 0).then(pl.col("gross_mass_kg").log()).otherwise(None)


def _norms(frame: pl.DataFrame, by: str) -> dict[str, dict[str, float]]:
    grouped = frame.group_by(by).agg(pl.len().alias("n"), pl.col("_lvpk").median().alias("log_vpk"), pl.col("_lmass").median().alias("log_mass"))
    return norm_table(grouped.rename({by: "key"}))


def norm_table(grouped: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Norms of the groups (``key``, ``n`` rows, medians ``log_vpk`` and ``log_mass``) with at least :data:`MIN_NORM_COUNT` rows."""
    kept = grouped.filter((pl.col("n") >= MIN_NORM_COUNT) & pl.col("key").is_not_null()).sort("key")
    return {row["key"]: {"log_vpk": _finite(row["log_vpk"]), "log_mass": _finite(row["log_mass"])} for row in kept.iter_rows(named=True)}


def vocabulary(counts: pl.DataFrame) -> list[str]:
    """Values (``key``, ``n`` rows) seen at least :data:`MIN_VOCAB_COUNT` times, sorted (nulls are never a value)."""
    return sorted(counts.filter((pl.col("n") >= MIN_VOCAB_COUNT) & pl.col("key").is_not_null())["key"].to_list())


def tare_table(grouped: pl.DataFrame) -> dict[str, float]:
    """Typical tare per container type (``key``, ``n`` rows with a verified mass, median ``tare``) with enough rows."""
    kept = grouped.filter((pl.col("n") >= MIN_NORM_COUNT) & pl.col("key").is_not_null()).sort("key")
    return {row["key"]: _finite(row["tare"]) for row in kept.iter_rows(named=True)}


def finding_prior(inspections: int, findings: int) -> float:
    """Prior finding rate of the smoothed rates: (findings + 1) / (inspections + 100)."""
    return (findings + 1.0) / (inspections + 100.0)


def _finite(value: float | None, default: float = 0.0) -> float:
    return float(value) if value is not None and math.isfinite(value) else default


def fit_stats(manifests: pl.DataFrame, outcomes: pl.DataFrame) -> FeatureStats:
    """Fit statistics on training data.

    Parameters
    ----------
    manifests
        Training-period manifests with derived columns (see
        :func:`features.history.with_derived_columns`).
    outcomes
        Outcomes recorded in the training period (for the finding-rate prior).
    """
    frame = manifests.with_columns(log_value_per_kg().alias("_lvpk"), log_mass().alias("_lmass"))
    vocabularies = {
        column: vocabulary(frame.group_by(source).agg(pl.len().alias("n")).rename({source: "key"}))
        for column, source in CATEGORICAL_SOURCES.items()
    }
    tare = (
        manifests.filter(pl.col("verified_gross_mass_kg").is_not_null())
        .group_by("container_type")
        .agg((pl.col("verified_gross_mass_kg") - pl.col("gross_mass_kg")).median().alias("tare"), pl.len().alias("n"))
    )
    from features.anomaly import fit_anomaly_norms  # features.anomaly reads FeatureStats: import here, not at module level

    inspections = outcomes.height
    findings = int((outcomes["result"] == "SEIZURE").sum()) if inspections else 0
    return FeatureStats(
        vocabularies=vocabularies,
        heading_norms=_norms(frame, "hs_heading"),
        chapter_norms=_norms(frame, "hs_chapter"),
        global_norm={"log_vpk": _finite(frame["_lvpk"].median()), "log_mass": _finite(frame["_lmass"].median())},
        tare_by_type=tare_table(tare.rename({"container_type": "key"})),
        prior_finding_rate=finding_prior(inspections, findings),
        anomaly_norms=fit_anomaly_norms(manifests),
        hierarchy_strengths=fit_strengths(frame, outcomes, LEVEL_KEYS, default=PRIOR_STRENGTH) if "origin_region" in frame.columns else {},
        fitted_on={"manifests": manifests.height, "outcomes": inspections, "findings": findings},
    )


def encode_categoricals(frame: pl.LazyFrame, stats: FeatureStats) -> pl.LazyFrame:
    """Map each categorical source column to its vocabulary code (1..K; unknown and null -> 0), as Int32.

    Codes are plain integers, never a Polars categorical dtype (LightGBM aborts on those).
    """
    return frame.with_columns(
        pl.col(source)
        .replace_strict({v: i + 1 for i, v in enumerate(stats.vocabularies.get(column, []))}, default=UNKNOWN_CODE, return_dtype=pl.Int32)
        .alias(column)
        for column, source in CATEGORICAL_SOURCES.items()
    )
