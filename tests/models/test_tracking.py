"""Specification of MLflow tracking and the registry (models.tracking) on a real temporary store.

A training run logs parameters, library and code versions, data lineage,
every metric beside the baselines, plots, statistics, a model card and the
model (a native LightGBM booster with a signature). Loaded back by the
``champion`` alias it gives identical predictions and contributions.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import urlparse

import lightgbm as lgb
import mlflow
import numpy as np
import polars as pl
import pytest

from features.history import History
from features.registry import categorical_columns, feature_columns
from features.stats import FeatureStats
from models.risk_model import predict_contributions, predict_proba, raw_scores
from models.tracking import (
    CHAMPION,
    MODEL_NAME,
    PRIMARY_METRIC,
    STATS_ARTIFACT,
    champion_version,
    configure,
    list_versions,
    load_version,
    log_training_run,
    set_champion,
)
from models.workflow import lake_digest, lineage, write_artifacts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_lake import fresh_store  # noqa: E402

PLOTS = ("feature_importance.png", "pr_curve_labelled.png", "pr_curve_oracle.png", "lift_curve_labelled.png", "lift_curve_oracle.png", "reliability.png")


@pytest.fixture(scope="module")
def store(tmp_path_factory, mlflow_template) -> str:  # noqa: ANN001
    return fresh_store(mlflow_template, tmp_path_factory.mktemp("tracking"))


@pytest.fixture
def client(store: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    return configure(store)


@pytest.fixture(scope="module")
def logged(store: str, trained, small_world, split, tmp_path_factory):  # noqa: ANN001, ANN201
    """The session's training result logged and registered as version 1, then made champion."""
    client = configure(store)
    assert champion_version(client) is None
    data = lineage(small_world.lake, History.from_lake(small_world.lake), split)
    out = tmp_path_factory.mktemp("artifacts")
    write_artifacts(trained, out, data, trained.model.model_sha256())
    result = log_training_run(trained, client=client, data_lineage=data, dataset_digest=lake_digest(small_world.lake), artifacts_dir=out, run_name="spec")
    set_champion(client, result.version, reason="first champion")
    return result


@pytest.fixture(scope="module")
def fixed_frame(trained) -> pl.DataFrame:  # noqa: ANN001
    """A fixed frame of real feature rows: the 300 test rows with the highest scores, plus 100 others."""
    order = np.argsort(-trained.test_scores, kind="stable")
    return trained.test_rows[np.concatenate([order[:300], order[-100:]])].select(feature_columns())


def test_first_logged_version_is_version_1_with_the_model_hash(logged, trained) -> None:  # noqa: ANN001
    assert logged.version == "1"
    assert logged.model_sha256 == trained.model.model_sha256() == hashlib.sha256(trained.model.model_text().encode()).hexdigest()


def test_champion_loaded_by_alias_is_a_native_booster_with_identical_predictions_and_contributions(logged, trained, client, fixed_frame) -> None:  # noqa: ANN001
    booster = mlflow.lightgbm.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    assert type(booster) is lgb.Booster
    assert booster.model_to_string() == trained.model.model_text()
    assert np.array_equal(predict_proba(booster, fixed_frame), trained.model.predict_proba(fixed_frame)[:, 1])
    loaded_contrib, loaded_bias = predict_contributions(booster, fixed_frame)
    contrib, bias = predict_contributions(trained.model.booster_, fixed_frame)
    assert np.array_equal(loaded_contrib, contrib) and np.array_equal(loaded_bias, bias)
    np.testing.assert_allclose(loaded_contrib.sum(axis=1) + loaded_bias, raw_scores(booster, fixed_frame), rtol=0, atol=1e-9)
    # column order enforced by name after the round trip too
    reordered = fixed_frame.select(list(reversed(fixed_frame.columns)))
    assert np.array_equal(predict_proba(booster, reordered), trained.model.predict_proba(fixed_frame)[:, 1])


def test_load_version_returns_the_champion_booster_with_its_statistics(logged, trained, client, fixed_frame) -> None:  # noqa: ANN001
    model = load_version(client)
    assert (model.version, model.run_id, model.aliases) == ("1", logged.run_id, (CHAMPION,))
    assert isinstance(model.booster, lgb.Booster)
    assert model.model_sha256 == logged.model_sha256
    assert FeatureStats.from_json(model.stats_json) == trained.stats
    assert np.array_equal(predict_proba(model.booster, fixed_frame), trained.model.predict_proba(fixed_frame)[:, 1])
    assert np.array_equal(predict_contributions(model.booster, fixed_frame)[0], predict_contributions(trained.model.booster_, fixed_frame)[0])
    by_number = load_version(client, "1")
    assert by_number.model_sha256 == model.model_sha256 and by_number.metrics == model.metrics


def test_model_is_stored_as_lightgbm_text_without_pickle(logged, client, tmp_path: Path) -> None:  # noqa: ANN001
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/1", dst_path=str(tmp_path)))
    files = sorted(p.name for p in local.rglob("*") if p.is_file())
    assert "model.lgb" in files and "MLmodel" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle", ".joblib", ".skops"))]
    text = (local / "model.lgb").read_text()
    assert text.startswith("tree\n") and hashlib.sha256(text.encode()).hexdigest() == logged.model_sha256
    assert "model_class: lightgbm.basic.Booster" in (local / "MLmodel").read_text()


def test_the_feature_statistics_are_saved_and_loaded_inside_the_model_artefact(logged, trained, client, store: str, tmp_path: Path) -> None:  # noqa: ANN001
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/1", dst_path=str(tmp_path)))
    bundled = local / "extra_files" / STATS_ARTIFACT
    assert FeatureStats.load(bundled) == trained.stats
    tag = client.get_model_version(MODEL_NAME, "1").tags["feature_stats_sha256"]
    assert tag == hashlib.sha256(bundled.read_bytes()).hexdigest()
    root = Path(store.removeprefix("sqlite:///")).parent
    stored = list(root.rglob(f"extra_files/{STATS_ARTIFACT}"))  # the artefact store's copy (tmp_path is elsewhere)
    run_copy = Path(urlparse(client.get_run(logged.run_id).info.artifact_uri).path) / STATS_ARTIFACT
    assert len(stored) == 1 and run_copy.exists()
    original, run_original = stored[0].read_text(), run_copy.read_text()
    try:
        run_copy.write_text("{}")  # the run's copy is not what serving loads
        assert FeatureStats.from_json(load_version(client, "1").stats_json) == trained.stats
        stored[0].write_text(original.replace("{", "{ ", 1))  # the artefact's statistics changed after registration
        with pytest.raises(ValueError, match="feature statistics do not match"):
            load_version(client, "1")
    finally:
        stored[0].write_text(original)
        run_copy.write_text(run_original)


def test_model_is_logged_with_a_signature_of_every_feature_by_name(logged) -> None:  # noqa: ANN001
    info = mlflow.models.get_model_info(f"models:/{MODEL_NAME}/1")
    inputs = info.signature.inputs.to_dict()
    assert [c["name"] for c in inputs] == feature_columns()
    types = {c["name"]: c["type"] for c in inputs}
    assert {types[c] for c in categorical_columns()} == {"integer"}
    assert {types[c] for c in feature_columns() if c not in categorical_columns()} == {"double"}
    assert info.signature.outputs is not None


def test_run_logs_parameters_of_the_model_split_and_weighting(logged, trained, split, client) -> None:  # noqa: ANN001
    params = client.get_run(logged.run_id).data.params
    model = trained.model
    for key in ("num_leaves", "learning_rate", "min_child_samples", "feature_fraction", "bagging_fraction", "lambda_l2", "seed", "num_threads", "deterministic"):
        assert params[f"lgbm.{key}"] == str(model.lgb_params()[key]), key
    assert params["lgbm.best_iteration"] == str(model.best_iteration_)
    assert {k: params[f"split.{k}"] for k in split.as_dict()} == split.as_dict()
    assert (params["unlabelled_weight"], params["random_weight"], params["seed"]) == ("0.05", "5.0", "7")
    assert params["feature_count"] == str(len(feature_columns()))


def test_run_records_library_and_code_versions(logged, client) -> None:  # noqa: ANN001
    tags = client.get_run(logged.run_id).data.tags
    assert tags["version.polars"] == pl.__version__
    assert tags["version.lightgbm"] == lgb.__version__
    assert tags["version.mlflow"] == mlflow.__version__
    assert tags["version.python"] == ".".join(map(str, sys.version_info[:3]))
    assert tags["version.numpy"] == np.__version__ and tags["version.scikit-learn"]
    assert tags["code_version"].strip()
    assert tags["model_sha256"] == logged.model_sha256


def test_run_records_data_lineage_and_the_dataset_digest(logged, client, small_world, split) -> None:  # noqa: ANN001
    run = client.get_run(logged.run_id)
    tags = run.data.tags
    lake = small_world.lake
    history = History.from_lake(lake)
    manifests = history.manifests.collect()
    assert tags["data.arrivals_from"] == manifests["eta"].min().date().isoformat()
    assert tags["data.arrivals_to"] == manifests["eta"].max().date().isoformat()
    for table in ("manifests", "events", "outcomes", "alerts"):
        assert tags[f"data.rows_{table}"] == str(getattr(history, table).collect().height), table
        assert tags[f"data.sha256_{table}"] == lake.data_sha256(table), table
    assert tags["data.lake"] == str(lake.root.resolve()) and tags["data.lake_log_seq"] == str(lake.last_seq())
    assert tags["data.split_test_end"] == split.test_end.isoformat()
    [dataset_input] = run.inputs.dataset_inputs
    assert dataset_input.dataset.digest == lake_digest(lake)[:32]
    assert dataset_input.dataset.name == "arrivals"
    assert {t.key: t.value for t in dataset_input.tags}["mlflow.data.context"] == "training"


def test_run_logs_every_finite_metric_of_model_and_baselines_and_the_counts(logged, trained, client) -> None:  # noqa: ANN001
    metrics = client.get_run(logged.run_id).data.metrics
    headline = trained.evaluation.headline()
    finite = {k: v for k, v in headline.items() if np.isfinite(v)}
    assert {k: metrics[k] for k in finite} == pytest.approx(finite)
    assert not [k for k, v in headline.items() if not np.isfinite(v) and k in metrics]
    for scorer in ("model", "rules", "random", "importer_findings"):
        for rate in ("0.5", "1", "2", "5", "10"):
            assert f"oracle/{scorer}/precision_at_{rate}" in metrics and f"labelled/{scorer}/recall_at_{rate}" in metrics
    assert metrics[PRIMARY_METRIC] == headline[PRIMARY_METRIC]
    assert {k.removeprefix("count/"): int(v) for k, v in metrics.items() if k.startswith("count/")} == trained.counts


def test_run_logs_plots_statistics_and_metric_tables(logged, trained, client, tmp_path: Path) -> None:  # noqa: ANN001
    names = {f.path for f in client.list_artifacts(logged.run_id)}
    assert set(PLOTS) | {STATS_ARTIFACT, "model_card.md", "metrics.csv", "metrics.json", "feature_importance.csv", "features.json"} <= names
    local = Path(mlflow.artifacts.download_artifacts(run_id=logged.run_id, dst_path=str(tmp_path)))
    for plot in PLOTS:
        assert (local / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    assert FeatureStats.load(local / STATS_ARTIFACT) == trained.stats
    assert json.loads((local / "features.json").read_text()) == {"features": feature_columns()}
    table = pl.read_csv(local / "metrics.csv")
    assert table.height == 12 and set(table["scorer"]) == {"model", "rules", "random", "importer_findings"}
    importance = pl.read_csv(local / "feature_importance.csv")
    assert set(importance["feature"]) == set(feature_columns()) and importance["gain"].is_sorted(descending=True)


def test_model_card_states_data_metrics_baselines_and_known_limits(logged, trained, client, small_world, tmp_path: Path) -> None:  # noqa: ANN001
    card = Path(mlflow.artifacts.download_artifacts(run_id=logged.run_id, artifact_path="model_card.md", dst_path=str(tmp_path))).read_text()
    assert card.startswith(f"# Model card: {MODEL_NAME}\n")
    for section in ("## Data", "## Labels and selection bias", "## Test-period metrics (model beside baselines)", "## Most important features (total gain)", "## Known limits"):
        assert f"\n{section}\n" in card, section
    assert f"Model text sha256: `{logged.model_sha256}`" in card
    assert str(small_world.lake.root.resolve()) in card
    split = trained.config.split
    assert f"train {split.train_start} to {split.train_end} (exclusive)" in card
    for stream in ("labelled", "random_slice", "oracle"):
        for scorer in ("model", "rules", "random", "importer_findings"):
            assert f"| {stream} | {scorer} |" in card, (stream, scorer)
    assert f"- `{trained.importance['feature'][0]}`:" in card
    assert "Labels are noisy" in card and "random exploration slice" in card


def test_registered_version_carries_hash_test_period_and_run(logged, trained, client) -> None:  # noqa: ANN001
    tags = client.get_model_version(MODEL_NAME, "1").tags
    split = trained.config.split
    assert tags["model_sha256"] == logged.model_sha256
    assert tags["test_period"] == f"{split.valid_end}..{split.test_end}"
    assert tags["run_id"] == logged.run_id
    assert tags["promotion_reason"] == "first champion" and tags["promotion_forced"] == "false"


def test_list_versions_shows_aliases_and_headline_metrics(logged, trained, client) -> None:  # noqa: ANN001
    frame = list_versions(client)
    assert frame["version"].to_list() == ["1"] and frame["aliases"].to_list() == [CHAMPION]
    row = frame.row(0, named=True)
    headline = trained.evaluation.headline()
    assert row["pr_auc"] == pytest.approx(headline[PRIMARY_METRIC])
    assert row["oracle_precision_at_1"] == pytest.approx(headline["oracle/model/precision_at_1"])
    assert row["oracle_recall_at_5"] == pytest.approx(headline["oracle/model/recall_at_5"])
    assert row["run_id"] == logged.run_id and row["test_period"] == f"{trained.config.split.valid_end}..{trained.config.split.test_end}"


def test_an_empty_registry_has_no_champion_and_no_versions(mlflow_template, tmp_path: Path) -> None:  # noqa: ANN001
    empty = configure(fresh_store(mlflow_template, tmp_path))
    assert champion_version(empty) is None
    assert list_versions(empty).height == 0
