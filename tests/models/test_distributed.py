"""Specification of the cluster path (issue 16): features and training on a Dask cluster equal the single-machine path.

The cluster is a real ``distributed.LocalCluster`` started once for this module: two worker
processes of one thread each (``processes=True``: every partition, the history, the statistics and
the booster cross process boundaries by serialisation, as on a real cluster). Features and the
entity snapshot must be bit-identical (``==``, no tolerance); a cluster-trained model must be within
:data:`models.distributed.QUALITY_TOLERANCE` of the single-machine model on the same split; the same
model must give identical lists whichever path computed the features and scores.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.candidates import decision_time
from features.distributed import build_features_on_cluster, cluster_client, entity_state_on_cluster
from features.history import History
from features.pipeline import build_features, entity_state
from features.registry import feature_columns
from features.rules.language import default_rule_profiles
from features.stats import FeatureStats
from models.distributed import QUALITY_TOLERANCE, score_on_cluster
from models.risk_model import predict_proba
from models.tracking import configure, load_version
from models.training import TrainConfig, TrainResult, fit_feature_stats, labelled_frame, matched_history, train_model
from models.workflow import train_and_register
from targeting import kernel
from targeting.lists import ListRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_lake import fresh_store  # noqa: E402

MODEL = {"n_estimators": 120, "num_leaves": 15}
"""A smaller model than production's (600 rounds, 31 leaves), the same on both paths: the comparison, not the model, is under test."""


@pytest.fixture(scope="module")
def dask_client():  # noqa: ANN201 - distributed.Client
    """One LocalCluster for the module (the only one that uses it): closed when the module ends, not idle for the rest of the suite."""
    with cluster_client("local", workers=2, threads_per_worker=1) as client:
        yield client


@dataclass(frozen=True)
class Inputs:
    history: History
    rows: pl.DataFrame
    stats: FeatureStats


@pytest.fixture(scope="module")
def inputs(small_world, split) -> Inputs:  # noqa: ANN001
    """The training rows of the small world and statistics fitted once (both paths get the same statistics)."""
    history, _ = matched_history(History.from_lake(small_world.lake))
    rows = labelled_frame(history, split).filter(pl.col("period").is_not_null())
    return Inputs(history, rows, fit_feature_stats(history, rows, split))


@pytest.fixture(scope="module")
def both_models(small_world, split, dask_client, mlflow_template, tmp_path_factory):  # noqa: ANN001, ANN201
    """The same configuration trained on one machine and on the cluster (registered in a fresh MLflow store)."""
    config = TrainConfig(split=split, num_threads=1, model=MODEL)
    single = train_model(History.from_lake(small_world.lake), config, oracle=small_world.oracle)
    store = configure(fresh_store(mlflow_template, tmp_path_factory.mktemp("cluster-mlflow")))
    on_cluster, logged = train_and_register(small_world.lake, store, config, oracle=small_world.oracle, cluster=dask_client)
    return single, on_cluster, store, logged


def test_cluster_features_equal_the_single_machine_features_bit_for_bit(dask_client, inputs: Inputs) -> None:
    # the validation and test periods (every direction, 25 days, each row with the longest history), in served order
    # (direction, manifest id): the partitions are cut by time, so the input order must be restored
    candidates = inputs.rows.filter(pl.col("period") != "train").drop("period")
    assert not candidates["decision_at"].is_sorted()
    single = build_features(candidates, inputs.history, inputs.stats)
    on_cluster = build_features_on_cluster(dask_client, candidates, inputs.history, inputs.stats, partitions=5)
    assert on_cluster.height == candidates.height > 5_000
    assert_frame_equal(on_cluster, single, check_exact=True)
    assert on_cluster.equals(single)


def test_the_entity_snapshot_as_a_map_reduce_equals_the_single_machine_snapshot(dask_client, inputs: Inputs, split) -> None:  # noqa: ANN001
    at = decision_time(split.valid_end)
    local = entity_state(inputs.history, at)
    on_cluster = entity_state_on_cluster(dask_client, inputs.history, at, partitions=3)
    assert set(on_cluster.tables) == set(local.tables)
    for name, table in local.tables.items():
        keys = [c for c in table.columns if not c.startswith("_")]
        assert_frame_equal(on_cluster.tables[name].select(table.columns).sort(keys, nulls_last=True), table.sort(keys, nulls_last=True), check_exact=True)
    assert on_cluster.known.equals(local.known.sort())
    day = inputs.rows.filter(pl.col("decision_at") == at).drop("period")
    assert day.height > 100
    assert build_features_on_cluster(dask_client, day, inputs.history, inputs.stats, state=on_cluster).equals(
        build_features(day, inputs.history, inputs.stats, state=local)
    )


def test_a_cluster_trained_model_is_within_the_stated_tolerance_of_the_single_machine_model(both_models) -> None:  # noqa: ANN001
    single, on_cluster, _, _ = both_models
    assert isinstance(on_cluster, TrainResult)
    assert on_cluster.counts == single.counts
    assert on_cluster.test_rows.select("manifest_id", "period", "label").equals(single.test_rows.select("manifest_id", "period", "label"))
    assert isinstance(on_cluster.model.booster_, lgb.Booster)
    assert on_cluster.model.booster_.feature_name() == feature_columns()
    assert 1 <= on_cluster.model.best_iteration_ <= MODEL["n_estimators"]
    ours, theirs = on_cluster.evaluation.headline(), single.evaluation.headline()
    for metric, tolerance in QUALITY_TOLERANCE.items():
        assert abs(ours[metric] - theirs[metric]) <= tolerance, f"{metric}: cluster {ours[metric]:.4f} vs single machine {theirs[metric]:.4f}"


def test_the_cluster_model_is_logged_as_a_local_booster_that_loads_and_scores_identically(both_models, inputs: Inputs) -> None:  # noqa: ANN001
    _, on_cluster, store, logged = both_models
    loaded = load_version(store, logged.version)
    assert loaded.booster.model_to_string() == on_cluster.model.model_text()
    test = on_cluster.test_rows
    assert np.array_equal(predict_proba(loaded.booster, test), on_cluster.test_scores)


def test_the_same_model_gives_identical_scores_and_lists_through_both_paths(dask_client, both_models, inputs: Inputs, split) -> None:  # noqa: ANN001
    _, on_cluster, _, _ = both_models
    scorer = kernel.Scorer(version="cluster", artifact_sha256=on_cluster.model.model_sha256(), booster=on_cluster.model.booster_, stats=on_cluster.stats)
    day = split.valid_end + timedelta(days=2)
    busiest = inputs.rows.filter(pl.col("decision_at") == decision_time(day), pl.col("direction") == "IMPORT")["port"].mode().sort()[0]
    request = ListRequest(port=busiest, list_date=day, capacity=12)
    history = inputs.history
    rows = kernel.candidate_rows(kernel.Snapshot(history), request)
    assert rows.height > 20
    cluster_state = entity_state_on_cluster(dask_client, history, decision_time(day))
    single_features = build_features(rows, history, scorer.stats)
    cluster_features = build_features_on_cluster(dask_client, rows, history, scorer.stats, state=cluster_state)
    assert cluster_features.equals(single_features)
    assert np.array_equal(score_on_cluster(dask_client, scorer.booster, cluster_features, partitions=3), predict_proba(scorer.booster, single_features))
    rules = default_rule_profiles()
    single_list = kernel.decide(kernel.Snapshot(history), scorer, rules, None, request)
    cluster_list = kernel.decide(kernel.Snapshot(history, state=cluster_state), scorer, rules, None, request)
    assert cluster_list == single_list
    assert len(single_list.items) == 12


def test_feature_statistics_fitted_again_on_the_same_rows_are_identical(inputs: Inputs, split) -> None:  # noqa: ANN001
    """Both paths fit their own statistics: the same rows must give the same statistics, to the last bit (hierarchy strengths included)."""
    again = [fit_feature_stats(inputs.history, inputs.rows, split).to_json() for _ in range(3)]
    assert again == [inputs.stats.to_json()] * 3


def test_driver_light_features_from_the_lake_equal_the_single_machine_features(dask_client, inputs: Inputs, tmp_path) -> None:  # noqa: ANN001
    # candidates stay lazy (each worker reads its own days), parties are resolved from the workers' partial records,
    # the entity history is read from per-chunk event files: the same features, row for row
    from features.distributed_lake import lake_feature_partitions

    candidates = inputs.rows.filter(pl.col("period") != "train").drop("period")
    single = build_features(candidates, inputs.history, inputs.stats)
    chunks = [inputs.history.manifests.filter(pl.col("manifest_id").hash(seed=0) % 3 == k) for k in range(3)]
    out = lake_feature_partitions(dask_client, candidates.lazy(), inputs.history, inputs.stats, tmp_path, rows_per_partition=1_500,
                                  chunks=chunks, carry=("label",))
    assert out["partitions"] >= 3 and out["rows"] == candidates.height
    written = pl.read_parquet(out["files"])
    assert written["label"].sum() == candidates["label"].sum()
    order = single.columns
    assert_frame_equal(written.select(order).sort(order), single.sort(order), check_exact=True)


def test_negative_sampling_keeps_every_seizure_and_a_stated_fraction_of_the_rest_weighted_by_its_inverse() -> None:
    from models.distributed import LABEL, WEIGHT, negative_sample

    frame = pl.DataFrame({"manifest_id": [f"M{i:06d}" for i in range(20_000)], LABEL: [1.0 if i % 100 == 0 else 0.0 for i in range(20_000)],
                          WEIGHT: [2.0 if i % 3 == 0 else 1.0 for i in range(20_000)]})
    sample = negative_sample(frame, 0.1)
    assert sample.filter(pl.col(LABEL) == 1).equals(frame.filter(pl.col(LABEL) == 1))  # every seizure, weight unchanged
    negatives = sample.filter(pl.col(LABEL) == 0)
    assert 1_600 < negatives.height < 2_360  # about 10 % of 19,800
    kept = frame.join(negatives.select("manifest_id"), on="manifest_id", how="semi")
    assert np.allclose(negatives[WEIGHT].to_numpy(), kept[WEIGHT].to_numpy() / 0.1)  # weights divided by the fraction
    assert abs(negatives[WEIGHT].sum() - frame.filter(pl.col(LABEL) == 0)[WEIGHT].sum()) / frame[WEIGHT].sum() < 0.05
    assert negative_sample(frame.reverse(), 0.1).sort("manifest_id").equals(sample.sort("manifest_id"))  # chosen by id, not position
    assert negative_sample(frame, 1.0).equals(frame)
    with pytest.raises(ValueError, match="negative fraction must be in"):
        negative_sample(frame, 0.0)


def test_day_partitions_cover_every_decision_day_once_in_whole_days_of_about_the_asked_rows() -> None:
    from datetime import UTC, datetime

    from features.distributed_lake import day_partitions

    start = datetime(2026, 1, 1, tzinfo=UTC)
    days = [start + timedelta(days=d, hours=h) for d in range(30) for h in range(0, 24, 24 // (1 + d % 4))]
    ranges = day_partitions(pl.LazyFrame({"decision_at": days}), 20)
    assert ranges[0][0] == start and ranges[-1][1] == start + timedelta(days=30)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous, no day twice
    assert all(lo.hour == 0 and hi.hour == 0 for lo, hi in ranges)
    sizes = [sum(lo <= d < hi for d in days) for lo, hi in ranges]
    assert sum(sizes) == len(days) and all(s >= 20 for s in sizes[:-1]) and max(sizes) < 20 + 4
