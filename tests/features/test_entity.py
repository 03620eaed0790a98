"""Specification of the entity-history features (features.entity) on hand-built histories.

Every scenario runs through :func:`features.pipeline.build_features` on both
paths (batch, and the serving path with an ``EntityState``) and asserts they
agree (see ``feature_samples.features``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from features.entity import FAMILIES, NEVER_DAYS, entity_columns, family_columns, internal_entity_columns
from features.pipeline import build_features, entity_state
from features.registry import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_samples import (  # noqa: E402
    DAY,
    HOUR,
    PRIOR,
    STRENGTH,
    T,
    US,
    candidates,
    features,
    hand_stats,
    history,
    manifest,
    outcome,
)


def other(manifest_id: str, filed_at, **overrides) -> dict:  # noqa: ANN001
    """Another manifest of consignee C1 (shipper S2, another container) filed at ``filed_at``."""
    values = {
        "manifest_id": manifest_id,
        "container_number": "TEXU3070079",
        "shipper_id": "S2",
        "shipper_name": "Exportadora Andina",  # another trader (party resolution would merge a namesake)
        "booked_at": filed_at - DAY,
        "filed_at": filed_at,
        "etd": filed_at + DAY,
        "eta": filed_at + 20 * DAY,
    }
    values.update(overrides)
    return manifest(**values)


def rate(findings: float, inspections: float) -> float:
    return (findings + PRIOR * STRENGTH) / (inspections + STRENGTH)


# ----------------------------------------------------------------------------- manifest counts and windows
@pytest.fixture(scope="module")
def windowed():
    own = manifest()
    rows = [
        other("A", T - 30 * DAY),  # first instant of the 30-day window: counts
        other("B", T - 30 * DAY - US),  # just outside 30 d, inside 90 d
        other("C", T - US),  # last instant before T: counts
        other("D", T),  # filed exactly at the decision time: not yet known
        other("E", T + DAY),  # future
        other("F", T - 400 * DAY),  # all-time only
        other("G", T - 365 * DAY),  # first instant of the 365-day window
    ]
    return features(candidates(own), history([own, *rows]))


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("consignee_n_prior", 5.0),  # A B C F G
        ("consignee_n_30d", 2.0),  # A C: [T - 30 d, T), own manifest excluded
        ("consignee_n_90d", 3.0),  # A B C
        ("consignee_n_365d", 4.0),  # A B C G
        ("consignee_days_since_first", 400.0),  # F
        ("shipper_n_prior", 0.0),  # only the candidate itself
        ("shipper_n_30d", 0.0),
        ("shipper_n_365d", 0.0),
        ("shipper_days_since_first", 15.0),  # own filing counts for "first seen"
        ("pair_n_prior", 0.0),
        ("pair_n_365d", 0.0),
        ("pair_days_since_first", 15.0),
        ("lane_n_prior", 5.0),
        ("lane_n_30d", 2.0),
        ("hs_origin_n_prior", 5.0),
        ("hs_origin_n_365d", 4.0),
        ("consignee_heading_n_prior", 5.0),
        ("consignee_route_n_prior", 5.0),
        ("lane_route_n_prior", 5.0),
    ],
)
def test_manifest_counts_use_only_other_manifests_filed_strictly_before_decision_time(windowed: pl.DataFrame, column: str, expected: float) -> None:
    assert windowed[column].to_list() == [expected]


def test_candidate_filed_after_decision_time_is_not_yet_seen() -> None:
    own = manifest(filed_at=T + 2 * HOUR)
    feats = features(candidates(own), history([own]))
    assert feats["consignee_days_since_first"].item() == -1.0
    assert feats["consignee_n_prior"].item() == 0.0
    assert feats["consignee_n_30d"].item() == 0.0


def test_days_since_first_is_fractional_days() -> None:
    own = manifest(filed_at=T - 2 * DAY - 12 * HOUR)
    feats = features(candidates(own), history([own]))
    assert feats["consignee_days_since_first"].item() == 2.5


def test_route_novelty_keys_separate_routes_and_headings() -> None:
    own = manifest(transshipment_ports=["PAMIT"])
    rows = [other("A", T - 5 * DAY), other("B", T - 4 * DAY, hs_code="090111"), other("C", T - 3 * DAY, transshipment_ports=["PAMIT"])]
    feats = features(candidates(own), history([own, *rows]))
    assert feats["consignee_n_prior"].item() == 3.0
    assert feats["consignee_heading_n_prior"].item() == 2.0  # A and C ship heading 0803
    assert feats["consignee_route_n_prior"].item() == 1.0  # only C came via PAMIT
    assert feats["lane_route_n_prior"].item() == 1.0
    assert feats["lane_n_prior"].item() == 3.0


# ----------------------------------------------------------------------------- inspections, findings, smoothed rates
@pytest.fixture(scope="module")
def inspected():
    own = manifest()
    rows = [other("M2", T - 40 * DAY), other("M3", T - 30 * DAY), other("M4", T - 20 * DAY, container_number="CSQU3054383")]
    results = [
        outcome("M2", T - 20 * DAY, "NO_FINDING"),
        outcome("M3", T - 10 * DAY, "DISCREPANCY"),
        outcome("M4", T - 2 * DAY - 12 * HOUR, "SEIZURE"),
        outcome("M2", T, "SEIZURE", exam_type="NII"),  # recorded exactly at the decision time: not yet known
        outcome("M3", T + DAY, "SEIZURE", exam_type="NII"),  # future
        outcome("M1", T + 3 * HOUR, "SEIZURE"),  # the candidate's own (future) result: the label
    ]
    return features(candidates(own), history([own, *rows], outcome_rows=results))


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("consignee_n_inspections", 3.0),
        ("consignee_n_findings", 1.0),
        ("consignee_finding_rate", rate(1, 3)),  # (1 + 0.05 x 20) / (3 + 20) = 2/23
        ("consignee_days_since_last_finding", 2.5),
        ("shipper_n_inspections", 0.0),
        ("shipper_finding_rate", PRIOR),  # no inspections: the prior
        ("shipper_days_since_last_finding", NEVER_DAYS),
        ("pair_n_inspections", 0.0),
        ("container_n_inspections", 1.0),  # M4 used the same container
        ("container_n_findings", 1.0),
        ("container_finding_rate", rate(1, 1)),
        ("container_days_since_last_finding", 2.5),
        ("loading_port_n_inspections", 3.0),
        ("loading_port_n_findings", 1.0),
        ("origin_country_finding_rate", rate(1, 3)),
        ("lane_n_findings", 1.0),
        ("hs_origin_n_inspections", 3.0),
        ("hub_n_inspections", 0.0),  # direct route: no hubs
        ("hub_finding_rate", PRIOR),
    ],
)
def test_outcomes_count_only_when_recorded_strictly_before_decision_time(inspected: pl.DataFrame, column: str, expected: float) -> None:
    assert inspected[column].item() == pytest.approx(expected, rel=1e-12)


def test_finding_rate_uses_the_fitted_prior_and_strength() -> None:
    own = manifest()
    rows = [other("M2", T - 40 * DAY)]
    results = [outcome("M2", T - 5 * DAY, "SEIZURE")]
    hist = history([own, *rows], outcome_rows=results)
    feats = features(candidates(own), hist, hand_stats(prior_finding_rate=0.2, prior_strength=4.0))
    assert feats["consignee_finding_rate"].item() == pytest.approx((1 + 0.2 * 4.0) / (1 + 4.0))


def test_days_since_last_finding_is_capped_at_ten_years() -> None:
    own = manifest()
    old = other("M0", T - 5200 * DAY)
    feats = features(candidates(own), history([own, old], outcome_rows=[outcome("M0", T - 5000 * DAY, "SEIZURE")]))
    assert feats["consignee_days_since_last_finding"].item() == NEVER_DAYS
    assert feats["consignee_n_findings"].item() == 1.0


def test_hub_features_sum_counts_and_take_the_highest_rate_over_the_route_hubs() -> None:
    own = manifest(transshipment_ports=["PAMIT", "ESALG"])
    direct = manifest(manifest_id="D1", container_number="TEXU3070079", consignee_id="C9")
    h1 = other("H1", T - 40 * DAY, consignee_id="C7", transshipment_ports=["PAMIT"])
    h2 = other("H2", T - 40 * DAY, consignee_id="C8", transshipment_ports=["ESALG"])
    results = [
        outcome("H1", T - 9 * DAY, "NO_FINDING"),
        outcome("H1", T - 8 * DAY, "SEIZURE", exam_type="NII"),
        outcome("H2", T - 7 * DAY, "SEIZURE"),
        outcome("H2", T + DAY, "SEIZURE", exam_type="NII"),  # future: ignored
    ]
    feats = features(candidates(own, direct), history([own, direct, h1, h2], outcome_rows=results))
    assert feats["hub_n_inspections"].to_list() == [3.0, 0.0]
    assert feats["hub_n_findings"].to_list() == [2.0, 0.0]
    assert feats["hub_finding_rate"].to_list() == pytest.approx([max(rate(1, 2), rate(1, 1)), PRIOR])


def test_rows_with_different_decision_times_see_different_histories() -> None:
    own = manifest()
    rows = [other("A", T - 10 * DAY), other("B", T - 5 * DAY)]
    cands = pl.concat([candidates(own, at=T - 7 * DAY), candidates(own, at=T - 5 * DAY), candidates(own, at=T - 5 * DAY + US), candidates(own)])
    feats = features(cands, history([own, *rows]))
    assert feats["consignee_n_prior"].to_list() == [1.0, 1.0, 2.0, 2.0]
    # the candidate was filed at T - 15 d: before that it is not part of its own history
    assert feats["consignee_days_since_first"].to_list() == [8.0, 10.0, pytest.approx(10.0 + 1e-6 / 86_400), 15.0]


# ----------------------------------------------------------------------------- structure and the serving path's precondition
def test_every_family_column_is_registered_as_an_entity_feature() -> None:
    assert entity_columns() == [c for f in FAMILIES if f.export for c in family_columns(f)]
    for column in entity_columns():
        assert REGISTRY[column].family == "entity"
        assert "decision_at" in REGISTRY[column].description


def test_internal_hierarchy_counts_are_produced_but_never_registered_as_model_inputs() -> None:
    internal = internal_entity_columns()
    assert "origin_region_n_inspections" in internal and "region_family_n_findings" in internal
    assert not set(internal) & set(REGISTRY)


def test_serving_state_built_without_a_candidate_is_refused() -> None:
    own = manifest()
    hist = history([other("A", T - 10 * DAY)])
    with pytest.raises(ValueError, match="candidates filed before the entity state's time are missing from its history: M1"):
        build_features(candidates(own), hist, hand_stats(), state=entity_state(hist, T))


def test_serving_state_for_another_time_is_refused() -> None:
    own = manifest()
    hist = history([own])
    with pytest.raises(ValueError, match="entity state is for 2025-03-09T00:00:00"):
        build_features(candidates(own), hist, hand_stats(), state=entity_state(hist, T - DAY))


def test_candidate_filed_after_the_state_time_need_not_be_in_its_history() -> None:
    own = manifest(filed_at=T + HOUR)
    hist = history([other("A", T - 10 * DAY)])
    served = build_features(candidates(own), hist, hand_stats(), state=entity_state(hist, T))
    batch = build_features(candidates(own), hist, hand_stats())
    assert served.equals(batch)
