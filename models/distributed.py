"""Training on a Dask cluster, driver-light: features by time partition from the lake, ``lightgbm.dask``, a local booster.

Optional: needs ``dask`` and ``distributed`` (``pip install -e '.[cluster]'``). Nothing on the
single-machine path imports this module.

How to call it from Python::

    from features.distributed import cluster_client
    from models.distributed import train_on_cluster

    with cluster_client("tcp://scheduler:8786") as client:   # or "local"
        result = train_on_cluster(client, history, TrainConfig(split=split), scratch=Path("/shared/ccp-scratch"))
    # a models.training.TrainResult, as from models.training.train_model: result.model.booster_ is a
    # plain lightgbm.Booster, logged, registered, promoted and served exactly like a single-machine one
    # (models.workflow.train_and_register(..., cluster=client) does all of it).

What runs where (nothing proportional to the training rows is held by the driver, only the
validation and test periods, the training period's outcomes, and counts, medians and quantiles):

1. the training rows are :func:`models.training.labelled_frame`'s, kept lazy (:func:`labelled_rows`):
   each worker derives a week of them, counts them per decision day and writes their training-period
   manifests with derived columns (:func:`staged_statistics`); the driver cuts the days into
   partitions and the feature statistics are fitted from those files
   (:func:`features.distributed_stats.fit_stats_on_cluster`: summed counts, medians selected exactly),
   the same statistics as :func:`models.training.train_model` fits;
2. features: :func:`features.distributed_lake.lake_feature_partitions` (parties resolved from the
   workers' partial records, entity events written per hash chunk, each time partition computed by a
   worker from its own days' rows, :func:`labelled_rows_between`), written by the workers to Parquet
   under ``scratch`` with each row's period, labels and key;
3. the model: each worker reads its partitions' training rows as Float32 features with label and
   weight (:func:`training_part`; with ``negative_fraction`` < 1 every seizure and that fraction of
   the other rows, weights divided by it: :func:`negative_sample`), and
   :class:`lightgbm.DaskLGBMClassifier` (``tree_learner="data"``, one LightGBM process per worker
   that holds training rows) trains on them with the parameters of
   :meth:`models.risk_model.RiskModel.lgb_params` and ``n_estimators`` rounds;
4. early stopping: ``lightgbm.dask`` has none (training hangs with it, LightGBM issues #3712, #6351),
   so the local booster (``.to_local()``) is cut at the best iteration chosen on the driver from the
   validation rows (every row, never down-sampled) with the rule :func:`lightgbm.early_stopping`
   applies on the single machine (first metric ``average_precision``, weighted, stop after
   ``early_stopping_rounds`` rounds without a strict improvement);
5. evaluation and calibration: the validation and test periods' features are gathered (small
   periods) and evaluated, and the calibrator fitted, with the same functions as the single path;
   the seal/dwell integrity norms are selected from the written training rows
   (:func:`features.distributed_stats.integrity_norms_on_cluster`), equal to the single path's.

The cluster model is not bit-identical to the single-machine one (data-parallel LightGBM builds
its histograms per worker and combines them; bin boundaries and bagging see each worker's rows;
Float32 features): its quality is, within the tolerance :data:`QUALITY_TOLERANCE` measured and
tested on the same split. Scoring with the same booster gives identical scores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
import warnings
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from features.candidates import decision_time
from features.data.handling import matching_outcomes
from features.distributed import POSITION
from features.distributed_lake import day_counts, decided_in, ranges_of_days
from features.distributed_stats import STATS_COLUMNS, fit_stats_on_cluster, integrity_norms_on_cluster
from features.history import History, with_derived_columns
from features.integrity import ROW_COLUMNS
from features.registry import categorical_columns, feature_columns
from features.stats import FeatureStats
from models.baselines import baseline_scores
from models.dataset import ROW_KEY, TimeSplit, served_rows, with_labels, with_oracle
from models.metrics import source_hit_rates
from models.risk_model import RiskModel
from models.training import (
    TrainConfig,
    TrainResult,
    _sample_weights,
    calibration_report,
    evaluate_scores,
    fit_risk_calibrator,
)

QUALITY_TOLERANCE = {"oracle/model/roc_auc": 0.05, "oracle/model/norm_precision_at_1": 0.25}
"""Largest absolute difference between the cluster-trained and the single-machine model on the same split (test period,
oracle stream) that ``tests/models/test_distributed.py`` accepts for ``targeting train --cluster local`` (production
parameters, seed 7) on its small simulated world, with the split ``targeting train`` chooses there (train 2025-01-31 to
2025-04-02, validation to 04-07, test to 04-11: 4 illicit test containers, so normalised precision at 1 % moves in steps
of 0.25). Measured: one machine, seeds 7 to 11, ROC-AUC 0.9965 to 0.9974 and normalised precision at 1 % 0.75 every
time; the cluster path (2 workers, seed 7, three runs each) ROC-AUC 0.9972 to 0.9976 and normalised precision 0.75 with
every row, 0.9966 to 0.9969 and 0.75 or 1.0 with half the negatives (data-parallel LightGBM is not deterministic across
runs: which worker holds which rows). 0.25 is one of the four illicit containers; 0.05 of ROC-AUC is far above the
spread seen (0.001)."""
LABEL, WEIGHT, PERIOD = "__ccp_label", "__ccp_weight", "period"
LABEL_COLUMNS = ("inspected", "label", "random_slice")
"""What :func:`models.training._sample_weights` reads: written beside each row's features with its period and key."""
CARRY = (PERIOD, *LABEL_COLUMNS, *(c for c in ROW_KEY if c != "manifest_id"), *ROW_COLUMNS)
"""Columns written beside each row's features: its period, labels and key, and the manifest columns the integrity norms read."""
_EVALUATION_COLUMNS = ("period", "inspected", "label", "random_slice", "seized_kg", "illicit", "oracle_kg")


def as_float32(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with its Float64 feature columns as Float32 (half the memory; LightGBM bins on 32-bit values)."""
    return frame.with_columns(pl.col(c).cast(pl.Float32) for c in feature_columns() if frame.schema.get(c) == pl.Float64)


def negative_sample(frame: pl.DataFrame, fraction: float, *, label: str = LABEL, weight: str = WEIGHT, key: str = "manifest_id") -> pl.DataFrame:
    """Every positive row (``label`` 1) and a fraction ``fraction`` of the others, whose ``weight`` is divided by ``fraction``.

    The kept negatives are chosen by a hash of ``key`` (the same rows on every run and every worker),
    so the weighted sums of the sample estimate those of all rows (importance weights). ``fraction``
    in ``(0, 1]``; 1 keeps every row unchanged.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"negative fraction must be in (0, 1], got {fraction}")
    if fraction == 1:
        return frame
    keep = pl.col(key).hash(seed=16) % 1_000_000 < round(fraction * 1_000_000)
    positive = pl.col(label) == 1
    return frame.filter(positive | keep).with_columns(pl.when(positive).then(pl.col(weight)).otherwise(pl.col(weight) / fraction).alias(weight))


def _buckets(frame: pl.DataFrame, parts: int) -> list[pl.DataFrame]:
    """The training rows of a feature partition cut into ``parts`` buckets by a hash of their position."""
    rows = frame.filter(pl.col(PERIOD) == "train")
    bucket = rows[POSITION].hash(seed=0) % parts
    return [rows.filter(bucket == j) for j in range(parts)]


def _bucket(buckets: list[list[pl.DataFrame]], j: int):  # noqa: ANN202 - a pandas frame
    """Bucket ``j`` of every feature partition, in partition order, as one pandas training part."""
    return pl.concat([b[j] for b in buckets], how="vertical").select(*feature_columns(), LABEL, WEIGHT).to_pandas()


def _head0(frame):  # noqa: ANN001, ANN202 - a pandas frame
    return frame.head(0)


def _period_rows(frame: pl.DataFrame, period: str) -> int:
    return int((frame[PERIOD] == period).sum())


def lgb_dask_params(model: RiskModel) -> dict:
    """:meth:`RiskModel.lgb_params` for :class:`lightgbm.DaskLGBMClassifier`: ``num_threads`` is each worker's own."""
    params = {k: v for k, v in model.lgb_params().items() if k != "num_threads"}
    return {**params, "n_estimators": model.n_estimators, "tree_learner": "data"}


def fit_on_cluster(client, partitions: list, model: RiskModel) -> "lightgbm.Booster":  # noqa: ANN001, F821
    """Train ``DaskLGBMClassifier`` on the ``train`` rows of the feature partitions; returns the local booster (all rounds).

    Only partitions holding training rows take part (a LightGBM worker without rows cannot join).
    """
    import dask.dataframe as dd
    from lightgbm import DaskLGBMClassifier

    counts = client.gather(client.map(_period_rows, partitions, period="train", pure=False))
    if not sum(counts):
        raise ValueError("no training rows in the training period")
    # feature partitions are time slices: spread every slice's rows over all training parts (a hash of the row's
    # position), so each LightGBM worker sees the whole period, as data-parallel training assumes
    parts = max(1, min(len(partitions), sum(counts) // 1000))
    buckets = [client.submit(_buckets, p, parts, pure=False) for p, n in zip(partitions, counts) if n]
    frames = [client.submit(_bucket, buckets, j, pure=False) for j in range(parts)]
    train = dd.from_delayed(frames, meta=client.submit(_head0, frames[0], pure=False).result())
    features = feature_columns()
    estimator = DaskLGBMClassifier(client=client, **lgb_dask_params(model))
    categorical = [c for c in model.categorical_features if c in features]
    # lightgbm.dask prints its progress (ports, ranks) on stdout: keep stdout for the command's output
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        estimator.fit(train[features], train[LABEL], sample_weight=train[WEIGHT], categorical_feature=categorical)
    return estimator.to_local().booster_


def best_iteration(booster, valid: pl.DataFrame, y: np.ndarray, w: np.ndarray, *, rounds: int) -> int:  # noqa: ANN001
    """The iteration :func:`lightgbm.early_stopping` (first metric: weighted average precision) would keep.

    Rounds are scored one tree at a time on ``valid`` (cumulative raw scores); training "stops" at the
    first round ``rounds`` after the best one; the best is the earliest round with the highest value.
    All rounds when the validation rows hold no positive (the single path then does not stop early).
    """
    from sklearn.metrics import average_precision_score

    trees = booster.num_trees()
    if y.sum() == 0 or valid.height == 0:
        return trees
    X = valid.select(booster.feature_name()).to_numpy()
    raw = np.zeros(valid.height)
    best, best_value = 0, -np.inf
    for i in range(trees):
        raw += booster.predict(X, start_iteration=i, num_iteration=1, raw_score=True)
        value = average_precision_score(y, raw, sample_weight=w)
        if value > best_value:
            best, best_value = i, value
        elif i - best >= rounds:
            break
    return best + 1


def fitted_model(config: TrainConfig, booster, best: int) -> RiskModel:  # noqa: ANN001
    """A fitted :class:`RiskModel` holding ``booster`` cut at ``best`` rounds (what the single path saves)."""
    import lightgbm as lgb

    model = RiskModel(num_threads=config.num_threads, seed=config.seed, categorical_features=tuple(categorical_columns()), **config.model)
    model.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    model.best_iteration_ = best
    model.feature_names_in_ = np.asarray(model.booster_.feature_name(), dtype=object)
    model.n_features_in_ = len(model.feature_names_in_)
    model.classes_ = np.array([0, 1])
    return model


# ----------------------------------------------------------------------------- rows and features
def labelled_rows(history: History, split: TimeSplit) -> pl.LazyFrame:
    """:func:`models.training.labelled_frame` without the oracle, lazy, warm-up rows left out: the same rows in the same order."""
    rows = served_rows(history, start=split.train_start, end=split.test_end)
    return with_labels(rows, history.outcomes).with_columns(split.period_of()).filter(pl.col(PERIOD).is_not_null())


def labelled_rows_between(history: History, split: TimeSplit, lo: datetime, hi: datetime) -> pl.LazyFrame:
    """The rows of :func:`labelled_rows` decided in ``[lo, hi)`` (whole UTC days), derived from those days' candidates only."""
    start, end = max(lo.date(), split.train_start), min(hi.date(), split.test_end)
    rows = served_rows(history, start=start, end=max(start, end))
    return with_labels(rows, history.outcomes).with_columns(split.period_of()).filter(pl.col(PERIOD).is_not_null())


def training_features(
    client, history: History, split: TimeSplit, stats: FeatureStats, out_dir: Path, *, rows_per_partition: int | None = None,  # noqa: ANN001
    ranges: list | None = None,
) -> dict:
    """The features of every labelled row, written by the workers under ``out_dir`` with the :data:`CARRY` columns.

    :func:`features.distributed_lake.lake_feature_partitions` on :func:`labelled_rows`, each partition
    deriving its own days' rows (:func:`labelled_rows_between`); returns its summary (``files`` in time order).
    """
    from features.distributed_lake import lake_feature_partitions

    return lake_feature_partitions(client, labelled_rows(history, split), history, stats, out_dir, rows_per_partition=rows_per_partition,
                                   rows_between=partial(labelled_rows_between, history, split), carry=CARRY, ranges=ranges)


def training_part(path: str, part: int, config: TrainConfig, negative_fraction: float = 1.0) -> pl.DataFrame:
    """On a worker: the ``train`` rows of a written feature partition as :func:`fit_on_cluster` takes them.

    Float32 features, label and weight as :func:`models.training.train_model` sets them, a unique
    :data:`POSITION`; with ``negative_fraction`` < 1, every seizure and that fraction of the other rows
    (chosen by manifest id, weights divided by the fraction: :func:`negative_sample`).
    """
    frame = pl.read_parquet(path)
    if PERIOD in frame.columns:  # a partition written without periods (a benchmark's training rows) is all training rows
        frame = frame.filter(pl.col(PERIOD) == "train")
    y, w = _sample_weights(frame, config)
    frame = frame.select("manifest_id", *feature_columns()).with_columns(pl.Series(LABEL, y), pl.Series(WEIGHT, w))
    frame = as_float32(negative_sample(frame, negative_fraction).drop("manifest_id"))
    position = pl.int_range(frame.height, dtype=pl.Int64, eager=True) + part * 1_000_000_000
    return frame.with_columns(pl.lit("train").alias(PERIOD), position.alias(POSITION))


def _file_counts(path: str) -> pl.DataFrame:
    """On a worker: rows, inspected rows and seizures per period of a written feature partition."""
    return pl.scan_parquet(path).group_by(PERIOD).agg(
        pl.len().alias("rows"), pl.col("inspected").sum().alias("inspected"), pl.col("label").fill_null(0).sum().alias("seizures")
    ).collect()


def period_counts(client, files: list[str]) -> dict[str, int]:  # noqa: ANN001
    """``<period>_rows``, ``_inspected`` and ``_seizures`` of the written partitions (as :func:`train_model` counts them)."""
    counts = pl.concat(client.gather([client.submit(_file_counts, f, pure=False) for f in files]), how="vertical")
    totals = counts.group_by(PERIOD).agg(pl.col("rows", "inspected", "seizures").sum())
    out = {}
    for period in ("train", "valid", "test"):
        row = totals.filter(pl.col(PERIOD) == period)
        out.update({f"{period}_{what}": int(row[what].sum()) for what in ("rows", "inspected", "seizures")})
    return out


STAGE_DAYS = 7
"""Decision days of labelled rows each worker derives when it counts them and stages the training period's manifests."""


def _stage_window(rows_between: Callable[[datetime, datetime], pl.LazyFrame], bounds: tuple[datetime, datetime], path: str) -> pl.DataFrame:
    """On a worker: the labelled rows decided in ``[lo, hi)`` counted per decision day; their ``train`` rows' manifests
    with derived columns (what the statistics read) written to ``path`` (nothing written when there are none)."""
    rows = rows_between(*bounds).filter(decided_in(*bounds)).collect()
    train = with_derived_columns(rows.lazy().filter(pl.col(PERIOD) == "train")).select(STATS_COLUMNS).collect()
    if train.height:
        train.write_parquet(path)
    return day_counts(rows.lazy()).collect()


def staged_statistics(client, history: History, split: TimeSplit, out_dir: Path, *, rows_per_partition: int | None = None) -> tuple[list, FeatureStats]:  # noqa: ANN001
    """The feature partitions' decision-day ranges and :func:`models.training.fit_feature_stats`' statistics, both from the workers.

    Each worker derives :data:`STAGE_DAYS` days of labelled rows (:func:`labelled_rows_between`), counts them per
    day and writes their training period's manifests under ``out_dir``; the driver cuts the days into partitions
    (:func:`features.distributed_lake.ranges_of_days`) and :func:`features.distributed_stats.fit_stats_on_cluster`
    fits the statistics from the files: exactly the single path's.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    days = (split.test_end - split.train_start).days
    windows = [(decision_time(split.train_start + timedelta(days=d)), decision_time(min(split.test_end, split.train_start + timedelta(days=d + STAGE_DAYS))))
               for d in range(0, days, STAGE_DAYS)]
    paths = [str(out_dir / f"train-{k:04d}.parquet") for k in range(len(windows))]
    stage = partial(labelled_rows_between, history, split)
    counts = client.gather([client.submit(_stage_window, stage, bounds, path, pure=False) for bounds, path in zip(windows, paths, strict=True)])
    ranges = ranges_of_days(pl.concat(counts, how="vertical"), rows_per_partition, threads=sum(client.nthreads().values()) or 1)
    outcomes = history.outcomes.filter(pl.col("inspected_at") < decision_time(split.train_end)).collect()
    return ranges, fit_stats_on_cluster(client, [p for p in paths if Path(p).exists()], outcomes)


def _held_out(path: str) -> pl.DataFrame:
    return pl.read_parquet(path).filter(pl.col(PERIOD) != "train")


def held_out_frames(client, files: list[str], rows: pl.DataFrame) -> dict[str, pl.DataFrame]:  # noqa: ANN001
    """The validation and test rows as :func:`train_model` holds them: ``rows``' evaluation columns, then their features.

    ``rows``: those periods' labelled rows (with the oracle, if any) in the single path's order; their
    features are gathered from the written partitions and put in that order by :data:`ROW_KEY`.
    """
    features = pl.concat(client.gather([client.submit(_held_out, f, pure=False) for f in files]), how="vertical")
    columns = [c for c in features.columns if c not in CARRY]
    frames = {}
    for period in ("valid", "test"):
        period_rows = rows.filter(pl.col(PERIOD) == period)
        aligned = period_rows.select(ROW_KEY).join(features.filter(pl.col(PERIOD) == period), on=list(ROW_KEY), how="inner", maintain_order="left")
        if aligned.height != period_rows.height:
            raise AssertionError(f"{period}: features of {aligned.height:,} rows for {period_rows.height:,} labelled rows")
        labels = period_rows.select(c for c in _EVALUATION_COLUMNS if c in rows.columns)
        frames[period] = pl.concat([labels, aligned.select(columns)], how="horizontal")
    return frames


# ----------------------------------------------------------------------------- training
def matched_outcomes_on_disk(history: History, path: Path) -> tuple[History, int]:
    """:func:`models.training.matched_history` with its outcomes matched once and written to ``path`` (read by every worker).

    Outcomes are few (one per exam); matching them reads only the manifests they name (a filter the lake scan
    applies), so neither this process nor a worker reads the whole manifest table to label its rows.
    """
    outcomes = history.outcomes.collect()
    named = history.manifests.filter(pl.col("manifest_id").is_in(outcomes.get_column("manifest_id").unique()))
    matching, ignored = matching_outcomes(outcomes.lazy(), named)
    matching.collect().write_parquet(path)
    return dataclasses.replace(history, outcomes=pl.scan_parquet(path)), int(ignored.select(pl.len()).collect().item())


def train_on_cluster(
    client,  # noqa: ANN001 - distributed.Client
    history: History,
    config: TrainConfig,
    *,
    oracle: pl.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
    negative_fraction: float = 1.0,
    scratch: Path | None = None,
    rows_per_partition: int | None = None,
) -> TrainResult:
    """:func:`models.training.train_model` with features and training on the cluster (see the module docstring).

    Same rows, split, statistics, weights, parameters and evaluation; returns a :class:`TrainResult`
    whose ``model.booster_`` is a local LightGBM booster. ``negative_fraction`` in ``(0, 1]``: the
    training period's non-seizure rows kept (1: all). ``scratch``: where the workers write the
    feature partitions (removed at the end); it must be storage every worker and this process read
    (default: this machine's temporary directory, enough for ``--cluster local``).
    ``rows_per_partition``: see :func:`features.distributed_lake.lake_feature_partitions`.
    """
    if not 0 < negative_fraction <= 1:
        raise ValueError(f"negative fraction must be in (0, 1], got {negative_fraction}")
    say = progress or (lambda _: None)
    split = config.split
    model = RiskModel(num_threads=config.num_threads, seed=config.seed, categorical_features=tuple(categorical_columns()), **config.model)
    with tempfile.TemporaryDirectory(prefix="ccp-cluster-", dir=scratch) as tmp:
        history, ignored_outcomes = matched_outcomes_on_disk(history, Path(tmp) / "outcomes.parquet")
        if ignored_outcomes:
            say(f"ignoring {ignored_outcomes:,} outcomes that do not match their manifest (unknown manifest, other container or port)")
        say("counting the labelled rows and fitting feature statistics on the training period (on the cluster)")
        ranges, stats = staged_statistics(client, history, split, Path(tmp) / "stats", rows_per_partition=rows_per_partition)
        say("computing features by time partition on the cluster")
        files = training_features(client, history, split, stats, Path(tmp), ranges=ranges)["files"]
        counts = {**period_counts(client, files), "ignored_outcomes": ignored_outcomes}
        parts = [client.submit(training_part, f, k, config, negative_fraction, pure=False) for k, f in enumerate(files)]
        say(f"training DaskLGBMClassifier on the cluster ({counts['train_rows']:,} rows, negatives kept: {negative_fraction:g})")
        booster = fit_on_cluster(client, parts, model)
        del parts
        rows = with_oracle(labelled_rows_between(history, split, decision_time(split.train_end), decision_time(split.test_end)).collect(), oracle)
        held_out = held_out_frames(client, files, rows)
        say("fitting the seal/dwell integrity norms on the training rows")
        norms = integrity_norms_on_cluster(client, files, where=pl.col(PERIOD) == "train")
        valid = held_out["valid"]
        y, w = _sample_weights(valid, config)
        best = best_iteration(booster, valid, y, w, rounds=model.early_stopping_rounds)
        model = fitted_model(config, booster, best)
        say(f"kept {best} of {booster.num_trees()} rounds (validation average precision); evaluating on the test period")
        result = _result(model, stats, config, history, rows.filter(pl.col(PERIOD) == "test"), held_out, counts)  # reads the outcomes file
    return dataclasses.replace(result, integrity_norms=norms)


def _result(model: RiskModel, stats, config: TrainConfig, history: History, test_manifests: pl.DataFrame, held_out: dict, counts: dict) -> TrainResult:  # noqa: ANN001
    """The :class:`TrainResult` of a cluster-trained model: test-period evaluation and calibration as in :func:`train_model`."""
    valid, test = held_out["valid"], held_out["test"]
    scores = model.predict_proba(test.select(feature_columns()))[:, 1]
    calibrator = fit_risk_calibrator(valid, model.predict_proba(valid.select(feature_columns()))[:, 1], test, scores, config)
    scorers = {"model": scores, **baseline_scores(test_manifests, test, config.rule_profiles(), seed=config.seed)}
    booster = model.booster_
    importance = pl.DataFrame(
        {"feature": booster.feature_name(), "gain": booster.feature_importance("gain"), "splits": booster.feature_importance("split")}
    ).sort("gain", descending=True)
    test_ids = test_manifests.select("manifest_id", "port").unique()
    test_outcomes = history.outcomes.join(test_ids.lazy(), on=["manifest_id", "port"], how="semi").collect()
    return TrainResult(
        model, stats, config, evaluate_scores(test, scorers), test, scores, counts, importance, source_hit_rates(test_outcomes),
        calibrator=calibrator, calibration=calibration_report(test, scores, calibrator),
    )
