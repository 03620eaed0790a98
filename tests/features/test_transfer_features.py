"""Specification of the features that transfer to a new modus operandi, on hand-built histories.

- reference hierarchies (features.hierarchy): UN M49 regions of a port's country, HS sections and commodity families;
- empirical-Bayes strengths: groups that really differ are smoothed less than groups that do not;
- hierarchical priors (features.priors): a never-inspected origin or commodity inherits its neighbours' rate, by the
  documented formula, on both feature paths; canary: an outcome recorded at or after the decision time changes nothing;
- change in a known trader's behaviour (entity families consignee_origin, consignee_loading_port, consignee_family,
  shipper_family): only other manifests filed strictly before the decision time count;
- anomaly score (features.anomaly): robust norms fitted without outcomes; far from the norm scores high, usual scores low.
"""

from __future__ import annotations

import math
import statistics
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from features.anomaly import MIN_NORM_COUNT, fit_anomaly_norms
from features.hierarchy import commodity_family, fit_strengths, hs_section, origin_continent, origin_region, strength
from features.pipeline import build_features

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_samples import DAY, PRIOR, STRENGTH, T, candidates, features, hand_stats, history, manifest, manifests, outcome  # noqa: E402


def other(manifest_id: str, days_before: float, **overrides) -> dict:
    """Another manifest (another container, shipper S2) filed ``days_before`` the decision time."""
    filed = T - days_before * DAY
    values = {"manifest_id": manifest_id, "container_number": "TEXU3070079", "shipper_id": "S2", "shipper_name": "Exportadora Andina",
              "booked_at": filed - DAY, "filed_at": filed, "etd": filed + DAY, "eta": filed + 20 * DAY}
    values.update(overrides)
    return manifest(**values)


def smoothed(findings: float, inspections: float, parent: float, s: float = STRENGTH) -> float:
    return (findings + s * parent) / (inspections + s)


# ----------------------------------------------------------------------------- reference hierarchies
def test_port_country_maps_to_its_un_m49_subregion_and_continent() -> None:
    ports = pl.DataFrame({"port_of_loading": ["CLSAI", "ECGYE", "ZADUR", "NLRTM", "XXABC"]})
    out = ports.select(origin_region(), origin_continent())
    assert out["origin_region"].to_list() == ["South America", "South America", "Southern Africa", "Western Europe", "ZZ"]
    assert out["origin_continent"].to_list() == ["America", "America", "Africa", "Europe", "ZZ"]


def test_hs_section_and_commodity_family_follow_the_harmonized_system_and_the_reefer_flag() -> None:
    rows = pl.DataFrame({"hs_code": ["080390", "220421", "020230", "293299", "9701", "ab12"], "reefer": [True, False, True, False, None, False]})
    out = rows.select(hs_section(), commodity_family())
    assert out["hs_section"].to_list() == ["II", "IV", "I", "VI", "XXI", "?"]
    assert out["commodity_family"].to_list() == ["II-R", "IV", "I-R", "VI", "XXI", "?"]


def test_strength_is_small_when_groups_really_differ_and_maximal_when_they_do_not() -> None:
    assert strength([200, 200, 200], [0, 0, 60], default=20.0) < 5.0
    assert strength([200, 200, 200], [2, 2, 2], default=20.0) == 1000.0
    assert strength([200, 200], [0, 60], default=20.0) == 20.0  # too few groups: the default
    assert strength([200, 200, 200], [0, 0, 0], default=20.0) == 20.0  # nothing found: the default


def test_fit_strengths_reads_each_levels_groups_from_the_inspected_manifests() -> None:
    ids = [f"M{i}" for i in range(60)]
    frame = pl.DataFrame({"manifest_id": ids, "port_of_loading": ["A", "B", "C"] * 20, "country": ["X"] * 60})
    outs = pl.DataFrame({"manifest_id": ids, "result": ["SEIZURE" if i % 3 == 2 else "NO_FINDING" for i in range(60)]})
    fitted = fit_strengths(frame, outs, {"port": ("port_of_loading",), "country": ("country",)}, default=20.0)
    assert fitted["port"] == 1.0  # port C finds every time: ports differ as much as they can
    assert fitted["country"] == 20.0  # one country: nothing to compare


# ----------------------------------------------------------------------------- hierarchical priors
@pytest.fixture(scope="module")
def seized_in_ecuador():
    """One seizure, 5 days before T, of a reefer banana shipment loaded in Guayaquil (Ecuador, South America)."""
    seized = other("S", 30, port_of_loading="ECGYE", place_of_receipt="ECGYE", reefer=True, consignee_id="C9")
    return seized, outcome("S", inspected_at=T - 5 * DAY, result="SEIZURE", container_number="TEXU3070079")


def test_new_origin_inherits_its_regions_rate_by_the_documented_formula(seized_in_ecuador) -> None:  # noqa: ANN001
    seized, found = seized_in_ecuador
    chile = manifest(port_of_loading="CLSAI", place_of_receipt="CLSAI", hs_code="080610", reefer=True)
    feats = features(candidates(chile), history([chile, seized], outcome_rows=[found]))
    continent = smoothed(1, 1, PRIOR)
    region = smoothed(1, 1, continent)
    # Chile and San Antonio never inspected: the country and the port take the region's rate unchanged
    assert feats["origin_prior_rate"].item() == pytest.approx(region)
    # grapes (0806) never inspected; bananas share chapter 08 and the family II-R (section II, reefer)
    family = smoothed(1, 1, PRIOR)
    chapter = smoothed(1, 1, family)
    assert feats["commodity_prior_rate"].item() == pytest.approx(chapter)  # heading 0806 and subheading 080610 never inspected
    # the flow hierarchy: (heading, country) never inspected -> (region, family) -> region -> training prior
    assert feats["flow_prior_rate"].item() == pytest.approx(smoothed(1, 1, smoothed(1, 1, PRIOR)))


def test_origin_far_from_any_seizure_keeps_the_training_prior(seized_in_ecuador) -> None:  # noqa: ANN001
    seized, found = seized_in_ecuador
    rotterdam = manifest(port_of_loading="NLRTM", place_of_receipt="NLRTM", port_of_discharge="BEANR", place_of_delivery="BEANR")
    feats = features(candidates(rotterdam), history([rotterdam, seized], outcome_rows=[found]))
    assert feats["origin_prior_rate"].item() == pytest.approx(PRIOR)


def test_priors_use_fitted_strengths_per_level(seized_in_ecuador) -> None:  # noqa: ANN001
    seized, found = seized_in_ecuador
    chile = manifest(port_of_loading="CLSAI", place_of_receipt="CLSAI")
    stats = hand_stats(hierarchy_strengths={"origin_continent": 1000.0, "origin_region": 1.0})
    feats = features(candidates(chile), history([chile, seized], outcome_rows=[found]), stats)
    continent = smoothed(1, 1, PRIOR, 1000.0)
    assert feats["origin_prior_rate"].item() == pytest.approx(smoothed(1, 1, continent, 1.0))


@pytest.mark.parametrize(("offset", "changes"), [(timedelta(0), False), (DAY, False), (-timedelta(microseconds=1), True)])
def test_canary_an_outcome_recorded_at_or_after_the_decision_time_changes_no_prior(seized_in_ecuador, offset, changes) -> None:  # noqa: ANN001
    seized, _ = seized_in_ecuador
    chile = manifest(port_of_loading="CLSAI", place_of_receipt="CLSAI", reefer=True)
    base = features(candidates(chile), history([chile, seized]))
    late = outcome("S", inspected_at=T + offset, result="SEIZURE", container_number="TEXU3070079")
    after = features(candidates(chile), history([chile, seized], outcome_rows=[late]))
    columns = ["origin_prior_rate", "commodity_prior_rate", "flow_prior_rate"]
    assert (base.select(columns).rows() != after.select(columns).rows()) is changes


# ----------------------------------------------------------------------------- change in a known trader's behaviour
def test_known_consignee_from_a_new_origin_and_kind_of_goods_has_no_earlier_such_manifests() -> None:
    usual = [other(f"U{i}", 10 + i) for i in range(3)]  # C1: bananas (HS II, dry) from Colombia
    moved = manifest(port_of_loading="CLSAI", place_of_receipt="CLSAI", hs_code="220421", goods_description="WINE")
    feats = features(candidates(moved), history([moved, *usual]))
    assert feats["consignee_n_prior"].item() == 3.0
    assert feats["consignee_origin_n_prior"].item() == 0.0
    assert feats["consignee_loading_port_n_prior"].item() == 0.0
    assert feats["consignee_family_n_prior"].item() == 0.0
    assert feats["shipper_family_n_prior"].item() == 0.0
    same = features(candidates(manifest()), history([manifest(), *usual]))
    assert same.select("consignee_origin_n_prior", "consignee_loading_port_n_prior", "consignee_family_n_prior").row(0) == (3.0, 3.0, 3.0)


def test_behaviour_counts_ignore_manifests_filed_at_or_after_the_decision_time() -> None:
    later = [other("L1", 0), other("L2", -2)]  # filed exactly at T and after it
    feats = features(candidates(manifest()), history([manifest(), *later]))
    assert feats.select("consignee_origin_n_prior", "consignee_family_n_prior").row(0) == (0.0, 0.0)


# ----------------------------------------------------------------------------- anomaly score
def _norm_rows(n: int) -> pl.DataFrame:
    return manifests(*(manifest(manifest_id=f"N{i}", declared_value=20_000.0 * (1 + 0.01 * (i % 5)), gross_mass_kg=20_000.0 + 10 * i) for i in range(n)))


def test_anomaly_norms_are_robust_medians_fitted_without_outcomes() -> None:
    rows = _norm_rows(MIN_NORM_COUNT)
    norms = fit_anomaly_norms(rows)
    expected = statistics.median(math.log(v / m) for v, m in zip(rows["declared_value"], rows["gross_mass_kg"]))
    assert norms["value"]["hs6"]["080390"][0] == pytest.approx(expected)
    assert set(norms) == {"value", "mass", "packing", "transit"}
    assert fit_anomaly_norms(_norm_rows(MIN_NORM_COUNT - 1))["value"]["hs6"] == {}  # too few rows: falls back


def test_far_from_the_norm_scores_high_and_usual_scores_low() -> None:
    stats = hand_stats(anomaly_norms=fit_anomaly_norms(_norm_rows(40)))
    usual = manifest(manifest_id="A", declared_value=20_400.0)
    cheap = manifest(manifest_id="B", declared_value=2_000.0, gross_mass_kg=26_000.0, container_number="TEXU3070079")
    feats = build_features(candidates(usual, cheap), history([usual, cheap]), stats)
    low, high = feats["anomaly_score"].to_list()
    assert low < 1.0 < 5.0 < high


def test_anomaly_score_is_zero_without_fitted_norms() -> None:
    feats = build_features(candidates(manifest(declared_value=1.0)), history([manifest(declared_value=1.0)]), hand_stats())
    assert feats["anomaly_score"].item() == 0.0


def test_transfer_features_are_computed_but_not_inputs_of_the_default_model() -> None:
    # measured not to help on the drift benchmark (docs/evaluation.md, "Feature ablation"): computed for ablations, off by default
    from features.registry import OFF_BY_DEFAULT, computed_columns, feature_columns

    transfer = {"origin_prior_rate", "commodity_prior_rate", "flow_prior_rate", "anomaly_score", "consignee_origin_n_prior", "consignee_loading_port_n_prior", "consignee_family_n_prior", "shipper_family_n_prior"}
    assert OFF_BY_DEFAULT == transfer
    assert transfer <= set(computed_columns()) and not transfer & set(feature_columns())
    assert feature_columns() == [c for c in computed_columns() if c not in transfer]
