"""Shared, session-wide inputs of the model tests: one small real lake, one trained result, an empty MLflow store template."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_lake import SmallWorld, build_small_world, store_template  # noqa: E402


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> SmallWorld:
    return build_small_world(tmp_path_factory.mktemp("small-world"))


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mlflow-template")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # MLflow's default experiment points at ./mlruns: keep it out of the repository
        return store_template(root)


@pytest.fixture(scope="session")
def split(small_world: SmallWorld):  # noqa: ANN201 - models.dataset.TimeSplit
    from models.workflow import default_split

    return default_split(small_world.lake)


@pytest.fixture(scope="session")
def trained(small_world: SmallWorld, split):  # noqa: ANN001, ANN201 - models.training.TrainResult
    """The production training path (``train_model``) on the small lake, evaluated against the oracle."""
    from features.history import History
    from models.training import TrainConfig, train_model

    return train_model(History.from_lake(small_world.lake), TrainConfig(split=split, num_threads=1), oracle=small_world.oracle)
