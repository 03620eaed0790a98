"""Specification of the integrity norms' life cycle: fitted at training time on the training rows, logged inside the model
version with their sha256, checked at load, carried by the champion and its offline copy."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import pytest

from features.history import History
from features.integrity import COMPONENT_COLUMNS, IntegrityNorms
from models.tracking import MODEL_NAME, configure, load_version, log_training_run, set_champion
from models.workflow import lake_digest, lineage, write_artifacts
from targeting.champion import ChampionStore
from targeting.engine import ModelUnavailableError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_lake import fresh_store  # noqa: E402


@pytest.fixture(scope="module")
def registry(tmp_path_factory, mlflow_template, trained, small_world, split):  # noqa: ANN001, ANN201
    """Version 1: the session's training result (with norms, champion); version 2: the same model registered without norms."""
    store = fresh_store(mlflow_template, tmp_path_factory.mktemp("integrity-tracking"))
    client = configure(store)
    data = lineage(small_world.lake, History.from_lake(small_world.lake), split)
    out = tmp_path_factory.mktemp("artifacts")
    write_artifacts(trained, out, data, trained.model.model_sha256())
    with_norms = log_training_run(trained, client=client, data_lineage=data, dataset_digest=lake_digest(small_world.lake), artifacts_dir=out)
    bare = log_training_run(dataclasses.replace(trained, integrity_norms=None), client=client, data_lineage=data, dataset_digest="0" * 64, artifacts_dir=out)
    set_champion(client, with_norms.version, reason="test")
    return store, with_norms, bare


def test_training_fits_integrity_norms_on_the_training_rows_only(trained) -> None:  # noqa: ANN001
    norms = trained.integrity_norms
    assert norms is not None and set(norms.references) == set(COMPONENT_COLUMNS)
    every_row = norms.references["origin_dwell_hours"][None]
    assert 0 < every_row.rows <= trained.counts["train_rows"]  # known dwell values of training rows, never validation or test rows


def test_the_norms_are_logged_inside_the_model_version_with_their_sha256_and_load_back_identical(registry, trained) -> None:  # noqa: ANN001
    store, with_norms, _ = registry
    client = configure(store)
    text = trained.integrity_norms.to_json()
    assert client.get_model_version(MODEL_NAME, with_norms.version).tags["integrity_norms_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    loaded = load_version(client, with_norms.version)
    assert loaded.integrity_norms_json == text and IntegrityNorms.from_json(loaded.integrity_norms_json).to_json() == text


def test_norms_changed_after_registration_are_refused_at_load(registry, trained) -> None:  # noqa: ANN001
    store, with_norms, _ = registry
    client = configure(store)
    good = client.get_model_version(MODEL_NAME, with_norms.version).tags["integrity_norms_sha256"]
    client.set_model_version_tag(MODEL_NAME, with_norms.version, "integrity_norms_sha256", "0" * 64)
    try:
        with pytest.raises(ValueError, match=f"model version {with_norms.version}: its integrity norms do not match the sha256 recorded at registration"):
            load_version(client, with_norms.version)
    finally:
        client.set_model_version_tag(MODEL_NAME, with_norms.version, "integrity_norms_sha256", good)
    assert load_version(client, with_norms.version).integrity_norms_json == trained.integrity_norms.to_json()


def test_a_version_registered_without_norms_loads_none_unless_its_tag_says_they_should_be_there(registry) -> None:  # noqa: ANN001
    store, _, bare = registry
    client = configure(store)
    assert "integrity_norms_sha256" not in client.get_model_version(MODEL_NAME, bare.version).tags
    assert load_version(client, bare.version).integrity_norms_json is None
    client.set_model_version_tag(MODEL_NAME, bare.version, "integrity_norms_sha256", "1" * 64)
    try:
        with pytest.raises(ValueError, match=f"model version {bare.version}: its integrity norms are missing from the model artefact"):
            load_version(client, bare.version)
    finally:
        client.delete_model_version_tag(MODEL_NAME, bare.version, "integrity_norms_sha256")


def test_the_champion_and_its_verified_offline_copy_carry_the_norms_and_a_tampered_copy_is_refused(registry, trained, tmp_path) -> None:  # noqa: ANN001
    store, with_norms, _ = registry
    text = trained.integrity_norms.to_json()
    assert ChampionStore(store, tmp_path / "cache").champion().integrity_norms.to_json() == text
    offline = ChampionStore(f"sqlite:///{tmp_path / 'missing' / 'nowhere' / 'mlflow.db'}", tmp_path / "cache")
    local = offline.champion()
    assert local.source == "local-copy" and local.integrity_norms.to_json() == text
    copy = tmp_path / "cache" / with_norms.version / "integrity_norms.json"
    data = json.loads(copy.read_text())
    data["min_group"] = 1
    copy.write_text(json.dumps(data))
    with pytest.raises(ModelUnavailableError, match="failed its sha256 check"):
        offline.champion()
