"""Specification of ``targeting.champion.ChampionStore``: the registry first, a verified local copy when it is unreachable.

A tiny simulated world is ingested and two model versions are trained and registered once for
the module in a real MLflow SQLite store; version 1 is promoted first.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from features.data.ingest import ingest
from features.data.lake import Lake
from models.dataset import TimeSplit
from models.tracking import configure, set_champion
from models.training import TrainConfig
from models.workflow import promote, train_and_register
from targeting.champion import ChampionStore
from targeting.engine import ModelUnavailableError
from targeting.sim.run import simulate_to_directory
from targeting.sim.world import WorldConfig

pytestmark = pytest.mark.slow

START = date(2025, 1, 1)
DAYS = 50


@dataclass(frozen=True)
class Registry:
    root: Path
    tracking_uri: str
    versions: tuple[str, str]
    sha256: dict[str, str]


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    root = tmp_path_factory.mktemp("champion")
    simulate_to_directory(WorldConfig(seed=3, start=START, days=DAYS, containers_per_day=150, illicit_rate=0.015), root / "world")
    lake = Lake(root / "lake")
    for table in ("manifests", "events", "outcomes", "alerts"):
        ingest(lake, table, [root / "world" / f"{table}.parquet"], now=datetime(2025, 4, 1, tzinfo=UTC))
    (root / "mlruns").mkdir()
    tracking_uri = f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    client = configure(tracking_uri)
    split = TimeSplit(START + timedelta(days=20), START + timedelta(days=38), START + timedelta(days=44), START + timedelta(days=DAYS))
    logged = []
    for seed in (7, 8):
        config = TrainConfig(split=split, seed=seed, num_threads=1, model={"n_estimators": 30, "num_leaves": 7, "early_stopping_rounds": 10})
        logged.append(train_and_register(lake, client, config)[1])
    assert promote(lake, client, logged[0].version).promoted
    return Registry(root, tracking_uri, (logged[0].version, logged[1].version), {m.version: m.model_sha256 for m in logged})


def unreachable(tmp_path: Path) -> str:
    """A registry URI that cannot be opened: its directory is a plain file."""
    blocker = tmp_path / "registry-is-a-file"
    blocker.touch()
    return f"sqlite:///{blocker / 'mlflow.db'}"


def sha256_text(path: Path) -> str:
    return hashlib.sha256(path.read_text().encode()).hexdigest()


@pytest.fixture
def loaded(registry, tmp_path):  # noqa: ANN201 - (cache dir, LoadedModel)
    """A cache filled by one successful load of the champion from the registry."""
    model = ChampionStore(registry.tracking_uri, tmp_path / "cache").champion()
    return tmp_path / "cache", model


def test_a_registry_load_writes_a_verified_local_copy(registry, loaded):
    cache, model = loaded
    v1 = registry.versions[0]
    assert (model.version, model.source, model.model_sha256) == (v1, "registry", registry.sha256[v1])
    meta = json.loads((cache / v1 / "meta.json").read_text())
    assert meta["model_sha256"] == sha256_text(cache / v1 / "model.txt") == model.model_sha256
    assert meta["stats_sha256"] == sha256_text(cache / v1 / "feature_stats.json")
    assert json.loads((cache / "champion.json").read_text()) == {"version": v1}
    assert not list(cache.rglob("*.tmp"))


def test_an_unreachable_registry_serves_the_verified_local_copy(registry, loaded, tmp_path):
    cache, from_registry = loaded
    store = ChampionStore(unreachable(tmp_path), cache)
    try:
        local = store.champion()
        assert (local.version, local.source, local.model_sha256) == (from_registry.version, "local-copy", from_registry.model_sha256)
        assert local.booster.model_to_string() == from_registry.booster.model_to_string()
        assert local.stats == from_registry.stats and local.metrics == from_registry.metrics
        rows = np.random.default_rng(0).normal(size=(50, from_registry.booster.num_feature()))
        np.testing.assert_array_equal(local.booster.predict(rows), from_registry.booster.predict(rows))
        assert store.version(from_registry.version).source == "local-copy"  # what a replay gets during the outage
    finally:
        configure(registry.tracking_uri)


@pytest.mark.parametrize("target", ["model.txt", "feature_stats.json"])
def test_a_tampered_local_copy_is_refused(registry, loaded, tmp_path, target):
    cache, model = loaded
    path = cache / model.version / target
    text = path.read_text()
    path.write_text(text.replace("1", "2", 1) if target == "model.txt" else text.replace("}", ' , "x": 1}', 1))
    try:
        with pytest.raises(ModelUnavailableError, match=rf"^model version {model.version} unavailable: registry unreachable \(.+\); local copy failed its sha256 check$"):
            ChampionStore(unreachable(tmp_path), cache).champion()
    finally:
        configure(registry.tracking_uri)
    assert ChampionStore(registry.tracking_uri, cache).champion().source == "registry"  # the registry repairs the copy
    assert sha256_text(path) == model.model_sha256 if target == "model.txt" else True


def test_a_local_copy_with_missing_files_is_refused(registry, loaded, tmp_path):
    cache, model = loaded
    (cache / model.version / "meta.json").unlink()
    try:
        with pytest.raises(ModelUnavailableError, match=rf"model version {model.version} unavailable: registry unreachable .*; local copy unreadable"):
            ChampionStore(unreachable(tmp_path), cache).champion()
    finally:
        configure(registry.tracking_uri)


def test_without_registry_and_local_copy_there_is_no_model(registry, tmp_path):
    try:
        with pytest.raises(ModelUnavailableError, match=r"^no champion model: registry unreachable \(.+\), and no verified local copy in "):
            ChampionStore(unreachable(tmp_path), tmp_path / "empty-cache").champion()
    finally:
        configure(registry.tracking_uri)


def test_the_local_copy_follows_the_champion_and_keeps_older_versions_for_replay(registry, tmp_path):
    v1, v2 = registry.versions
    client = configure(registry.tracking_uri)
    cache = tmp_path / "cache"
    assert ChampionStore(registry.tracking_uri, cache).champion().version == v1
    set_champion(client, v2, reason="test: move the alias")
    try:
        assert ChampionStore(registry.tracking_uri, cache).champion().version == v2
        assert json.loads((cache / "champion.json").read_text()) == {"version": v2}
        offline = ChampionStore(unreachable(tmp_path), cache)
        assert (offline.champion().version, offline.champion().model_sha256) == (v2, registry.sha256[v2])
        assert offline.version(v1).model_sha256 == registry.sha256[v1]
        with pytest.raises(ModelUnavailableError, match="model version 99 unavailable"):
            offline.version("99")
    finally:
        set_champion(configure(registry.tracking_uri), v1, reason="test: restore the alias")


def test_copies_are_independent_of_the_cache_folder(registry, loaded, tmp_path):
    cache, model = loaded
    moved = tmp_path / "moved"
    shutil.copytree(cache, moved)
    try:
        assert ChampionStore(unreachable(tmp_path), moved).champion().model_sha256 == model.model_sha256
    finally:
        configure(registry.tracking_uri)


def test_loading_another_version_for_a_replay_does_not_move_the_local_champion(registry, loaded, tmp_path):
    cache, champion = loaded
    v1, v2 = registry.versions
    store = ChampionStore(registry.tracking_uri, cache)
    assert store.version(v2).source == "registry"  # e.g. replaying a list served with v2
    assert json.loads((cache / "champion.json").read_text()) == {"version": v1}
    try:
        offline = ChampionStore(unreachable(tmp_path), cache).champion()
        assert (offline.version, offline.model_sha256) == (v1, champion.model_sha256)
    finally:
        configure(registry.tracking_uri)


def test_the_registry_serves_again_once_it_is_reachable(registry, loaded, tmp_path):
    cache, champion = loaded
    store = ChampionStore(unreachable(tmp_path), cache)
    try:
        assert store.version(champion.version).source == "local-copy"
        assert store.champion().source == "local-copy"
    finally:
        configure(registry.tracking_uri)
    store.tracking_uri = registry.tracking_uri
    assert store.champion().source == "registry"
    assert store.version(champion.version).source == "registry"
