"""Specification of the KCS declaration adapter (targeting.evaluation.kcs_features): column mapping, input errors, point-in-time history features.

Runs on the first rows of the real public files (``../shared/data/customs-declaration-datasets-kcs``)
and on small hand-written declarations for exact values.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from targeting.evaluation.kcs_features import (
    COLUMN_MAP,
    DEFAULT_FAMILIES,
    FEATURE_DESCRIPTIONS,
    KCS_STATS_FORMAT,
    KcsInputError,
    KcsStats,
    build_kcs_features,
    categorical_columns,
    family_columns,
    feature_columns,
    fit_kcs_stats,
    hide_labels,
    map_kcs_columns,
    missing_columns,
    read_kcs,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "customs-declaration-datasets-kcs"
TRAIN = DATA / "df_syn_train_eng.csv"
LABEL_FEATURES = [c for f in DEFAULT_FAMILIES for c in family_columns(f) if c.endswith(("_n_labelled", "_n_fraud", "_fraud_rate", "_days_since_fraud"))]

pytestmark = pytest.mark.skipif(not TRAIN.is_file(), reason="the public KCS files are not present")


def declaration(i: int, day: str, *, importer: str = "IMP1", fraud: int = 0, price: float = 1000.0, hs: str = "620822", seller: str | None = "SEL1") -> dict:
    """One raw KCS row (every value as text, as read from a file)."""
    return {
        "Declaration ID": str(1000 + i), "Date": day, "Office ID": "40", "Process Type": "B", "Import Type": "11", "Import Use": "21",
        "Payment Type": "11", "Mode of Transport": "10", "Declarant ID": "DEC1", "Importer ID": importer, "Seller ID": seller, "Courier ID": None,
        "HS6 Code": hs, "Country of Departure": "CN", "Country of Origin": "CN", "Tax Rate": "8.0", "Tax Type": "A",
        "Country of Origin Indicator": "Y", "Net Mass": "10.0", "Item Price": str(price), "Fraud": str(fraud), "Critical Fraud": str(fraud),
    }


def frame(rows: list[dict]) -> pl.DataFrame:
    return map_kcs_columns(pl.DataFrame(rows, schema={c: pl.Utf8 for c in COLUMN_MAP.values()}))


@pytest.fixture(scope="module")
def real() -> pl.DataFrame:
    return read_kcs(TRAIN, n_rows=3000)


@pytest.fixture(scope="module")
def stats(real: pl.DataFrame) -> KcsStats:
    return fit_kcs_stats(real)


# ----------------------------------------------------------------------------- mapping and input errors
def test_real_file_maps_every_kcs_column_to_an_engine_concept(real: pl.DataFrame) -> None:
    assert real.columns == [*COLUMN_MAP, "hs_heading", "hs_chapter"]
    assert real.height == 3000
    assert real.schema["declared_on"] == pl.Date
    assert real.schema["label"] == pl.Int8
    assert real.schema["declared_value"] == pl.Float64 and real.schema["net_mass_kg"] == pl.Float64
    assert real["hs_code"].str.len_chars().unique().to_list() == [6]
    assert (real["hs_heading"] == real["hs_code"].str.slice(0, 4)).all()
    assert real["consignee_id"].null_count() == 0 and real["shipper_id"].null_count() > 0  # sellers may be undeclared
    first = real.row(0, named=True)
    assert (first["declaration_id"], first["declared_on"], first["consignee_id"], first["shipper_id"], first["hs_code"]) == (
        97061800, date(2020, 1, 1), "QLRUBN9", "0VKY2BR", "440890"
    )


def test_hs_codes_keep_their_leading_zero() -> None:
    mapped = frame([declaration(1, "2020-01-01", hs="10121")])
    assert mapped.select("hs_code", "hs_heading", "hs_chapter").row(0) == ("010121", "0101", "01")


def test_file_missing_required_columns_is_rejected_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "partial.csv"
    pl.read_csv(TRAIN, n_rows=20, infer_schema=False).drop("Item Price", "Fraud").write_csv(path)
    with pytest.raises(KcsInputError, match=r"missing required KCS columns: \['Item Price', 'Fraud'\]"):
        read_kcs(path)
    assert missing_columns(["Date"])[:2] == ["Declaration ID", "Office ID"]


def test_unparsable_value_is_reported_with_its_column() -> None:
    bad = declaration(1, "2020-13-45")
    with pytest.raises(KcsInputError, match=r"column 'Date' has 1 null or unparsable value\(s\), first at row 1: '2020-13-45'"):
        frame([bad])
    with pytest.raises(KcsInputError, match=r"column 'Importer ID' has 1 null"):
        frame([declaration(1, "2020-01-01", importer=None)])
    with pytest.raises(KcsInputError, match=r"column 'Fraud' must be 0 or 1"):
        frame([declaration(1, "2020-01-01", fraud=3)])
    with pytest.raises(KcsInputError, match=r"'Declaration ID' repeats 1 value"):
        frame([declaration(1, "2020-01-01"), declaration(1, "2020-01-02")])


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KcsInputError, match="no such file"):
        read_kcs(tmp_path / "nope.csv")


# ----------------------------------------------------------------------------- statistics
def test_statistics_round_trip_and_vocabularies_come_from_training_rows(real: pl.DataFrame, stats: KcsStats) -> None:
    assert KcsStats.from_json(stats.to_json()) == stats
    assert stats.format == KCS_STATS_FORMAT
    assert stats.fitted_on == {"declarations": 3000, "labelled": 3000, "frauds": int(real["label"].sum())}
    assert "CN" in stats.vocabularies["origin_country_code"]
    with pytest.raises(ValueError, match="unsupported KCS statistics format"):
        KcsStats.from_json(stats.to_json().replace(KCS_STATS_FORMAT, "other/9"))


def test_unknown_categories_get_code_zero_and_codes_are_plain_integers(real: pl.DataFrame, stats: KcsStats) -> None:
    row = real.head(1).with_columns(pl.lit("ZZ").alias("origin_country"), pl.lit(None, pl.Utf8).alias("courier_id"))
    feats = build_kcs_features(row, stats)
    assert feats["origin_country_code"][0] == 0 and feats["courier_code"][0] == 0
    assert all(feats.schema[c] == pl.Int32 for c in categorical_columns())
    assert all(t.is_numeric() for t in feats.schema.values())


def test_value_per_kg_deviation_is_measured_from_the_training_norm(stats: KcsStats) -> None:
    rows = frame([declaration(1, "2020-01-01", price=5000.0, hs="999999")])
    feats = build_kcs_features(rows, stats)
    assert feats["value_per_kg_norm"][0] == pytest.approx(stats.global_value_norm)  # unknown code, heading and chapter
    assert feats["value_per_kg_deviation"][0] == pytest.approx(math.log(5000.0 / 10.0) - stats.global_value_norm)


# ----------------------------------------------------------------------------- point-in-time semantics
def test_history_counts_and_fraud_rates_read_only_strictly_earlier_dates(stats: KcsStats) -> None:
    rows = frame(
        [
            declaration(1, "2020-01-01", fraud=1),
            declaration(2, "2020-01-01", fraud=0),
            declaration(3, "2020-01-05", fraud=1),
            declaration(4, "2020-02-10", fraud=0),
        ]
    )
    feats = build_kcs_features(rows, stats).select(
        "consignee_n_prior", "consignee_n_30d", "consignee_n_labelled", "consignee_n_fraud", "consignee_fraud_rate", "consignee_days_since_first",
        "consignee_days_since_fraud",
    )
    prior, s = stats.prior_fraud_rate, stats.prior_strength
    assert feats.row(0) == (0.0, 0.0, 0.0, 0.0, pytest.approx(prior), None, 3650.0)  # same-day row 2 never counts
    assert feats.row(1) == feats.row(0)
    assert feats.row(2) == (2.0, 2.0, 2.0, 1.0, pytest.approx((1 + prior * s) / (2 + s)), 4.0, 4.0)
    # window [2020-01-11, 2020-02-10): the January rows are out of the 30-day window, still in all-time history
    assert feats.row(3) == (3.0, 0.0, 3.0, 2.0, pytest.approx((2 + prior * s) / (3 + s)), 40.0, 36.0)


def test_label_change_on_a_later_date_never_changes_an_earlier_rows_features(real: pl.DataFrame, stats: KcsStats) -> None:
    """Leakage canary: flip every label dated on or after D; rows dated up to D are unchanged, later rows see it."""
    cutoff = date(2020, 1, 10)
    before = build_kcs_features(real, stats)
    flipped = real.with_columns(pl.when(pl.col("declared_on") >= cutoff).then(1 - pl.col("label")).otherwise(pl.col("label")).alias("label"))
    after = build_kcs_features(flipped, stats)
    early = (real["declared_on"] <= cutoff).to_numpy()
    assert early.sum() > 500
    assert_frame_equal(before.filter(early), after.filter(early))
    late_changed = before.filter(~early).select(LABEL_FEATURES) != after.filter(~early).select(LABEL_FEATURES)
    assert late_changed.to_numpy().any()  # the canary is alive: later rows do read earlier labels


def test_a_perfectly_predictive_later_declaration_changes_no_earlier_feature(real: pl.DataFrame, stats: KcsStats) -> None:
    """Canary: a fraud declaration on day D sharing every key with an earlier row changes nothing dated up to D."""
    day = date(2020, 1, 10)
    canary = real.head(1).with_columns(pl.lit(1, pl.Int64).alias("declaration_id"), pl.lit(day).alias("declared_on"), pl.lit(1, pl.Int8).alias("label"))
    base = build_kcs_features(real, stats)
    with_canary = build_kcs_features(pl.concat([real, canary]), stats).head(real.height)
    upto = (real["declared_on"] <= day).to_numpy()
    assert_frame_equal(base.filter(upto), with_canary.filter(upto))
    assert not base.filter(~upto).equals(with_canary.filter(~upto))  # later rows do see it


def test_hidden_labels_count_as_declarations_but_never_as_outcomes(real: pl.DataFrame, stats: KcsStats) -> None:
    history, scored = real.filter(pl.col("declared_on") < date(2020, 1, 15)), real.filter(pl.col("declared_on") >= date(2020, 1, 15))
    true_labels = build_kcs_features(pl.concat([history, hide_labels(scored)]), stats)
    flipped = build_kcs_features(pl.concat([history, hide_labels(scored.with_columns((1 - pl.col("label")).alias("label")))]), stats)
    assert_frame_equal(true_labels, flipped)
    tail = true_labels.tail(scored.height)
    assert tail["value_n_prior"].sum() > tail["value_n_labelled"].sum()  # earlier scored rows count, their labels do not


def test_row_order_of_the_input_does_not_change_any_feature(real: pl.DataFrame, stats: KcsStats) -> None:
    ordered = build_kcs_features(real, stats)
    shuffled = build_kcs_features(real.sample(fraction=1.0, shuffle=True, seed=11), stats)
    assert_frame_equal(ordered.sort("declaration_id"), shuffled.sort("declaration_id"))


def test_every_feature_column_is_described(stats: KcsStats, real: pl.DataFrame) -> None:
    feats = build_kcs_features(real.head(50), stats)
    assert feats.columns == ["declaration_id", *feature_columns()]
    assert set(feature_columns()) <= set(FEATURE_DESCRIPTIONS)
    assert all("strictly before" in FEATURE_DESCRIPTIONS[c] for c in LABEL_FEATURES if c.endswith(("_n_labelled", "_fraud_rate")))
