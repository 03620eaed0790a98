"""Specification of the cluster path (issue 16): features and training on a Dask cluster equal the single-machine path.

The cluster is a real ``distributed.LocalCluster`` started once for this module: two worker
processes of one thread each (``processes=True``: every partition, the history, the statistics and
the booster cross process boundaries by serialisation, as on a real cluster); ``targeting train
--cluster local`` starts its own. Features must be bit-identical (``==``, no tolerance); a
cluster-trained model must be within :data:`models.distributed.QUALITY_TOLERANCE` of the
single-machine model on the same split; the same model must give identical lists whichever path
computed the features and scores.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.candidates import decision_time
from features.distributed import build_features_on_cluster, cluster_client
from features.history import History
from features.pipeline import build_features
from features.registry import feature_columns
from features.rules.language import default_rule_profiles
from features.stats import FeatureStats
from models.dataset import ROW_KEY, TimeSplit
from features.distributed_lake import day_partitions
from models.distributed import CARRY, QUALITY_TOLERANCE, labelled_rows, staged_statistics, training_features
from models.risk_model import predict_proba
from models.tracking import load_version
from models.training import TrainConfig, TrainResult, fit_feature_stats, labelled_frame, matched_history, train_model
from targeting import kernel
from targeting.cli import _register, app
from targeting.lists import ListRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from small_lake import fresh_store  # noqa: E402

_register()


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


def _cli(*args) -> tuple[int, str]:  # noqa: ANN002
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def cli_cluster_run(small_world, mlflow_template, tmp_path_factory) -> dict:  # noqa: ANN001
    """``targeting train --cluster local`` on the small world's lake (the split it chooses) into a fresh MLflow store."""
    work = tmp_path_factory.mktemp("cluster-cli")
    store = fresh_store(mlflow_template, work)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.delenv("CCP_DASK_SCHEDULER", raising=False)
        code, output = _cli(
            "train", "--cluster", "local", "--cluster-workers", 2, "--lake", small_world.lake.root, "--tracking-uri", store,
            "--oracle", small_world.oracle_path, "--threads", 1, "--no-sync", "--json", "--negative-fraction", 0.5,
        )
    assert code == 0, output
    return {"out": json.loads(output[output.index("{"):]), "store": store}


@pytest.fixture(scope="module")
def single_run(small_world, cli_cluster_run: dict) -> TrainResult:  # noqa: ANN001
    """The single-machine path (``train_model``, the command's defaults) on the split the cluster run chose."""
    chosen = cli_cluster_run["out"]["split"]
    split = TimeSplit(*(date.fromisoformat(chosen[k]) for k in ("train_start", "train_end", "valid_end", "test_end")))
    return train_model(History.from_lake(small_world.lake), TrainConfig(split=split, num_threads=1), oracle=small_world.oracle)


def test_the_labelled_rows_kept_lazy_are_the_single_paths_rows_in_its_order(inputs: Inputs, split) -> None:  # noqa: ANN001
    lazy = labelled_rows(inputs.history, split).collect()
    assert lazy.height == inputs.rows.height > 20_000
    assert lazy.equals(inputs.rows)
    assert fit_feature_stats(inputs.history, lazy.filter(pl.col("period") == "train"), split).to_json() == inputs.stats.to_json()


def test_the_workers_count_the_rows_per_day_and_fit_the_single_paths_statistics_byte_for_byte(dask_client, inputs: Inputs, split, tmp_path) -> None:  # noqa: ANN001
    """Vocabularies, value/mass/tare medians, anomaly medians and MADs, strengths: selected from the workers' weekly files, not the
    driver's rows; and the partitions cut from the workers' counts per day are the ones the driver would cut from the rows."""
    ranges, stats = staged_statistics(dask_client, inputs.history, split, tmp_path, rows_per_partition=3_000)
    assert len(list(tmp_path.glob("*.parquet"))) > 3  # several files, so that counts and selections really combine them
    assert ranges == day_partitions(labelled_rows(inputs.history, split), 3_000)
    assert stats.fitted_on["manifests"] > 3_000 and stats.anomaly_norms["value"]["hs4"]
    assert stats.to_json() == inputs.stats.to_json()


def test_training_features_by_time_partition_from_the_lake_equal_the_single_machine_features(dask_client, inputs: Inputs, split, tmp_path) -> None:  # noqa: ANN001
    # every labelled row, each partition deriving its own days' rows, parties resolved from the workers' records, entity
    # history read from per-chunk event files: the same rows with the same features, compared with ==
    out = training_features(dask_client, inputs.history, split, inputs.stats, tmp_path, rows_per_partition=8_000)
    assert out["partitions"] >= 3 and out["rows"] == inputs.rows.height
    written = pl.read_parquet(out["files"])
    single = pl.concat([build_features(inputs.rows.drop("period"), inputs.history, inputs.stats), inputs.rows.select(c for c in CARRY if c != "manifest_id")],
                       how="horizontal")
    assert written.columns == single.columns
    keys = list(ROW_KEY)
    assert written.select(keys).is_unique().all()
    assert_frame_equal(written.sort(keys), single.sort(keys), check_exact=True)
    assert written.sort(keys).equals(single.sort(keys))


def test_a_days_candidates_get_the_identical_feature_frame_on_the_cluster_in_input_order(dask_client, inputs: Inputs, split) -> None:  # noqa: ANN001
    # the validation and test periods (every direction, each row with the longest history), in served order (direction,
    # manifest id): the partitions are cut by time, so the input order must be restored
    candidates = inputs.rows.filter(pl.col("period") != "train").drop("period")
    assert not candidates["decision_at"].is_sorted()
    single = build_features(candidates, inputs.history, inputs.stats)
    on_cluster = build_features_on_cluster(dask_client, candidates, inputs.history, inputs.stats, rows_per_partition=3_000)
    assert on_cluster.height == candidates.height > 5_000
    assert on_cluster.equals(single)


def test_train_cluster_local_registers_a_model_within_the_stated_tolerance_of_the_single_machine_model(cli_cluster_run: dict, single_run: TrainResult) -> None:
    out, trained = cli_cluster_run["out"], single_run
    assert out["version"] == "1"
    assert out["counts"] == trained.counts  # the same rows, periods, exams and seizures
    ours, theirs = out["metrics"], trained.evaluation.headline()
    for metric, tolerance in QUALITY_TOLERANCE.items():
        assert abs(ours[metric] - theirs[metric]) <= tolerance + 1e-9, f"{metric}: cluster {ours[metric]:.4f} vs single machine {theirs[metric]:.4f}"


def test_the_cluster_run_records_its_path_and_negative_fraction_and_its_model_loads_as_a_local_booster(cli_cluster_run: dict, inputs: Inputs) -> None:
    from models.tracking import configure

    client = configure(cli_cluster_run["store"])
    params = client.get_run(cli_cluster_run["out"]["run_id"]).data.params
    assert params["training.path"] == "cluster" and params["training.negative_fraction"] == "0.5"
    loaded = load_version(client, cli_cluster_run["out"]["version"])
    assert loaded.model_sha256 == cli_cluster_run["out"]["model_sha256"]
    assert loaded.booster.feature_name() == feature_columns()
    assert 1 <= loaded.booster.current_iteration() <= 600


def test_a_cluster_trained_model_carries_the_single_paths_integrity_norms(cli_cluster_run: dict, single_run: TrainResult) -> None:
    from models.tracking import configure

    loaded = load_version(configure(cli_cluster_run["store"]), cli_cluster_run["out"]["version"])
    assert single_run.integrity_norms is not None and loaded.integrity_norms_json == single_run.integrity_norms.to_json()


def test_the_same_model_gives_identical_scores_and_lists_from_cluster_and_single_machine_features(dask_client, cli_cluster_run: dict, inputs: Inputs, split) -> None:  # noqa: ANN001
    from models.tracking import configure

    loaded = load_version(configure(cli_cluster_run["store"]), cli_cluster_run["out"]["version"])
    scorer = kernel.Scorer(version=loaded.version, artifact_sha256=loaded.model_sha256, booster=loaded.booster, stats=FeatureStats.from_json(loaded.stats_json))
    day = split.valid_end + timedelta(days=2)
    busiest = inputs.rows.filter(pl.col("decision_at") == decision_time(day), pl.col("direction") == "IMPORT")["port"].mode().sort()[0]
    request = ListRequest(port=busiest, list_date=day, capacity=12)
    snapshot = kernel.Snapshot(inputs.history)
    rows = kernel.candidate_rows(snapshot, request)
    assert rows.height > 20
    single = kernel.prepare(snapshot, scorer, None, request)
    cluster_features = build_features_on_cluster(dask_client, rows, inputs.history, scorer.stats)
    assert cluster_features.equals(single.features)
    on_cluster = replace(single, features=cluster_features, scores=predict_proba(scorer.booster, cluster_features))
    assert np.array_equal(on_cluster.scores, single.scores)
    rules = default_rule_profiles()
    config = kernel.PolicyConfig()
    chosen = kernel.selection(on_cluster, kernel.rule_hits(rules, on_cluster, request), request, config)
    reasons = kernel.model_reasons(on_cluster, scorer, chosen.manifest_ids, top=config.model_reasons)
    cluster_list = kernel.assemble(chosen, request, scorer, reasons, ruleset_version=0, input_data_sha256="", config=config)
    single_list = kernel.decide(snapshot, scorer, rules, None, request)
    assert cluster_list == single_list
    assert len(single_list.items) == 12


@pytest.mark.parametrize("fraction", ["0", "1.5", "-0.2"])
def test_train_refuses_a_negative_fraction_outside_zero_to_one_naming_the_option(fraction: str, tmp_path: Path) -> None:
    code, output = _cli("train", "--cluster", "local", "--negative-fraction", fraction, "--lake", tmp_path / "no-lake", "--no-sync")
    assert code == 2
    assert "--negative-fraction must be in (0, 1]" in output


def test_train_refuses_down_sampling_without_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCP_DASK_SCHEDULER", raising=False)
    monkeypatch.chdir(tmp_path)
    code, output = _cli("train", "--negative-fraction", "0.5", "--lake", tmp_path / "no-lake", "--no-sync")
    assert code == 2
    assert "--negative-fraction below 1 needs the cluster path" in output


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
    assert len(day_partitions(pl.LazyFrame({"decision_at": days}), threads=4)) >= 8  # by default, at least two partitions per worker thread
