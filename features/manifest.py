"""Manifest features: what the candidate's own manifest says, as known at its decision time.

All features here read only the candidate row (and fitted norms). Fields that
change by amendment are used as filed; an amendment counts only when its
``amended_at`` is strictly before ``decision_at``.
"""

from __future__ import annotations

import polars as pl

from features.registry import declare, feature
from features.stats import FeatureStats, log_mass, log_value_per_kg, usd_value

MISSING = -1.0
"""Sentinel for a numeric feature whose inputs are missing (LightGBM splits on it like any value)."""
MAX_GROSS_KG_20FT = 30_480.0
MAX_GROSS_KG_40FT = 32_500.0
VAGUE_PATTERN = r"(?i)\b(fak|freight all kinds?|general cargo|said to contain|stc|consolidated cargo|various goods|sundries)\b"
SENSITIVE_AMENDMENTS = ("consignee", "description", "destination", "notify")


def _hours(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    return (end - start).dt.total_microseconds().cast(pl.Float64) / 3_600_000_000


def _known_amendment() -> pl.Expr:
    return pl.col("amended_at").is_not_null() & (pl.col("amended_at") < pl.col("decision_at"))


@feature("manifest")
def reefer() -> pl.Expr:
    """1 when the container is refrigerated, else 0 (as filed)."""
    return pl.col("reefer").fill_null(False).cast(pl.Int8).alias("reefer")


@feature("manifest")
def house_bl_only() -> pl.Expr:
    """1 when a house bill of lading is declared (NVOCC consolidation: the actual shipper is hidden behind a forwarder)."""
    return pl.col("house_bl").is_not_null().cast(pl.Int8).alias("house_bl_only")


@feature("manifest")
def seal_present() -> pl.Expr:
    """1 when the manifest declares a seal number."""
    return pl.col("seal_number").is_not_null().cast(pl.Int8).alias("seal_present")


@feature("manifest")
def vague_description() -> pl.Expr:
    """1 when the goods description is vague (FAK, general cargo, said to contain, STC, consolidated, sundries)."""
    return pl.col("goods_description").fill_null("").str.contains(VAGUE_PATTERN).cast(pl.Int8).alias("vague_description")


@feature("manifest")
def description_length() -> pl.Expr:
    """Number of characters in the goods description (short descriptions say little)."""
    return pl.col("goods_description").fill_null("").str.len_chars().cast(pl.Float64).alias("description_length")


@feature("manifest")
def freight_not_prepaid() -> pl.Expr:
    """1 when freight is collect (CC) or paid by a third party (TP)."""
    return pl.col("freight_payment").is_in(["CC", "TP"]).fill_null(False).cast(pl.Int8).alias("freight_not_prepaid")


@feature("manifest")
def freight_third_party() -> pl.Expr:
    """1 when freight is paid by a third party (TP)."""
    return (pl.col("freight_payment") == "TP").fill_null(False).cast(pl.Int8).alias("freight_third_party")


@feature("manifest")
def filing_lead_hours() -> pl.Expr:
    """Hours from filing to ETA (short = late filing)."""
    return _hours(pl.col("filed_at"), pl.col("eta")).fill_null(MISSING).alias("filing_lead_hours")


@feature("manifest")
def filed_after_departure() -> pl.Expr:
    """1 when the manifest was filed after the vessel's ETD (breach of the 24-hour rule)."""
    return (pl.col("filed_at") > pl.col("etd")).fill_null(False).cast(pl.Int8).alias("filed_after_departure")


@feature("manifest")
def booking_lead_hours() -> pl.Expr:
    """Hours from booking to ETD (short-notice booking; a hypothesis indicator)."""
    return _hours(pl.col("booked_at"), pl.col("etd")).fill_null(MISSING).alias("booking_lead_hours")


@feature("manifest")
def transit_hours() -> pl.Expr:
    """Declared voyage duration, ETD to ETA, in hours."""
    return _hours(pl.col("etd"), pl.col("eta")).fill_null(MISSING).alias("transit_hours")


@feature("manifest")
def amended_before_decision() -> pl.Expr:
    """1 when the manifest was amended strictly before the decision time."""
    return _known_amendment().cast(pl.Int8).alias("amended_before_decision")


@feature("manifest")
def late_sensitive_amendment() -> pl.Expr:
    """1 when, strictly before the decision time and less than 72 h before ETA, the consignee, description, destination or notify party was amended."""
    fields = pl.col("amended_fields").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    sensitive = fields.list.eval(pl.element().is_in(list(SENSITIVE_AMENDMENTS))).list.any()
    late = _hours(pl.col("amended_at"), pl.col("eta")) < 72
    return (_known_amendment() & sensitive & late).fill_null(False).cast(pl.Int8).alias("late_sensitive_amendment")


@feature("manifest")
def notify_differs() -> pl.Expr:
    """1 when a notify party is declared and differs from the consignee."""
    return (pl.col("notify_id").is_not_null() & (pl.col("notify_id") != pl.col("consignee_id"))).fill_null(False).cast(pl.Int8).alias(
        "notify_differs"
    )


@feature("manifest")
def consignee_foreign() -> pl.Expr:
    """1 when the consignee's country differs from the discharge port's country."""
    return (pl.col("consignee_country") != pl.col("port_of_discharge").str.slice(0, 2)).fill_null(False).cast(pl.Int8).alias(
        "consignee_foreign"
    )


@feature("manifest")
def value_per_kg_usd() -> pl.Expr:
    """Declared value per kg of gross mass in USD (fixed conversion table); -1 when unusable."""
    vpk = usd_value() / pl.col("gross_mass_kg")
    return pl.when(vpk.is_finite() & (vpk >= 0)).then(vpk).otherwise(MISSING).alias("value_per_kg_usd")


@feature("manifest")
def mass_capacity_ratio() -> pl.Expr:
    """Gross mass over the container type's maximum gross mass (20': 30,480 kg; 40'/45': 32,500 kg)."""
    capacity = pl.when(pl.col("container_type").str.starts_with("2")).then(MAX_GROSS_KG_20FT).otherwise(MAX_GROSS_KG_40FT)
    return (pl.col("gross_mass_kg") / capacity).fill_null(MISSING).fill_nan(MISSING).alias("mass_capacity_ratio")


@feature("manifest")
def packages_per_tonne() -> pl.Expr:
    """Declared packages per tonne of gross mass."""
    ratio = pl.col("packages").cast(pl.Float64) / (pl.col("gross_mass_kg") / 1000.0)
    return pl.when(ratio.is_finite()).then(ratio).otherwise(MISSING).alias("packages_per_tonne")


VALUE_DEVIATION = declare(
    "value_per_kg_log_deviation",
    "manifest",
    "log(USD value per kg) minus its norm for the HS heading (falling back to the chapter, then all goods), "
    "norms fitted on training data; 0 when unusable. Negative = undervalued.",
)
MASS_DEVIATION = declare(
    "mass_log_deviation",
    "manifest",
    "log(gross mass) minus its norm for the HS heading (chapter, then all goods as fallback), fitted on training data; 0 when unusable.",
)
VGM_EXCESS = declare(
    "vgm_excess_kg",
    "manifest",
    "Verified gross mass minus declared gross mass minus the typical tare of the container type (fitted); "
    "0 when no VGM is declared. Positive = unexplained weight.",
)


def _norm_frame(norms: dict[str, dict[str, float]], key: str, prefix: str) -> pl.LazyFrame:
    return pl.LazyFrame(
        {
            key: list(norms),
            f"{prefix}_vpk": [v["log_vpk"] for v in norms.values()],
            f"{prefix}_mass": [v["log_mass"] for v in norms.values()],
        },
        schema={key: pl.String, f"{prefix}_vpk": pl.Float64, f"{prefix}_mass": pl.Float64},
    )


def with_norm_deviations(frame: pl.LazyFrame, stats: FeatureStats) -> pl.LazyFrame:
    """Add the value, mass and VGM deviation features (needs ``hs_heading``, ``hs_chapter``)."""
    g = stats.global_norm
    tare = pl.col("container_type").replace_strict(stats.tare_by_type, default=None, return_dtype=pl.Float64)
    joined = frame.join(_norm_frame(stats.heading_norms, "hs_heading", "_h"), on="hs_heading", how="left", maintain_order="left").join(
        _norm_frame(stats.chapter_norms, "hs_chapter", "_c"), on="hs_chapter", how="left", maintain_order="left"
    )
    vpk_norm = pl.coalesce(pl.col("_h_vpk"), pl.col("_c_vpk"), pl.lit(g["log_vpk"]))
    mass_norm = pl.coalesce(pl.col("_h_mass"), pl.col("_c_mass"), pl.lit(g["log_mass"]))
    vgm = pl.col("verified_gross_mass_kg") - pl.col("gross_mass_kg") - tare.fill_null(0.0)
    return joined.with_columns(
        (log_value_per_kg() - vpk_norm).fill_null(0.0).fill_nan(0.0).alias(VALUE_DEVIATION),
        (log_mass() - mass_norm).fill_null(0.0).fill_nan(0.0).alias(MASS_DEVIATION),
        vgm.fill_null(0.0).fill_nan(0.0).alias(VGM_EXCESS),
    ).drop("_h_vpk", "_h_mass", "_c_vpk", "_c_mass")


def row_feature_functions(family: str):
    """Registered row-wise feature functions of ``family`` in registry order."""
    from features.registry import REGISTRY

    return [s.function for s in REGISTRY.values() if s.family == family and s.function is not None]
