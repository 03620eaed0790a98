"""Training on a Dask cluster: features by partition, LightGBM's own ``lightgbm.dask`` estimator, a local booster.

Optional: needs ``dask`` and ``distributed`` (``pip install -e '.[cluster]'``). Nothing on the
single-machine path imports this module.

How to call it from Python::

    from features.distributed import cluster_client
    from models.distributed import train_on_cluster

    with cluster_client("tcp://scheduler:8786") as client:   # or "local"
        result = train_on_cluster(client, history, TrainConfig(split=split))
    # a models.training.TrainResult, as from models.training.train_model: result.model.booster_ is a
    # plain lightgbm.Booster, logged, registered, promoted and served exactly like a single-machine one
    # (models.workflow.train_and_register(..., cluster=client) does all of it).

What runs where:

1. labelled rows and the fitted feature statistics: on the client (as :func:`models.training.train_model`);
2. features: :func:`features.distributed.feature_partitions` on the workers; each partition keeps
   its label, weight and period beside its rows, on the cluster;
3. the model: :class:`lightgbm.DaskLGBMClassifier` (``tree_learner="data"``, one LightGBM process per
   worker that holds training rows; each worker listens on a free port it picks itself), with the
   parameters of :meth:`models.risk_model.RiskModel.lgb_params` and ``n_estimators`` rounds;
4. early stopping: ``lightgbm.dask`` has none (training hangs with it, LightGBM issues #3712, #6351),
   so the local booster (``.to_local()``) is cut at the best iteration chosen on the client from the
   validation rows with the rule :func:`lightgbm.early_stopping` applies on the single machine
   (first metric ``average_precision``, weighted, stop after ``early_stopping_rounds`` rounds
   without a strict improvement);
5. test-period evaluation: on the client, with the same functions as the single path.

The cluster model is not bit-identical to the single-machine one (data-parallel LightGBM builds
its histograms per worker and combines them; bin boundaries and bagging see each worker's rows):
its quality is, within the tolerance :data:`QUALITY_TOLERANCE` measured and tested on the same split.
Scoring with the same booster gives identical scores (:func:`score_on_cluster`).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Callable

import numpy as np
import polars as pl

from features.distributed import POSITION, feature_partitions
from features.history import History
from features.registry import categorical_columns, feature_columns
from models.baselines import baseline_scores
from models.metrics import source_hit_rates
from models.risk_model import RiskModel, predict_proba
from models.training import (
    TrainConfig,
    TrainResult,
    _sample_weights,
    calibration_report,
    evaluate_scores,
    fit_risk_calibrator,
    fit_feature_stats,
    labelled_frame,
    matched_history,
)

QUALITY_TOLERANCE = {"oracle/model/roc_auc": 0.05, "oracle/model/norm_precision_at_1": 0.17}
"""Largest absolute difference between the cluster-trained and the single-machine model on the same split (test period,
oracle stream) that ``tests/models/test_distributed.py`` accepts. Measured on its small simulated world (120 rounds, 15
leaves, seed 7; 2 training seizures, 12 illicit test containers): ROC-AUC 0.9535 on the cluster vs 0.9923 on one machine,
normalised precision at 1 % 0.917 vs 0.833; the single machine alone, seeds 7 to 11, spans ROC-AUC 0.953 to 0.992 and
normalised precision at 1 % 0.833 to 0.917. The cluster model differs from the single-machine one by about as much as
changing the seed does; 0.17 is two of the twelve illicit containers."""
LABEL, WEIGHT, PERIOD = "__ccp_label", "__ccp_weight", "period"
_EVALUATION_COLUMNS = ("period", "inspected", "label", "random_slice", "seized_kg", "illicit", "oracle_kg")


def _period_frame(frame: pl.DataFrame, period: str, pandas: bool):  # noqa: ANN202 - pandas or Polars frame
    """The rows of one period of a feature partition (on a worker): features, label and weight."""
    rows = frame.filter(pl.col(PERIOD) == period)
    return rows.select(*feature_columns(), LABEL, WEIGHT).to_pandas() if pandas else rows


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


def _gather_period(client, partitions: list, period: str) -> pl.DataFrame:  # noqa: ANN001
    frames = client.gather([client.submit(_period_frame, p, period, False, pure=False) for p in partitions])
    return pl.concat(frames, how="vertical").sort(POSITION)


def train_on_cluster(
    client,  # noqa: ANN001 - distributed.Client
    history: History,
    config: TrainConfig,
    *,
    oracle: pl.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
    partitions: int | None = None,
) -> TrainResult:
    """:func:`models.training.train_model` with features and training on the cluster (see the module docstring).

    Same rows, split, statistics, weights, parameters and evaluation; returns a :class:`TrainResult`
    whose ``model.booster_`` is a local LightGBM booster. ``partitions``: feature partitions
    (default two per worker thread).
    """
    say = progress or (lambda _: None)
    history, ignored_outcomes = matched_history(history)
    if ignored_outcomes:
        say(f"ignoring {ignored_outcomes:,} outcomes that do not match their manifest (unknown manifest, other container or port)")
    say("labelling arrivals")
    rows = labelled_frame(history, config.split, oracle=oracle).filter(pl.col(PERIOD).is_not_null())
    stats = fit_feature_stats(history, rows, config.split)
    y, w = _sample_weights(rows, config)
    rows = rows.with_columns(pl.Series(LABEL, y), pl.Series(WEIGHT, w))
    say(f"computing features for {rows.height:,} rows on the cluster")
    parts = feature_partitions(client, rows, history, stats, partitions=partitions, carry=(PERIOD, LABEL, WEIGHT))
    model = RiskModel(num_threads=config.num_threads, seed=config.seed, categorical_features=tuple(categorical_columns()), **config.model)
    say("training DaskLGBMClassifier on the cluster")
    booster = fit_on_cluster(client, parts, model)
    held_out = {p: _gather_period(client, parts, p) for p in ("valid", "test")}
    valid = held_out["valid"]
    best = best_iteration(booster, valid, valid[LABEL].to_numpy(), valid[WEIGHT].to_numpy(), rounds=model.early_stopping_rounds)
    model = fitted_model(config, booster, best)
    say(f"kept {best} of {booster.num_trees()} rounds (validation average precision); evaluating on the test period")
    return _result(model, stats, config, history, rows, held_out, ignored_outcomes)


def _evaluation_frame(rows: pl.DataFrame, features: pl.DataFrame, period: str) -> pl.DataFrame:
    """One period's rows as :func:`train_model` holds them: evaluation columns, then the feature frame's columns."""
    period_rows = rows.with_row_index(POSITION).filter(pl.col(PERIOD) == period).sort(POSITION)
    if not period_rows[POSITION].equals(features[POSITION]):
        raise AssertionError(f"{period} features are not aligned with the {period} rows")
    labels = period_rows.select(c for c in _EVALUATION_COLUMNS if c in rows.columns)
    return pl.concat([labels, features.drop(POSITION, PERIOD, LABEL, WEIGHT)], how="horizontal")


def _result(model: RiskModel, stats, config: TrainConfig, history: History, rows: pl.DataFrame, features: dict[str, pl.DataFrame], ignored: int) -> TrainResult:  # noqa: ANN001
    """The :class:`TrainResult` of a cluster-trained model: test-period evaluation and calibration as in :func:`train_model`."""
    valid, test = (_evaluation_frame(rows, features[p], p) for p in ("valid", "test"))
    scores = model.predict_proba(test.select(feature_columns()))[:, 1]
    calibrator = fit_risk_calibrator(valid, model.predict_proba(valid.select(feature_columns()))[:, 1], test, scores, config)
    test_manifests = rows.filter(pl.col(PERIOD) == "test").drop(LABEL, WEIGHT)
    scorers = {"model": scores, **baseline_scores(test_manifests, test, config.rule_profiles(), seed=config.seed)}
    booster = model.booster_
    importance = pl.DataFrame(
        {"feature": booster.feature_name(), "gain": booster.feature_importance("gain"), "splits": booster.feature_importance("split")}
    ).sort("gain", descending=True)
    counts = {}
    for period in ("train", "valid", "test"):
        frame = rows.filter(pl.col(PERIOD) == period)
        counts.update({f"{period}_rows": frame.height, f"{period}_inspected": int(frame["inspected"].sum()), f"{period}_seizures": int(frame["label"].fill_null(0).sum())})
    counts["ignored_outcomes"] = ignored
    test_ids = test_manifests.select("manifest_id", "port").unique()
    test_outcomes = history.outcomes.join(test_ids.lazy(), on=["manifest_id", "port"], how="semi").collect()
    return TrainResult(
        model, stats, config, evaluate_scores(test, scorers), test, scores, counts, importance, source_hit_rates(test_outcomes),
        calibrator=calibrator, calibration=calibration_report(test, scores, calibrator),
    )


def score_on_cluster(client, booster, features: pl.DataFrame, *, partitions: int | None = None) -> np.ndarray:  # noqa: ANN001
    """Probabilities of ``features`` from ``booster``, computed by row partitions on the cluster (identical to
    :func:`models.risk_model.predict_proba`: LightGBM scores each row on its own)."""
    from features.distributed import default_partitions

    n = partitions or default_partitions(client, features.height)
    size = max(1, -(-features.height // n))
    shared = client.scatter(booster, broadcast=True)
    futures = [client.submit(predict_proba, shared, features.slice(s, size), num_threads=1, pure=False) for s in range(0, features.height, size)]
    return np.concatenate(client.gather(futures)) if futures else np.zeros(0)
