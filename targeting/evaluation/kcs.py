"""The public customs declaration benchmark (KCS): the engine's features, model and metrics on declaration data.

:func:`run_kcs_benchmark` reads the train, validation and test files
(:func:`targeting.evaluation.kcs_features.read_kcs`), fits the feature statistics on the training
file, builds point-in-time features over all three files with the test
labels hidden, trains the engine's :class:`models.risk_model.RiskModel` with
early stopping, and scores the test file with
:func:`models.metrics.ranking_metrics` (label ``Fraud``; ties broken by
declaration ID). :func:`log_kcs_run` records the run in MLflow;
:func:`benchmark_document` is the JSON written by ``targeting benchmark kcs``.

What each split may read
------------------------
- training rows: labels of training rows dated strictly earlier;
- validation rows (early stopping): labels of training and validation rows dated strictly earlier;
- test rows: labels of training and validation rows dated strictly earlier,
  and the test file's own earlier rows as declarations (counts) but never
  their labels.

Without a validation file, the last ``tail_days`` of the training file are
the early-stopping slice. With ``refit`` the model is then trained again on
every labelled row (train, plus validation when given) for the number of
rounds early stopping chose.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from targeting.evaluation.kcs_features import (
    DATE,
    DEFAULT_FAMILIES,
    ID,
    LABEL,
    PARTY_FAMILIES,
    KcsFamily,
    KcsInputError,
    KcsStats,
    build_kcs_features,
    categorical_columns,
    feature_columns,
    fit_kcs_stats,
    hide_labels,
    read_kcs,
)
from models.metrics import ranking_metrics
from models.risk_model import RiskModel

EXPERIMENT = "kcs-benchmark"
RATES: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
REQUIRED_METRICS: tuple[str, ...] = (
    *(f"{kind}@{r:g}" for kind in ("precision", "recall", "lift") for r in RATES),
    "roc_auc",
    "pr_auc",
    "base_rate",
)
"""Keys every metrics block of the benchmark document carries."""

PAPER_REFERENCE: dict[str, Any] = {
    "source": "Jeong et al., Customs Import Declaration Datasets, arXiv:2208.02484, Table 3",
    "test_split": "2021Q2 (held out)",
    "lightgbm": {"precision@5": 0.762, "precision@10": 0.641},
    "xgboost": {"precision@5": 0.675, "precision@10": 0.579},
}

MODEL_DEFAULTS: dict[str, Any] = {
    "num_leaves": 31,
    "learning_rate": 0.05,
    "n_estimators": 3000,
    "min_child_samples": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
    "early_stopping_rounds": 100,
}
"""RiskModel settings of the benchmark (chosen on 2020 -> 2021-01..02 -> 2021-03, never on the held-out quarter)."""


@dataclass(frozen=True)
class KcsBenchmarkConfig:
    """What a benchmark run does.

    Parameters
    ----------
    tail_days
        Without a validation file, training rows of the last ``tail_days`` days are the early-stopping slice.
    refit
        Train again on all labelled rows for the early-stopped number of rounds.
    value_history
        Include the repeat-declared-value families (:data:`targeting.evaluation.kcs_features.VALUE_FAMILIES`);
        ``False`` keeps only the party, commodity and office families.
    split_date
        When set, validation rows dated on or after it become the test set (no test file then).
    seed
        LightGBM seed (training is deterministic).
    num_threads
        LightGBM threads. One is the default: on ~40,000 rows a single thread is
        as fast as two and, unlike two, is not slowed down by other busy processes.
    model
        Overrides of :data:`MODEL_DEFAULTS` (any :class:`RiskModel` argument).
    """

    tail_days: int = 45
    refit: bool = True
    value_history: bool = True
    split_date: date | None = None
    seed: int = 7
    num_threads: int = 1
    model: dict = field(default_factory=dict)

    def families(self) -> tuple[KcsFamily, ...]:
        return DEFAULT_FAMILIES if self.value_history else PARTY_FAMILIES

    def model_settings(self) -> dict[str, Any]:
        return {**MODEL_DEFAULTS, **self.model}


@dataclass(frozen=True)
class InputFile:
    """One input file: its role, path, sha256 and what was taken from it."""

    role: str
    path: str
    sha256: str
    rows: int
    frauds: int
    first_date: str
    last_date: str

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "rows": self.rows, "frauds": self.frauds, "dates": f"{self.first_date}..{self.last_date}"}


@dataclass
class KcsBenchmarkResult:
    """A fitted benchmark: model, statistics, metrics of the early-stopping and test rows, provenance."""

    model: RiskModel
    stats: KcsStats
    config: KcsBenchmarkConfig
    test_metrics: dict[str, float]
    stopping_metrics: dict[str, float]
    inputs: dict[str, InputFile]
    counts: dict[str, int]
    early_stopping: str
    best_iteration: int
    importance: pl.DataFrame
    test_frame: pl.DataFrame
    test_scores: np.ndarray


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(role: str, path: Path, frame: pl.DataFrame, sha: str) -> InputFile:
    return InputFile(role, str(path), sha, frame.height, int(frame[LABEL].sum()), str(frame[DATE].min()), str(frame[DATE].max()))


def load_inputs(
    train: Path, valid: Path | None, test: Path | None, *, split_date: date | None = None, n_rows: dict[str, int] | None = None
) -> tuple[dict[str, pl.DataFrame], dict[str, InputFile]]:
    """Read and check the files; return frames by role (``train``, ``valid`` optional, ``test``) and their descriptions.

    Raises
    ------
    KcsInputError
        Missing columns or bad values (see :func:`targeting.evaluation.kcs_features.map_kcs_columns`), no test
        set, both a test file and ``split_date``, or declaration IDs shared between files.
    """
    n_rows = n_rows or {}
    if (test is None) == (split_date is None):
        raise KcsInputError("give either a test file or a split date for the validation file, not both and not neither")
    if split_date is not None and valid is None:
        raise KcsInputError("a split date needs a validation file to split")
    frames: dict[str, pl.DataFrame] = {}
    inputs: dict[str, InputFile] = {}
    for role, path in (("train", train), ("valid", valid), ("test", test)):
        if path is None:
            continue
        frames[role] = read_kcs(path, n_rows=n_rows.get(role))
        inputs[role] = _describe(role, Path(path).resolve(), frames[role], file_sha256(path))
    if split_date is not None:
        whole = frames.pop("valid")
        frames["valid"] = whole.filter(pl.col(DATE) < split_date)
        frames["test"] = whole.filter(pl.col(DATE) >= split_date)
        source = inputs.pop("valid")
        for role in ("valid", "test"):
            inputs[role] = _describe(role, Path(source.path), frames[role], source.sha256)
        if frames["valid"].height == 0 or frames["test"].height == 0:
            raise KcsInputError(f"split date {split_date} leaves an empty validation or test part of {source.path}")
    ids = {role: set(frame[ID].to_list()) for role, frame in frames.items()}
    roles = list(frames)
    for i, a in enumerate(roles):
        for b in roles[i + 1 :]:
            shared = ids[a] & ids[b]
            if shared:
                raise KcsInputError(f"the {a} and {b} files share {len(shared)} declaration ID(s), e.g. {min(shared)}")
    return frames, inputs


def _metrics(scores: np.ndarray, frame: pl.DataFrame) -> dict[str, float]:
    report = ranking_metrics(scores, frame[LABEL].to_numpy(), tiebreak=frame[ID].to_numpy(), rates=RATES, probabilities=True)
    return report.metrics


def _importance(model: RiskModel) -> pl.DataFrame:
    booster = model.booster_
    return pl.DataFrame(
        {"feature": booster.feature_name(), "gain": booster.feature_importance("gain").astype(float), "splits": booster.feature_importance("split").astype(float)}
    ).sort("gain", descending=True)


def run_kcs_benchmark(
    train: Path,
    valid: Path | None,
    test: Path | None,
    *,
    config: KcsBenchmarkConfig = KcsBenchmarkConfig(),
    n_rows: dict[str, int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> KcsBenchmarkResult:
    """Train on the training file and evaluate on the test file (see the module docstring for what each split reads).

    Parameters
    ----------
    train, valid, test
        KCS files. ``valid`` may be None (early stopping on the training tail);
        ``test`` is None only with ``config.split_date``.
    config
        The run's settings.
    n_rows
        Read only the first rows of a file, by role (``{"train": 3000}``); for tests.
    progress
        Called with a short message before each step.
    """
    say = progress or (lambda _: None)
    say("reading files")
    frames, inputs = load_inputs(train, valid, test, split_date=config.split_date, n_rows=n_rows)
    train_rows = frames["train"]
    if "valid" in frames:
        fit_rows, stop_rows, early_stopping = train_rows, frames["valid"], "validation file"
        if config.split_date is not None:
            early_stopping = f"validation file before {config.split_date}"
    else:
        cutoff = train_rows[DATE].max() - timedelta(days=config.tail_days - 1)
        fit_rows = train_rows.filter(pl.col(DATE) < cutoff)
        stop_rows = train_rows.filter(pl.col(DATE) >= cutoff)
        early_stopping = f"training tail from {cutoff} ({config.tail_days} days)"
    if fit_rows.height == 0 or stop_rows.height == 0:
        raise KcsInputError("the training and early-stopping parts must both be non-empty")
    say("fitting feature statistics on the training file")
    stats = fit_kcs_stats(train_rows)
    say("building point-in-time features")
    labelled = pl.concat([frames[r] for r in ("train", "valid") if r in frames])
    everything = pl.concat([labelled, hide_labels(frames["test"])])
    features = build_kcs_features(everything, stats, families=config.families())
    columns = feature_columns(config.families())

    def rows_of(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(ID).join(features, on=ID, how="left", maintain_order="left").select(columns)

    settings = config.model_settings()
    say(f"training on {fit_rows.height:,} rows, early stopping on {stop_rows.height:,}")
    model = RiskModel(num_threads=config.num_threads, seed=config.seed, categorical_features=tuple(categorical_columns()), **settings)
    model.fit(rows_of(fit_rows), fit_rows[LABEL].to_numpy(), eval_set=[(rows_of(stop_rows), stop_rows[LABEL].to_numpy())])
    best = model.best_iteration_
    stopping_metrics = _metrics(model.predict_proba(rows_of(stop_rows))[:, 1], stop_rows)
    if config.refit:
        say(f"refitting on all {labelled.height:,} labelled rows for {best} rounds")
        model = RiskModel(
            num_threads=config.num_threads, seed=config.seed, categorical_features=tuple(categorical_columns()), **{**settings, "n_estimators": best}
        )
        model.fit(rows_of(labelled), labelled[LABEL].to_numpy())
    say("scoring the test rows")
    test_rows = frames["test"]
    scores = model.predict_proba(rows_of(test_rows))[:, 1]
    counts = {"fit_rows": fit_rows.height, "stopping_rows": stop_rows.height, "test_rows": test_rows.height, "features": len(columns)}
    if config.refit:
        counts["refit_rows"] = labelled.height
    return KcsBenchmarkResult(
        model=model,
        stats=stats,
        config=config,
        test_metrics=_metrics(scores, test_rows),
        stopping_metrics=stopping_metrics,
        inputs=inputs,
        counts=counts,
        early_stopping=early_stopping,
        best_iteration=best,
        importance=_importance(model),
        test_frame=test_rows,
        test_scores=scores,
    )


def _clean(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (float(v) if np.isfinite(v) else None) for k, v in metrics.items()}


def benchmark_document(result: KcsBenchmarkResult, *, run_id: str | None = None) -> dict[str, Any]:
    """The JSON document of a run: test metrics (every key of :data:`REQUIRED_METRICS`), provenance and the paper's figures."""
    config = result.config
    return {
        "benchmark": "kcs",
        "label": "Fraud",
        "test": _clean(result.test_metrics),
        "early_stopping": {"rows": result.early_stopping, "metrics": _clean(result.stopping_metrics)},
        "files": {role: f.as_dict() for role, f in result.inputs.items()},
        "model": {
            "class": "models.risk_model.RiskModel",
            "best_iteration": result.best_iteration,
            "refit": config.refit,
            "settings": {**config.model_settings(), "seed": config.seed, "num_threads": config.num_threads},
            "model_sha256": result.model.model_sha256(),
            "features": result.model.n_features_in_,
            "families": [f.name for f in config.families()],
            "stats_sha256": result.stats.sha256(),
        },
        "counts": result.counts,
        "top_features": result.importance.head(15)["feature"].to_list(),
        "paper": PAPER_REFERENCE,
        "mlflow_run_id": run_id,
    }


def _metric_name(name: str) -> str:
    return name.replace("@", "_at_")


def log_kcs_run(result: KcsBenchmarkResult, client, *, run_name: str | None = None) -> str:
    """Log a benchmark as one MLflow run in the ``kcs-benchmark`` experiment; return its run ID.

    Params: model settings, early stopping, feature families. Metrics: ``test/...``
    and ``early_stopping/...``. Inputs: the three files as datasets whose digest is
    the file's sha256 (also tags ``data.<role>.sha256``). Artifacts: the native
    LightGBM booster (logged model ``model``, loadable with ``mlflow.lightgbm.load_model``, and
    ``booster.txt``, its text format), the statistics and the benchmark JSON.
    The model is not registered (it is not a container-risk model).
    """
    import mlflow
    import mlflow.lightgbm

    from models.tracking import code_version, ensure_experiment, library_versions, model_sha256

    experiment_id = ensure_experiment(client, EXPERIMENT)
    config = result.config
    params = {
        **{f"lgbm.{k}": v for k, v in result.model.lgb_params().items() if k not in ("metric",)},
        "lgbm.best_iteration": result.best_iteration,
        "lgbm.early_stopping_rounds": config.model_settings()["early_stopping_rounds"],
        "early_stopping": result.early_stopping,
        "refit": config.refit,
        "value_history": config.value_history,
        "split_date": str(config.split_date) if config.split_date else "",
        "families": ",".join(f.name for f in config.families()),
        "feature_count": result.model.n_features_in_,
        **{f"rows.{k}": v for k, v in result.counts.items()},
    }
    warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted", category=UserWarning)
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
    booster = result.model.booster_
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.set_tags(
            {
                "benchmark": "kcs",
                "code_version": code_version(),
                **{f"version.{k}": v for k, v in library_versions().items()},
                **{f"data.{role}.sha256": f.sha256 for role, f in result.inputs.items()},
                **{f"data.{role}.path": f.path for role, f in result.inputs.items()},
                "model_sha256": model_sha256(booster),
            }
        )
        for role, info in result.inputs.items():
            sample = pl.DataFrame({"role": [role], "rows": [info.rows], "dates": [f"{info.first_date}..{info.last_date}"]})
            dataset = mlflow.data.from_polars(sample, source=info.path, name=f"kcs-{role}", digest=info.sha256[:32])
            mlflow.log_input(dataset, context={"train": "training", "valid": "validation", "test": "testing"}[role])
        metrics = {f"test/{_metric_name(k)}": v for k, v in result.test_metrics.items()}
        metrics |= {f"early_stopping/{_metric_name(k)}": v for k, v in result.stopping_metrics.items()}
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        mlflow.log_text(result.stats.to_json(), "kcs_stats.json")
        mlflow.log_dict(benchmark_document(result, run_id=run.info.run_id), "benchmark.json")
        mlflow.log_text(result.importance.write_csv(), "feature_importance.csv")
        mlflow.log_text(booster.model_to_string(), "booster.txt")
        mlflow.lightgbm.log_model(booster, name="model")
        return run.info.run_id
