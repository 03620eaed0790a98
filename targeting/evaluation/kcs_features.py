"""Customs declarations in the KCS public format mapped to the engine's concepts, with point-in-time features.

The Korea Customs Service published synthetic import declarations (MIT
licence, arXiv:2208.02484): one row per declaration, a day-resolution
``Date``, parties, HS code, countries, mass, value, tax and a ``Fraud`` label
from inspection. :func:`read_kcs` checks and maps a file to the engine's
concepts (:data:`COLUMN_MAP`); concepts the format lacks (container, vessel,
ports, route, events, ...; :data:`ABSENT_CONCEPTS`) stay absent, they are
never filled with invented values.

:func:`build_kcs_features` computes the model inputs in the engine's style:
small pure expressions for row-wise features, one time-ordered frame
transform per entity family, statistics fitted once on training data
(:class:`KcsStats`, :func:`fit_kcs_stats`).

Leakage rules (tested in ``tests/features/test_kcs_features.py``)
-----------------------------------------------------------------
1. *Strictly earlier dates.* Every history feature of a declaration dated
   ``D`` reads only declarations dated strictly before ``D``. Declarations of
   the same day, the declaration itself included, never count. A change to
   any row dated ``D`` or later therefore never changes a feature of a row
   dated before or on ``D - 1``; a label change on ``D`` never changes any
   row dated ``D`` or earlier.
2. *Only known labels.* Label features (``*_n_labelled``, ``*_n_fraud``,
   ``*_fraud_rate``, ``*_days_since_fraud``) read the ``label`` column, where
   null means "outcome not known". Rows being scored out of time get their
   labels nulled first (:func:`hide_labels`): they still count as
   declarations (non-label counts) but never as outcomes.
3. *Fitted on training data only.* Vocabularies, value-per-kg and tax-rate
   norms and the fraud-rate prior come from the training file
   (:func:`fit_kcs_stats`); the other files only read them.
4. ``Critical Fraud`` is a second label; it is mapped to ``critical_fraud``
   and never used as a feature.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Sequence

import polars as pl

from features.stats import MIN_NORM_COUNT, MIN_VOCAB_COUNT, PRIOR_STRENGTH, UNKNOWN_CODE

KCS_STATS_FORMAT = "ccp-kcs-stats/1"
LABEL = "label"
DATE = "declared_on"
ID = "declaration_id"
NEVER_DAYS = 3650.0

COLUMN_MAP: dict[str, str] = {
    "declaration_id": "Declaration ID",
    "declared_on": "Date",
    "office_id": "Office ID",
    "process_type": "Process Type",
    "import_type": "Import Type",
    "import_use": "Import Use",
    "payment_type": "Payment Type",
    "transport_mode": "Mode of Transport",
    "declarant_id": "Declarant ID",
    "consignee_id": "Importer ID",
    "shipper_id": "Seller ID",
    "courier_id": "Courier ID",
    "hs_code": "HS6 Code",
    "departure_country": "Country of Departure",
    "origin_country": "Country of Origin",
    "tax_rate": "Tax Rate",
    "tax_type": "Tax Type",
    "origin_indicator": "Country of Origin Indicator",
    "net_mass_kg": "Net Mass",
    "declared_value": "Item Price",
    "label": "Fraud",
    "critical_fraud": "Critical Fraud",
}
"""Engine concept <- KCS column. ``declared_value`` is in KRW (the only currency of the format)."""

CONCEPT_NOTES: dict[str, str] = {
    "consignee_id": "importer of record (consignee-like party)",
    "shipper_id": "foreign seller (shipper-like party); null when not declared",
    "declarant_id": "customs broker filing the declaration",
    "courier_id": "express courier; null for non-courier declarations",
    "office_id": "customs office of clearance",
    "hs_code": "6-digit HS code, zero-padded; heading and chapter derived",
    "net_mass_kg": "net mass (the engine's containers carry gross mass and VGM)",
    "declared_value": "item price in KRW",
    "payment_type": "duty payment method (not freight payment terms)",
    "label": "inspection found fraud (0/1)",
    "critical_fraud": "severity label (0/1/2); never a feature",
}

OPTIONAL_COLUMNS: tuple[str, ...] = ("Seller ID", "Courier ID")
"""KCS columns whose values may be null (the column itself is still required)."""

ABSENT_CONCEPTS: tuple[str, ...] = (
    "container number and type",
    "vessel, voyage and IMO number",
    "ports of loading, transshipment and discharge (UN/LOCODE), route and hubs",
    "container events (gate, load, discharge)",
    "carrier",
    "gross mass and verified gross mass",
    "freight payment terms",
    "goods description",
    "filing and arrival timestamps (only the declaration day)",
    "selection source and random-slice flag of each inspection",
    "seized quantity or value (so value@n cannot be computed)",
)
"""Engine concepts the KCS format does not carry; the adapter leaves them out."""

_STRING_CONCEPTS = (
    "office_id", "process_type", "import_type", "import_use", "payment_type", "transport_mode", "declarant_id", "consignee_id",
    "shipper_id", "courier_id", "departure_country", "origin_country", "tax_type", "origin_indicator",
)
_FLOAT_CONCEPTS = ("tax_rate", "net_mass_kg", "declared_value")

CATEGORICAL_SOURCES: dict[str, str] = {
    "office_code": "office_id",
    "process_type_code": "process_type",
    "import_type_code": "import_type",
    "import_use_code": "import_use",
    "payment_type_code": "payment_type",
    "transport_mode_code": "transport_mode",
    "departure_country_code": "departure_country",
    "origin_country_code": "origin_country",
    "origin_indicator_code": "origin_indicator",
    "tax_type_code": "tax_type",
    "courier_code": "courier_id",
    "hs_chapter_code": "hs_chapter",
    "hs_heading_code": "hs_heading",
}
"""Categorical feature column -> source concept. Codes 1..K from the fitted vocabulary; unknown and null -> 0."""


class KcsInputError(ValueError):
    """A KCS file cannot be used: missing columns, unparsable values, or rows shared between files."""


# ----------------------------------------------------------------------------- reading and mapping
def missing_columns(columns: Sequence[str]) -> list[str]:
    """KCS columns of :data:`COLUMN_MAP` absent from ``columns``, in file order.

    >>> missing_columns(["Date"])[:2]
    ['Declaration ID', 'Office ID']
    """
    present = set(columns)
    return [c for c in COLUMN_MAP.values() if c not in present]


def map_kcs_columns(raw: pl.DataFrame, *, source: str = "frame") -> pl.DataFrame:
    """Rename and type a KCS frame (all columns as read, strings allowed) into engine concepts.

    Parameters
    ----------
    raw
        A frame with every column of :data:`COLUMN_MAP` (extra columns are dropped).
    source
        Name used in error messages (the file path).

    Returns
    -------
    pl.DataFrame
        Columns of :data:`COLUMN_MAP` plus ``hs_heading`` and ``hs_chapter``, in input row order.

    Raises
    ------
    KcsInputError
        When required columns are missing, a value cannot be parsed, a required
        value is null, a label is not 0/1, an HS code is not 1-6 digits, or a
        declaration ID repeats.
    """
    missing = missing_columns(raw.columns)
    if missing:
        raise KcsInputError(f"{source}: missing required KCS columns: {missing}")
    frame = raw.select(pl.col(kcs).alias(concept) for concept, kcs in COLUMN_MAP.items())
    casts = {
        ID: pl.col(ID).cast(pl.Utf8).str.strip_chars().cast(pl.Int64, strict=False),
        DATE: pl.col(DATE).cast(pl.Utf8).str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
        "hs_code": pl.col("hs_code").cast(pl.Utf8).str.strip_chars().str.zfill(6),
        LABEL: pl.col(LABEL).cast(pl.Utf8).str.strip_chars().cast(pl.Int8, strict=False),
        "critical_fraud": pl.col("critical_fraud").cast(pl.Utf8).str.strip_chars().cast(pl.Int8, strict=False),
        **{c: pl.col(c).cast(pl.Utf8).str.strip_chars() for c in _STRING_CONCEPTS},
        **{c: pl.col(c).cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False) for c in _FLOAT_CONCEPTS},
    }
    typed = frame.with_columns(expr.alias(name) for name, expr in casts.items())
    optional = {c for c, k in COLUMN_MAP.items() if k in OPTIONAL_COLUMNS}
    for concept, kcs in COLUMN_MAP.items():
        bad = typed[concept].is_null() & (frame[concept].is_not_null() | (concept not in optional))
        if bad.any():
            first = int(bad.arg_max())
            raise KcsInputError(f"{source}: column {kcs!r} has {int(bad.sum())} null or unparsable value(s), first at row {first + 1}: {frame[concept][first]!r}")
    if not typed[LABEL].is_in([0, 1]).all():
        raise KcsInputError(f"{source}: column 'Fraud' must be 0 or 1")
    if not typed["hs_code"].str.contains(r"^[0-9]{6}$").all():
        bad = typed.filter(~pl.col("hs_code").str.contains(r"^[0-9]{6}$"))["hs_code"][0]
        raise KcsInputError(f"{source}: column 'HS6 Code' must hold up to 6 digits, found {bad!r}")
    if not typed[ID].is_unique().all():
        raise KcsInputError(f"{source}: column 'Declaration ID' repeats {typed.height - typed[ID].n_unique()} value(s)")
    return typed.with_columns(pl.col("hs_code").str.slice(0, 4).alias("hs_heading"), pl.col("hs_code").str.slice(0, 2).alias("hs_chapter"))


def read_kcs(path: str | Path, *, n_rows: int | None = None) -> pl.DataFrame:
    """Read a KCS declaration CSV and map it to engine concepts (see :func:`map_kcs_columns`).

    Every column is read as text first so that HS codes keep their leading
    zeros and a bad value is reported by column instead of by a parser error.
    """
    path = Path(path)
    if not path.is_file():
        raise KcsInputError(f"{path}: no such file")
    try:
        raw = pl.read_csv(path, infer_schema=False, n_rows=n_rows)
    except pl.exceptions.PolarsError as exc:
        raise KcsInputError(f"{path}: not a readable CSV file ({exc.__class__.__name__})") from exc
    return map_kcs_columns(raw, source=str(path))


def hide_labels(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with ``label`` and ``critical_fraud`` nulled: rows to score whose outcomes must stay unseen."""
    return frame.with_columns(pl.lit(None, pl.Int8).alias(LABEL), pl.lit(None, pl.Int8).alias("critical_fraud"))


# ----------------------------------------------------------------------------- fitted statistics
@dataclass
class KcsStats:
    """Statistics fitted on the training file; plain JSON types, saved beside the model.

    ``value_norms`` maps a level (``hs_code``, ``hs_heading``, ``hs_chapter``)
    to the median log(KRW per kg) of each code with at least
    ``MIN_NORM_COUNT`` usable rows; ``tax_norms`` maps an HS code to its
    median declared tax rate.
    """

    vocabularies: dict[str, list[str]]
    value_norms: dict[str, dict[str, float]]
    global_value_norm: float
    tax_norms: dict[str, float]
    global_tax_norm: float
    prior_fraud_rate: float
    prior_strength: float = PRIOR_STRENGTH
    fitted_on: dict = field(default_factory=dict)
    format: str = KCS_STATS_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "KcsStats":
        data = json.loads(text)
        if data.get("format") != KCS_STATS_FORMAT:
            raise ValueError(f"unsupported KCS statistics format {data.get('format')!r}; expected {KCS_STATS_FORMAT!r}")
        return cls(**data)

    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def log_value_per_kg() -> pl.Expr:
    """log(declared KRW per kg of net mass); null when value or mass is not positive."""
    vpk = pl.col("declared_value") / pl.col("net_mass_kg")
    return pl.when((pl.col("declared_value") > 0) & (pl.col("net_mass_kg") > 0)).then(vpk.log()).otherwise(None).alias("log_value_per_kg")


def _finite(value: float | None, default: float = 0.0) -> float:
    return float(value) if value is not None and math.isfinite(value) else default


def _medians(frame: pl.DataFrame, by: str, column: str, min_count: int) -> dict[str, float]:
    grouped = (
        frame.filter(pl.col(column).is_not_null())
        .group_by(by)
        .agg(pl.len().alias("n"), pl.col(column).median().alias("m"))
        .filter(pl.col("n") >= min_count)
        .sort(by)
    )
    return {row[by]: _finite(row["m"]) for row in grouped.iter_rows(named=True) if row[by] is not None}


def fit_kcs_stats(train: pl.DataFrame, *, min_vocab_count: int = MIN_VOCAB_COUNT, min_norm_count: int = MIN_NORM_COUNT) -> KcsStats:
    """Fit vocabularies, value-per-kg and tax-rate norms and the fraud-rate prior on training declarations.

    Parameters
    ----------
    train
        Mapped training declarations (:func:`read_kcs`) with known labels.
    min_vocab_count
        A category enters a vocabulary when it has at least this many training rows.
    min_norm_count
        An HS code, heading or chapter gets its own norm with at least this many usable rows.
    """
    if train.height == 0 or train[LABEL].null_count() == train.height:
        raise ValueError("statistics need training declarations with known labels")
    frame = train.with_columns(log_value_per_kg())
    vocabularies = {}
    for column, source in CATEGORICAL_SOURCES.items():
        counts = frame.group_by(source).agg(pl.len().alias("n")).filter((pl.col("n") >= min_vocab_count) & pl.col(source).is_not_null())
        vocabularies[column] = sorted(counts[source].to_list())
    labels = frame[LABEL].drop_nulls()
    frauds = int(labels.sum())
    return KcsStats(
        vocabularies=vocabularies,
        value_norms={level: _medians(frame, level, "log_value_per_kg", min_norm_count) for level in ("hs_code", "hs_heading", "hs_chapter")},
        global_value_norm=_finite(frame["log_value_per_kg"].median()),
        tax_norms=_medians(frame, "hs_code", "tax_rate", min_norm_count),
        global_tax_norm=_finite(frame["tax_rate"].median()),
        prior_fraud_rate=(frauds + 1.0) / (labels.len() + 2.0),
        fitted_on={"declarations": frame.height, "labelled": labels.len(), "frauds": frauds},
    )


# ----------------------------------------------------------------------------- row-wise features
FEATURE_DESCRIPTIONS: dict[str, str] = {}
"""Every KCS feature column and its meaning (kept apart from the container engine's registry)."""


def _describe(name: str, description: str) -> str:
    FEATURE_DESCRIPTIONS[name] = description
    return name


def _norm_lookup(key: str, table: dict[str, float]) -> pl.Expr:
    return pl.col(key).replace_strict(table, default=None, return_dtype=pl.Float64)


def value_per_kg_norm(stats: KcsStats) -> pl.Expr:
    """Training median log(KRW per kg) of the HS code, else its heading, chapter, or all goods."""
    levels = [_norm_lookup(level, stats.value_norms.get(level, {})) for level in ("hs_code", "hs_heading", "hs_chapter")]
    return pl.coalesce(*levels, pl.lit(stats.global_value_norm)).alias("value_per_kg_norm")


def value_per_kg_deviation(stats: KcsStats) -> pl.Expr:
    """log(KRW per kg) minus the HS norm (negative: cheaper than usual for the goods); null without value or mass."""
    return (log_value_per_kg() - value_per_kg_norm(stats)).alias("value_per_kg_deviation")


def tax_rate_deviation(stats: KcsStats) -> pl.Expr:
    """Declared tax rate minus the HS code's training median rate (a lower rate than usual hints at misclassification or origin)."""
    norm = pl.coalesce(_norm_lookup("hs_code", stats.tax_norms), pl.lit(stats.global_tax_norm))
    return (pl.col("tax_rate") - norm).alias("tax_rate_deviation")


def row_features(stats: KcsStats) -> list[pl.Expr]:
    """Row-wise features: each reads only the declaration itself and fitted statistics."""
    duty = pl.col("declared_value") * pl.col("tax_rate") / 100.0
    return [
        pl.col("declared_value").clip(lower_bound=0).log1p().alias("log_declared_value"),
        pl.col("net_mass_kg").clip(lower_bound=0).log1p().alias("log_net_mass"),
        log_value_per_kg(),
        value_per_kg_norm(stats),
        value_per_kg_deviation(stats),
        pl.col("tax_rate").alias("tax_rate"),
        tax_rate_deviation(stats),
        duty.clip(lower_bound=0).log1p().alias("log_duty"),
        pl.col("tax_type").str.starts_with("F").cast(pl.Int8).alias("preferential_tariff"),
        (pl.col("origin_country") != pl.col("departure_country")).cast(pl.Int8).alias("origin_differs_from_departure"),
        pl.col("shipper_id").is_null().cast(pl.Int8).alias("shipper_missing"),
        pl.col("courier_id").is_not_null().cast(pl.Int8).alias("courier_used"),
    ]


for _name, _text in {
    "log_declared_value": "log(1 + declared item price in KRW).",
    "log_net_mass": "log(1 + net mass in kg).",
    "log_value_per_kg": "log(declared KRW per kg of net mass); null when value or mass is not positive.",
    "value_per_kg_norm": value_per_kg_norm.__doc__,
    "value_per_kg_deviation": value_per_kg_deviation.__doc__,
    "tax_rate": "Declared tax rate (%).",
    "tax_rate_deviation": tax_rate_deviation.__doc__,
    "log_duty": "log(1 + declared value x tax rate), the duty at stake in KRW.",
    "preferential_tariff": "1 when the tax type is a preferential (FTA, 'F...') rate.",
    "origin_differs_from_departure": "1 when the country of origin differs from the country of departure.",
    "shipper_missing": "1 when no seller is declared.",
    "courier_used": "1 when the declaration names an express courier.",
}.items():
    _describe(_name, " ".join(str(_text).split()))


def encode_categoricals(stats: KcsStats) -> list[pl.Expr]:
    """Each categorical concept as its vocabulary code (Int32, 1..K; unknown and null -> 0), never a Polars categorical dtype."""
    return [
        pl.col(source)
        .replace_strict({v: i + 1 for i, v in enumerate(stats.vocabularies.get(column, []))}, default=UNKNOWN_CODE, return_dtype=pl.Int32)
        .alias(column)
        for column, source in CATEGORICAL_SOURCES.items()
    ]


for _column, _source in CATEGORICAL_SOURCES.items():
    _describe(_column, f"Vocabulary code of {_source} (fitted on training data; unknown and null -> 0).")


# ----------------------------------------------------------------------------- entity history
@dataclass(frozen=True)
class KcsFamily:
    """An entity key and the history statistics it gets.

    ``windows``: trailing-window declaration counts in days; ``labels``: fraud
    history from known labels; ``first_seen``: days since the first earlier
    declaration.
    """

    name: str
    keys: tuple[str, ...]
    description: str
    windows: tuple[int, ...] = (30, 365)
    labels: bool = True
    first_seen: bool = False


PARTY_FAMILIES: tuple[KcsFamily, ...] = (
    KcsFamily("consignee", ("consignee_id",), "the importer", first_seen=True),
    KcsFamily("declarant", ("declarant_id",), "the declarant", first_seen=True),
    KcsFamily("shipper", ("shipper_id",), "the seller", first_seen=True),
    KcsFamily("consignee_hs", ("consignee_id", "hs_code"), "the importer with this HS code (new commodity for a known trader)", windows=(365,)),
    KcsFamily("hs_origin", ("hs_code", "origin_country"), "the HS code from this origin country", windows=(365,)),
    KcsFamily("office", ("office_id",), "the customs office", windows=(30,)),
)
"""Engine-style entity families: parties, commodity x trader, commodity x origin, office."""

VALUE_FAMILIES: tuple[KcsFamily, ...] = (
    KcsFamily("value", ("declared_value",), "declarations with exactly this declared value", windows=(365,)),
    KcsFamily("hs_value", ("hs_code", "declared_value"), "declarations of this HS code with exactly this declared value", windows=(365,)),
)
"""Repeat declared values: the same item price recurring (templated invoices); on the KCS data the strongest history key."""

DEFAULT_FAMILIES: tuple[KcsFamily, ...] = PARTY_FAMILIES + VALUE_FAMILIES


def family_columns(family: KcsFamily) -> list[str]:
    """Output columns of a family, in canonical order."""
    cols = [f"{family.name}_n_prior", *(f"{family.name}_n_{w}d" for w in family.windows)]
    if family.first_seen:
        cols.append(f"{family.name}_days_since_first")
    if family.labels:
        cols += [f"{family.name}_n_labelled", f"{family.name}_n_fraud", f"{family.name}_fraud_rate", f"{family.name}_days_since_fraud"]
    return cols


def _describe_family(family: KcsFamily) -> None:
    what, before = family.description, "dated strictly before the declaration's date"
    _describe(f"{family.name}_n_prior", f"Declarations of {what} {before} (all files, labels not read).")
    for w in family.windows:
        _describe(f"{family.name}_n_{w}d", f"Declarations of {what} dated in [D - {w} days, D), D the declaration's date.")
    if family.first_seen:
        _describe(f"{family.name}_days_since_first", f"Days from the first declaration of {what} {before} to D; null when none.")
    if family.labels:
        _describe(f"{family.name}_n_labelled", f"Declarations of {what} {before} with a known label.")
        _describe(f"{family.name}_n_fraud", f"Declarations of {what} {before} labelled fraud.")
        _describe(
            f"{family.name}_fraud_rate",
            f"Smoothed fraud rate of {what} from known labels {before}: (frauds + prior x s) / (labelled + s), prior and s fitted on training data.",
        )
        _describe(f"{family.name}_days_since_fraud", f"Days since the last declaration of {what} labelled fraud {before}; {NEVER_DAYS:.0f} when none.")


for _family in DEFAULT_FAMILIES:
    _describe_family(_family)


def _days_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    return (later - earlier).dt.total_days().cast(pl.Float64)


def family_history(frame: pl.LazyFrame, family: KcsFamily, stats: KcsStats) -> pl.LazyFrame:
    """History features of one family for every (key, date) present in ``frame``.

    Time semantics: a (key, date D) row aggregates declarations with that key
    dated strictly before D; windows cover [D - W days, D). Label statistics
    count only rows whose ``label`` is not null. Rows with a null key get no
    row here (their features stay null after the join).

    Parameters
    ----------
    frame
        Declarations with ``declared_on`` (Date), ``label`` (null = unknown) and the family's keys.
    family
        The entity family.
    stats
        Fitted statistics (fraud-rate prior and its strength).

    Returns
    -------
    pl.LazyFrame
        The keys, ``declared_on`` and :func:`family_columns` of the family.
    """
    keys = list(family.keys)
    daily = (
        frame.filter(pl.all_horizontal(pl.col(k).is_not_null() for k in keys))
        .group_by(*keys, DATE)
        .agg(
            pl.len().cast(pl.Int64).alias("_n"),
            pl.col(LABEL).is_not_null().sum().cast(pl.Int64).alias("_nl"),
            pl.col(LABEL).fill_null(0).cast(pl.Int64).sum().alias("_nf"),
        )
        .sort(*keys, DATE)
    )
    name = family.name
    prior, strength = stats.prior_fraud_rate, stats.prior_strength
    exclusive = [
        (pl.col("_n").cum_sum() - pl.col("_n")).over(keys).cast(pl.Float64).alias(f"{name}_n_prior"),
    ]
    if family.first_seen:
        first = pl.col(DATE).min().over(keys)
        exclusive.append(pl.when(first < pl.col(DATE)).then(_days_between(pl.col(DATE), first)).otherwise(None).alias(f"{name}_days_since_first"))
    if family.labels:
        labelled = (pl.col("_nl").cum_sum() - pl.col("_nl")).over(keys).cast(pl.Float64)
        frauds = (pl.col("_nf").cum_sum() - pl.col("_nf")).over(keys).cast(pl.Float64)
        last_fraud = pl.when(pl.col("_nf") > 0).then(pl.col(DATE)).otherwise(None).forward_fill().shift(1).over(keys)
        exclusive += [
            labelled.alias(f"{name}_n_labelled"),
            frauds.alias(f"{name}_n_fraud"),
            ((frauds + prior * strength) / (labelled + strength)).alias(f"{name}_fraud_rate"),
            pl.when(last_fraud.is_null()).then(NEVER_DAYS).otherwise(_days_between(pl.col(DATE), last_fraud).clip(upper_bound=NEVER_DAYS)).alias(f"{name}_days_since_fraud"),
        ]
    out = daily.with_columns(exclusive)
    for w in family.windows:
        window = (
            daily.rolling(DATE, period=timedelta(days=w), closed="left", group_by=keys)
            .agg(pl.col("_n").sum().cast(pl.Float64).alias(f"{name}_n_{w}d"))
        )
        out = out.join(window, on=[*keys, DATE], how="left", nulls_equal=False)
    return out.select(*keys, DATE, *family_columns(family))


# ----------------------------------------------------------------------------- the feature frame
def feature_columns(families: Sequence[KcsFamily] = DEFAULT_FAMILIES) -> list[str]:
    """Model input columns, in canonical order: row-wise, categorical codes, then each family's history."""
    row = ["log_declared_value", "log_net_mass", "log_value_per_kg", "value_per_kg_norm", "value_per_kg_deviation", "tax_rate", "tax_rate_deviation",
           "log_duty", "preferential_tariff", "origin_differs_from_departure", "shipper_missing", "courier_used"]
    return row + list(CATEGORICAL_SOURCES) + [c for f in families for c in family_columns(f)]


def categorical_columns() -> list[str]:
    """Feature columns LightGBM treats as categorical (by name)."""
    return list(CATEGORICAL_SOURCES)


def build_kcs_features(declarations: pl.DataFrame, stats: KcsStats, *, families: Sequence[KcsFamily] = DEFAULT_FAMILIES) -> pl.DataFrame:
    """Point-in-time model inputs for every declaration, in input row order.

    Parameters
    ----------
    declarations
        Mapped declarations (:func:`read_kcs`) of every file in play: the
        history and the rows to score, in any order. ``label`` is null where
        the outcome must not be read (call :func:`hide_labels` on test rows).
    stats
        Statistics fitted on the training file (:func:`fit_kcs_stats`).
    families
        Entity families to compute (default :data:`DEFAULT_FAMILIES`).

    Returns
    -------
    pl.DataFrame
        ``declaration_id`` then :func:`feature_columns`; numeric columns only
        (categoricals as Int32 codes). The leakage rules of the module
        docstring hold: a row dated D reads only rows dated before D.
    """
    for column in (ID, DATE, LABEL):
        if column not in declarations.columns:
            raise ValueError(f"declarations need a {column!r} column (use targeting.evaluation.kcs_features.read_kcs)")
    if not declarations[ID].is_unique().all():
        raise ValueError("declaration IDs must be unique across the files in play")
    lazy = declarations.lazy().with_row_index("_row")
    out = lazy.with_columns(*row_features(stats), *encode_categoricals(stats))
    for family in families:
        out = out.join(family_history(lazy, family, stats), on=[*family.keys, DATE], how="left", nulls_equal=False)
    return out.sort("_row").select(ID, *feature_columns(families)).collect()
