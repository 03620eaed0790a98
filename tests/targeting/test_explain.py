"""Specification of the plain-language reasons (targeting.explain)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.registry import REGISTRY, categorical_columns, feature_columns
from models import risk_model
from models.risk_model import RiskModel, predict_contributions, raw_scores
from targeting import explain
from targeting.explain import TEMPLATES, describe, model_reasons_for, readable_reasons, reason_topic

EXTREMES = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3650.0, 1e-300, -1e-300, 1e9, -1e9, 1e308, -1e308, math.inf, -math.inf, math.nan]


# --------------------------------------------------------------------------- templates


def test_every_registered_feature_has_a_template() -> None:
    assert explain.registered_without_template() == []
    assert set(feature_columns()) <= set(TEMPLATES)


@pytest.mark.parametrize("feature", feature_columns())
def test_no_template_crashes_on_extreme_values(feature: str) -> None:
    for value in EXTREMES:
        text = describe(feature, value)
        assert isinstance(text, str) and text.strip(), (feature, value)
        assert len(text) <= 200, (feature, value, text)
        assert "{" not in text and "nan" not in text.lower().split(), (feature, value, text)


@settings(max_examples=300, deadline=None)
@given(feature=st.sampled_from(feature_columns()), value=st.floats(allow_nan=True, allow_infinity=True))
def test_templates_accept_any_float(feature: str, value: float) -> None:
    assert describe(feature, value).strip()


@pytest.mark.parametrize(
    ("feature", "value", "sentence"),
    [
        ("consignee_days_since_first", 12.0, "Consignee first seen 12 days ago"),
        ("loading_port_finding_rate", 0.041, "Loaded in a port with a high past seizure rate (4.1%)"),
        ("transshipment_dwell_max_hours", 228.0, "Container stayed 9.5 days at a transshipment hub"),
        ("transshipment_dwell_max_hours", -1.0, "No stay at a transshipment hub recorded"),
        ("event_seal_mismatches", 2.0, "Seal number differs between documents and terminal events (2 events)"),
        ("value_per_kg_log_deviation", math.log(0.38), "Declared value per kg 62% below the norm for these goods"),
        ("value_per_kg_log_deviation", math.log(2.5), "Declared value per kg 150% above the norm for these goods"),
        ("value_per_kg_log_deviation", 50.0, "Declared value per kg more than 1,000 times the norm for these goods"),
        ("consignee_n_prior", 0.0, "No earlier manifests for the consignee"),
        ("consignee_heading_n_prior", 0.0, "New commodity for this consignee (no earlier manifests with this HS heading)"),
        ("shipper_days_since_last_finding", 3650.0, "No seizure recorded involving the shipper"),
        ("filing_lead_hours", 18.0, "Manifest filed 18 hours before arrival"),
        ("house_bl_only", 1.0, "House bill of lading: the actual shipper is hidden behind a forwarder (NVOCC)"),
        ("alert_count_party", 1.0, "1 party alert matches"),
        ("hs_heading_code", 0.0, "HS heading new or not declared (not seen in training)"),
    ],
)
def test_sentences_state_the_actual_value(feature: str, value: float, sentence: str) -> None:
    assert describe(feature, value) == sentence


def test_categorical_codes_are_named_with_the_fitted_vocabulary() -> None:
    vocabularies = {"port_of_loading_code": ["BRSSZ", "ECGYE", "NLRTM"]}
    assert describe("port_of_loading_code", 2.0, vocabularies=vocabularies) == "Port of loading ECGYE (risk pattern learned from past inspections)"
    assert describe("port_of_loading_code", 9.0, vocabularies=vocabularies) == "Port of loading (risk pattern learned from past inspections)"


def test_a_feature_without_template_falls_back_to_its_registry_description(monkeypatch) -> None:
    monkeypatch.delitem(explain.TEMPLATES, "reefer")
    assert describe("reefer", 1.0) == REGISTRY["reefer"].description
    assert explain.registered_without_template() == ["reefer"]


# --------------------------------------------------------------------------- a real booster


def synthetic_table(n: int, seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Every registered feature column, random but plausible, and labels driven by a few of them."""
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for name in feature_columns():
        if name in categorical_columns():
            columns[name] = rng.integers(0, 6, n).astype(np.int32)
        elif name.endswith("_rate"):
            columns[name] = rng.beta(1.0, 30.0, n)
        else:
            columns[name] = rng.exponential(10.0, n).round(1)
    columns["event_seal_mismatches"] = rng.poisson(0.3, n).astype(float)
    columns["consignee_days_since_first"] = rng.exponential(300.0, n).round()
    logit = (
        -3.0
        + 2.5 * (columns["event_seal_mismatches"] > 0)
        + 1.5 * (columns["consignee_days_since_first"] < 30)
        + 15.0 * columns["loading_port_finding_rate"]
    )
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    keys = {"manifest_id": [f"M{i:04d}" for i in range(n)], "container_number": [f"TSTU{i:07d}" for i in range(n)]}
    frame = pl.DataFrame({**keys, **columns}).with_columns(pl.col(c).cast(pl.Int32) for c in categorical_columns())
    return frame, labels


@pytest.fixture(scope="module")
def booster():
    train, labels = synthetic_table(1500, seed=1)
    model = RiskModel(n_estimators=60, num_leaves=15, min_child_samples=10, num_threads=1, seed=3, categorical_features=tuple(categorical_columns()))
    return model.fit(train.select(feature_columns()), labels).booster_


@pytest.fixture(scope="module")
def rows() -> pl.DataFrame:
    return synthetic_table(40, seed=2)[0]


def test_contributions_plus_bias_equal_the_raw_score(booster, rows) -> None:
    contributions, bias = predict_contributions(booster, rows)
    assert contributions.shape == (rows.height, len(booster.feature_name()))
    np.testing.assert_allclose(contributions.sum(axis=1) + bias, raw_scores(booster, rows), rtol=1e-9, atol=1e-9)


def test_reasons_are_the_largest_positive_contributions(booster, rows) -> None:
    reasons = readable_reasons(booster, rows, top=3)
    contributions, _ = predict_contributions(booster, rows)
    names = booster.feature_name()
    assert len(reasons) == rows.height
    for i, row_reasons in enumerate(reasons):
        positive = [j for j in np.argsort(-contributions[i], kind="stable") if contributions[i, j] > 0 and reason_topic(names[j]) is not None]
        assert len(row_reasons) <= 3
        assert len(row_reasons) == min(3, len({reason_topic(names[j]) for j in positive}))
        if positive:
            best = names[positive[0]]
            assert row_reasons[0] == describe(best, float(rows[best][i]))


def test_reasons_never_repeat_a_topic_nor_restate_the_watchlist(booster, rows) -> None:
    names = booster.feature_name()
    sentences = {describe(n, 1.0) for n in names if n.startswith("alert_")} | {describe(n, 5.0) for n in names if n.startswith("alert_")}
    for row_reasons in readable_reasons(booster, rows, top=5):
        assert not sentences & set(row_reasons)
        consignee_volume = [r for r in row_reasons if r.startswith("Consignee:")]
        assert len(consignee_volume) <= 1, row_reasons


def test_seizure_rate_reasons_name_the_place_when_the_vocabulary_allows() -> None:
    rows = pl.DataFrame({"origin_country_code": [2], "origin_country_finding_rate": [0.041]})
    from targeting.explain import _named_sentence

    sentence = _named_sentence("origin_country_finding_rate", 0.041, rows, 0, {"origin_country_code": ["BR", "EC"]})
    assert sentence == "Shipped from EC, a country with a high past seizure rate (4.1%)"
    assert _named_sentence("origin_country_finding_rate", 0.041, rows, 0, None) is None


def test_a_seal_mismatch_driven_score_says_so(booster, rows) -> None:
    mismatched = rows.filter(pl.col("event_seal_mismatches") > 0)
    assert mismatched.height > 0
    for row_reasons in readable_reasons(booster, mismatched, top=5):
        assert any(r.startswith("Seal number differs between documents and terminal events") for r in row_reasons)


def test_reasons_do_not_depend_on_column_order(booster, rows) -> None:
    reordered = rows.select(list(reversed(rows.columns)))
    assert readable_reasons(booster, reordered, top=5) == readable_reasons(booster, rows, top=5)


def test_top_bounds_the_number_of_reasons(booster, rows) -> None:
    assert all(r == [] for r in readable_reasons(booster, rows, top=0))
    assert all(len(r) <= 5 for r in readable_reasons(booster, rows, top=5))
    assert readable_reasons(booster, rows.head(0), top=5) == []
    with pytest.raises(ValueError, match="top must be a non-negative integer"):
        readable_reasons(booster, rows, top=-1)


def test_model_reasons_are_computed_for_the_given_rows_only(booster, rows, monkeypatch) -> None:
    seen: list[list[str]] = []
    real = risk_model.predict_contributions

    def recording(booster_, X):
        seen.append(X.get_column("manifest_id").to_list())
        return real(booster_, X)

    monkeypatch.setattr(risk_model, "predict_contributions", recording)
    chosen = ["M0031", "M0002", "M0017"]
    reasons = model_reasons_for(booster, rows, chosen, top=5)
    assert seen == [chosen]
    assert list(reasons) == chosen
    expected = readable_reasons(booster, rows.filter(pl.col("manifest_id") == "M0017"), top=5)[0]
    assert reasons["M0017"] == expected


def test_model_reasons_need_a_feature_row_per_manifest(booster, rows) -> None:
    with pytest.raises(ValueError, match=r"feature rows missing for \['NOPE'\]"):
        model_reasons_for(booster, rows, ["M0001", "NOPE"], top=5)
    assert model_reasons_for(booster, rows, [], top=5) == {}
