"""Specification of the fitted feature statistics (features.stats): fitting, the JSON artifact and its round trip."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.history import History, with_derived_columns
from features.pipeline import build_features
from features.stats import CATEGORICAL_SOURCES, MIN_NORM_COUNT, MIN_VOCAB_COUNT, PRIOR_STRENGTH, STATS_FORMAT, FeatureStats, fit_stats
from targeting.sim.world import WorldConfig, simulate_world

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_samples import DAY, T, manifest, manifests, outcome, outcomes  # noqa: E402


@pytest.fixture(scope="module")
def world():
    return simulate_world(WorldConfig(days=20, containers_per_day=150, seed=3))


@pytest.fixture(scope="module")
def fitted(world) -> FeatureStats:  # noqa: ANN001
    return fit_stats(with_derived_columns(world.manifests.lazy()).collect(), world.outcomes)


def test_json_round_trip_gives_identical_statistics_and_features(world, fitted: FeatureStats, tmp_path: Path) -> None:  # noqa: ANN001
    path = fitted.save(tmp_path / "stats.json")
    loaded = FeatureStats.load(path)
    assert loaded == fitted
    assert loaded.sha256() == fitted.sha256()
    assert path.read_text() == loaded.to_json()  # saving again is byte-identical
    hist = History.from_frames(world.manifests, world.events, world.outcomes, world.alerts)
    cands = world.manifests.tail(300).with_columns(pl.col("eta").dt.truncate("1d").alias("decision_at"))
    assert_frame_equal(build_features(cands, hist, loaded), build_features(cands, hist, fitted))


def test_artifact_is_versioned_plain_json(fitted: FeatureStats) -> None:
    data = json.loads(fitted.to_json())
    assert data["format"] == STATS_FORMAT == "ccp-feature-stats/1"
    assert set(data) == {
        "vocabularies", "heading_norms", "chapter_norms", "global_norm", "tare_by_type",
        "prior_finding_rate", "prior_strength", "fitted_on", "format", "hierarchy_strengths", "anomaly_norms",
    }  # fmt: skip
    assert set(data["vocabularies"]) == set(CATEGORICAL_SOURCES)
    assert all(v == sorted(v) for v in data["vocabularies"].values())
    assert all(math.isfinite(x) for norms in data["heading_norms"].values() for x in norms.values())


def test_statistics_saved_before_the_hierarchies_and_anomaly_norms_still_load(fitted: FeatureStats) -> None:
    data = json.loads(fitted.to_json())
    del data["hierarchy_strengths"], data["anomaly_norms"]
    old = FeatureStats.from_json(json.dumps(data))
    assert old.hierarchy_strengths == {} and old.anomaly_norms == {}


def test_fitted_statistics_hold_a_strength_per_hierarchy_level_and_anomaly_norms(fitted: FeatureStats) -> None:
    from features.hierarchy import LEVEL_KEYS, MAX_STRENGTH, MIN_STRENGTH

    assert set(fitted.hierarchy_strengths) == set(LEVEL_KEYS)
    assert all(MIN_STRENGTH <= s <= MAX_STRENGTH for s in fitted.hierarchy_strengths.values())
    assert set(fitted.anomaly_norms) == {"value", "mass", "packing", "transit"}


@pytest.mark.parametrize("fmt", ["ccp-feature-stats/0", "ccp-feature-stats/2", None])
def test_unknown_format_is_refused(fitted: FeatureStats, fmt: str | None) -> None:
    data = json.loads(fitted.to_json())
    if fmt is None:
        del data["format"]
    else:
        data["format"] = fmt
    with pytest.raises(ValueError, match=r"unsupported feature statistics format .*; expected 'ccp-feature-stats/1'"):
        FeatureStats.from_json(json.dumps(data))


def test_fit_counts_inspections_for_the_prior_and_keeps_frequent_values_only() -> None:
    rows = [manifest(manifest_id=f"M{i}", carrier="MAEU" if i < MIN_VOCAB_COUNT else "ONEY") for i in range(MIN_VOCAB_COUNT + 1)]
    frame = with_derived_columns(manifests(*rows).lazy()).collect()
    results = outcomes(outcome("M0", T - DAY, "SEIZURE"), outcome("M1", T - DAY, "NO_FINDING"), outcome("M2", T - DAY, "DISCREPANCY"))
    stats = fit_stats(frame, results)
    assert stats.vocabularies["carrier_code"] == ["MAEU"]  # ONEY seen once: below the minimum count
    assert stats.prior_finding_rate == pytest.approx((1 + 1) / (3 + 100))
    assert stats.prior_strength == PRIOR_STRENGTH
    assert stats.heading_norms == {}  # fewer than MIN_NORM_COUNT rows per heading
    assert MIN_NORM_COUNT > len(rows)
    assert stats.global_norm["log_vpk"] == pytest.approx(0.0)  # 20,000 USD for 20,000 kg
    assert stats.fitted_on == {"manifests": len(rows), "outcomes": 3, "findings": 1}


def test_fit_on_empty_outcomes_gives_a_small_positive_prior(fitted: FeatureStats, world) -> None:  # noqa: ANN001
    stats = fit_stats(with_derived_columns(world.manifests.lazy()).collect(), world.outcomes.clear())
    assert stats.prior_finding_rate == pytest.approx(1 / 100)
    assert stats.vocabularies == fitted.vocabularies
