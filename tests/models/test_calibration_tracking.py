"""Specification of the calibrator's life cycle: fitted at training time, logged inside the model version, the champion's own loaded at scoring."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from features.history import History
from models.calibration import BANDS, Calibrator
from models.tracking import MODEL_NAME, configure, load_version, log_training_run, set_champion
from models.workflow import lake_digest, lineage, write_artifacts
from targeting.champion import ChampionStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_lake import fresh_store  # noqa: E402


@pytest.fixture(scope="module")
def registry(tmp_path_factory, mlflow_template, trained, small_world, split):  # noqa: ANN001, ANN201
    """Version 1: the session's training result; version 2: the same booster with another calibrator. Version 2 is champion."""
    store = fresh_store(mlflow_template, tmp_path_factory.mktemp("calibration-tracking"))
    client = configure(store)
    data = lineage(small_world.lake, History.from_lake(small_world.lake), split)
    other = dataclasses.replace(trained, calibrator=Calibrator("shift", {"a": 1.0, "b": 1.5}, "a hand-made calibrator", 10, 1))
    versions = []
    for result in (trained, other):
        out = tmp_path_factory.mktemp("artifacts")
        write_artifacts(result, out, data, result.model.model_sha256())
        logged = log_training_run(result, client=client, data_lineage=data, dataset_digest=lake_digest(small_world.lake), artifacts_dir=out)
        versions.append(logged)
    set_champion(client, versions[1].version, reason="test")
    return store, versions, other.calibrator, out


def test_training_fits_a_calibrator_on_the_validation_period_and_measures_it_on_the_test_streams(trained) -> None:  # noqa: ANN001
    calibrator = trained.calibrator
    assert calibrator is not None and calibrator.fitted_on.startswith(("validation period, inspected rows", "validation and test periods, inspected rows"))
    assert calibrator.positives > 0 and calibrator.rows > calibrator.positives
    assert calibrator.measures["chosen"] == calibrator.method
    assert {"labelled", "oracle"} <= set(trained.calibration)
    oracle = trained.calibration["oracle"]
    assert oracle["uncalibrated"]["n"] == oracle["calibrated"]["n"] == trained.test_rows.height
    assert [row["band"] for row in oracle["bands"]] == list(BANDS)
    assert sum(row["rows"] for row in oracle["bands"]) == trained.test_rows.height
    probabilities = calibrator.predict(np.sort(trained.test_scores))
    assert np.all(np.diff(probabilities) >= 0)  # calibration never changes the ranking


def test_the_calibrator_is_logged_inside_the_model_version_with_its_hash_and_metrics(registry, trained) -> None:  # noqa: ANN001
    store, versions, _, _ = registry
    client = configure(store)
    mv = client.get_model_version(MODEL_NAME, versions[0].version)
    text = trained.calibrator.to_json()
    assert mv.tags["calibrator_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert mv.tags["calibrator_method"] == trained.calibrator.method
    loaded = load_version(client, versions[0].version)
    assert loaded.calibrator_json == text and Calibrator.from_json(loaded.calibrator_json) == trained.calibrator
    metrics = client.get_run(versions[0].run_id).data.metrics
    assert metrics["calibration/oracle/calibrated/brier"] == pytest.approx(trained.calibration["oracle"]["calibrated"]["brier"])
    assert "calibration/oracle/uncalibrated/ece" in metrics


def test_the_run_holds_the_reliability_plots_of_the_random_slice_and_the_oracle_and_calibration_json(registry, trained, tmp_path) -> None:  # noqa: ANN001
    import mlflow

    store, versions, _, _ = registry
    configure(store)
    local = Path(mlflow.artifacts.download_artifacts(run_id=versions[0].run_id, dst_path=str(tmp_path)))
    names = {p.name for p in local.iterdir()}
    assert {"reliability_oracle.png", "reliability_labelled.png", "calibration.json"} <= names
    if trained.test_rows["random_slice"].any():
        assert "reliability_random_slice.png" in names
    report = json.loads((local / "calibration.json").read_text())
    assert report["calibrator"]["method"] == trained.calibrator.method and "oracle" in report["test"]
    assert "## Calibrated risk" in (local / "model_card.md").read_text()


def test_the_champion_loaded_for_scoring_carries_its_own_calibrator_and_follows_the_alias(registry, trained, tmp_path) -> None:  # noqa: ANN001
    store, versions, other, _ = registry
    champions = ChampionStore(store, tmp_path / "cache")
    assert champions.champion().version == versions[1].version and champions.champion().calibrator == other
    set_champion(configure(store), versions[0].version, reason="back to version 1")
    try:
        assert ChampionStore(store, tmp_path / "cache2").champion().calibrator == trained.calibrator
        # the registry unreachable: the verified local copy serves the same calibrator
        offline = ChampionStore(f"sqlite:///{tmp_path / 'missing' / 'nowhere' / 'mlflow.db'}", tmp_path / "cache2")
        local = offline.champion()
        assert local.source == "local-copy" and local.calibrator == trained.calibrator
    finally:
        set_champion(configure(store), versions[1].version, reason="test")


def test_a_calibrator_changed_after_registration_is_refused(registry, tmp_path) -> None:  # noqa: ANN001
    store, versions, _, _ = registry
    client = configure(store)
    client.set_model_version_tag(MODEL_NAME, versions[1].version, "calibrator_sha256", "0" * 64)
    try:
        with pytest.raises(ValueError, match=f"model version {versions[1].version}: its calibrator does not match the sha256 recorded at registration"):
            load_version(client, versions[1].version)
    finally:
        bundled = Calibrator("shift", {"a": 1.0, "b": 1.5}, "a hand-made calibrator", 10, 1).to_json()
        client.set_model_version_tag(MODEL_NAME, versions[1].version, "calibrator_sha256", hashlib.sha256(bundled.encode()).hexdigest())
    assert Calibrator.from_json(load_version(client, versions[1].version).calibrator_json).params == {"a": 1.0, "b": 1.5}


def test_a_version_registered_without_a_calibrator_loads_none(registry, trained, small_world, split, tmp_path) -> None:  # noqa: ANN001
    store, _, _, out = registry
    client = configure(store)
    data = lineage(small_world.lake, History.from_lake(small_world.lake), split)
    bare = log_training_run(dataclasses.replace(trained, calibrator=None), client=client, data_lineage=data, dataset_digest="0" * 64, artifacts_dir=out)
    assert load_version(client, bare.version).calibrator_json is None
    assert "calibrator_sha256" not in client.get_model_version(MODEL_NAME, bare.version).tags
