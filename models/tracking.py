"""MLflow tracking and the model registry: training runs, the ``container-risk`` model and its ``champion`` alias.

The embedded default is a SQLite store ``mlruns/mlflow.db`` (tracking and
registry) with artifacts under ``mlruns/artifacts``. Models are logged as
native LightGBM boosters (text format, no pickle) with the fitted feature
statistics beside them in the same run.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl

MODEL_NAME = "container-risk"
CHAMPION = "champion"
EXPERIMENT = "container-risk-training"
STATS_ARTIFACT = "feature_stats.json"
CALIBRATOR_ARTIFACT = "calibrator.json"
"""The score calibrator (:class:`models.calibration.Calibrator`), bundled in the model artefact beside the statistics."""
INTEGRITY_ARTIFACT = "integrity_norms.json"
"""The seal/dwell norms of the training rows (:class:`features.integrity.IntegrityNorms`), bundled like the calibrator."""
MODEL_ARTIFACT = "model"
PRIMARY_METRIC = "labelled/model/pr_auc"
"""Promotion compares this metric (higher is better) on the challenger's held-out test period."""

os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")


def default_tracking_uri(root: Path | None = None) -> str:
    """``sqlite:///<abs>/mlruns/mlflow.db`` under ``root`` (default: the working directory)."""
    base = (root or Path.cwd()).resolve() / "mlruns"
    base.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{base / 'mlflow.db'}"


def artifact_root_for(tracking_uri: str) -> str:
    """Artifacts live beside a SQLite store (``<dir>/artifacts``); otherwise the server decides."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        root = db.parent / "artifacts"
        root.mkdir(parents=True, exist_ok=True)
        return root.resolve().as_uri()
    return ""


def configure(tracking_uri: str) -> "MlflowClient":  # noqa: F821
    """Point MLflow (tracking and registry) at ``tracking_uri`` and return a client."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(client, name: str = EXPERIMENT) -> str:
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    root = artifact_root_for(client.tracking_uri if hasattr(client, "tracking_uri") else "")
    return client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)


def code_version() -> str:
    """The git commit of the working tree when available, else the package version."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent)
        if out.returncode == 0:
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"ccp-targeting {metadata.version('ccp-targeting')}"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("polars", "lightgbm", "mlflow", "scikit-learn", "numpy", "ccp-targeting"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def model_sha256(booster: lgb.Booster) -> str:
    return hashlib.sha256(booster.model_to_string().encode()).hexdigest()


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def _bundle_files(result, bundle: Path) -> tuple[list[str], str, dict[str, str]]:  # noqa: ANN001 - models.training.TrainResult
    """Write the files that travel inside the model artefact: statistics, calibrator and integrity norms (when fitted).

    Returns the paths, the statistics' sha256 and the version tags of the others' sha256 (checked at load).
    """
    stats_path = bundle / STATS_ARTIFACT
    result.stats.save(stats_path)
    extra, tags = [str(stats_path)], {}
    if result.calibrator is not None:  # the calibrator travels with the booster: the champion's is always its own
        calibrator_path = bundle / CALIBRATOR_ARTIFACT
        calibrator_path.write_text(result.calibrator.to_json())
        extra.append(str(calibrator_path))
        tags = {"calibrator_sha256": hashlib.sha256(calibrator_path.read_bytes()).hexdigest(), "calibrator_method": result.calibrator.method}
    norms = getattr(result, "integrity_norms", None)
    if norms is not None:  # so do the integrity norms (the INTEGRITY slice of its lists)
        norms_path = bundle / INTEGRITY_ARTIFACT
        norms_path.write_text(norms.to_json())
        extra.append(str(norms_path))
        tags["integrity_norms_sha256"] = hashlib.sha256(norms_path.read_bytes()).hexdigest()
    return extra, hashlib.sha256(stats_path.read_bytes()).hexdigest(), tags


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    version: str
    model_sha256: str


def log_training_run(
    result,
    *,
    client,
    data_lineage: dict[str, Any],
    dataset_digest: str,
    artifacts_dir: Path,
    register: bool = True,
    run_name: str | None = None,
) -> LoggedModel:
    """Log a :class:`models.training.TrainResult` as one MLflow run and register the model.

    ``artifacts_dir`` holds files already written (plots, model card, statistics)
    and is logged as-is.
    """
    import mlflow
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    from features.registry import feature_columns

    experiment_id = ensure_experiment(client)
    booster = result.model.booster_
    params = {
        **{f"lgbm.{k}": v for k, v in result.model.lgb_params().items() if k != "metric"},
        "lgbm.best_iteration": result.model.best_iteration_,
        **{f"split.{k}": v for k, v in result.config.split.as_dict().items()},
        "unlabelled_weight": result.config.unlabelled_weight,
        "random_weight": result.config.random_weight,
        "seed": result.config.seed,
        "feature_count": len(feature_columns()),
    }
    warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted", category=UserWarning)
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.set_tags(
            {
                "code_version": code_version(),
                **{f"version.{k}": v for k, v in library_versions().items()},
                **{f"data.{k}": str(v) for k, v in data_lineage.items()},
                "model_sha256": model_sha256(booster),
            }
        )
        sample = result.test_rows.select(feature_columns()).head(2000)
        dataset = mlflow.data.from_polars(sample, source=str(data_lineage.get("lake", "lake")), name="arrivals", digest=dataset_digest[:32])
        mlflow.log_input(dataset, context="training")
        mlflow.log_metrics(
            _finite({**result.evaluation.headline(), **{f"count/{k}": v for k, v in result.counts.items()}, **result.source_metrics(), **calibration_metrics(result.calibration)})
        )
        mlflow.log_artifacts(str(artifacts_dir))
        signature = infer_signature(sample.head(50).to_pandas(), result.model.predict_proba(sample.head(50))[:, 1])
        with tempfile.TemporaryDirectory() as bundle:  # the statistics travel inside the model artefact
            extra, stats_sha256, calibrator_tags = _bundle_files(result, Path(bundle))
            info = mlflow.lightgbm.log_model(
                booster,
                name=MODEL_ARTIFACT,
                signature=signature,
                registered_model_name=MODEL_NAME if register else None,
                extra_files=extra,
            )
        version = str(info.registered_model_version) if register and info.registered_model_version is not None else ""
        if version:
            for key, value in {
                "feature_stats_sha256": stats_sha256,
                "model_sha256": model_sha256(booster),
                "test_period": f"{result.config.split.valid_end}..{result.config.split.test_end}",
                "run_id": run.info.run_id,
                **calibrator_tags,
            }.items():
                client.set_model_version_tag(MODEL_NAME, version, key, value)
        return LoggedModel(run.info.run_id, version, model_sha256(booster))


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model version with what serving needs: the booster and its statistics."""

    version: str
    run_id: str
    booster: lgb.Booster
    stats_json: str
    model_sha256: str
    metrics: dict[str, float]
    params: dict[str, str]
    aliases: tuple[str, ...]
    calibrator_json: str | None = None
    """The version's :class:`models.calibration.Calibrator` as JSON; ``None`` for a version registered without one."""
    integrity_norms_json: str | None = None
    """The version's :class:`features.integrity.IntegrityNorms` as JSON; ``None`` for a version registered before norms were bundled."""


def calibration_metrics(calibration: dict) -> dict[str, float]:
    """Flat ``calibration/<stream>/<uncalibrated|calibrated>/<measure>`` metrics of :func:`models.training.calibration_report`."""
    return {
        f"calibration/{stream}/{kind}/{name}": value
        for stream, entry in calibration.items()
        for kind in ("uncalibrated", "calibrated")
        for name, value in entry.get(kind, {}).items()
    }


def _bundled(local: Path, mv, artifact: str, tag: str, what: str) -> str | None:  # noqa: ANN001 - an MLflow ModelVersion
    """A file inside a downloaded model artefact, checked against the version's sha256 ``tag`` (``None``: neither file nor tag)."""
    path = local / "extra_files" / artifact
    expected = (mv.tags or {}).get(tag)
    is_, does = ("are", "do") if what.endswith("s") else ("is", "does")
    if not path.exists():
        if expected is not None:
            raise ValueError(f"model version {mv.version}: its {what} {is_} missing from the model artefact")
        return None
    if expected is not None and hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise ValueError(f"model version {mv.version}: its {what} {does} not match the sha256 recorded at registration")
    return path.read_text()


def _bundled_calibrator(local: Path, mv) -> str | None:  # noqa: ANN001 - an MLflow ModelVersion
    """The calibrator inside a downloaded model artefact, checked against the version's ``calibrator_sha256`` tag."""
    return _bundled(local, mv, CALIBRATOR_ARTIFACT, "calibrator_sha256", "calibrator")


def _bundled_integrity_norms(local: Path, mv) -> str | None:  # noqa: ANN001 - an MLflow ModelVersion
    """The integrity norms inside a downloaded model artefact, checked against the version's ``integrity_norms_sha256`` tag."""
    return _bundled(local, mv, INTEGRITY_ARTIFACT, "integrity_norms_sha256", "integrity norms")


def load_version(client, version: str | None = None, *, alias: str | None = CHAMPION) -> RegisteredModel:
    """Load a version (or the version an alias points at) as a native booster plus its statistics, calibrator and integrity norms, from one artefact.

    The model artefact holds the booster and, since statistics were bundled
    with it, ``extra_files/feature_stats.json`` (checked against the version's
    ``feature_stats_sha256`` tag; ``ValueError`` when they differ). A version
    logged before that reads the statistics of its run.
    """
    import mlflow.artifacts
    import mlflow.lightgbm

    mv = client.get_model_version(MODEL_NAME, version) if version else client.get_model_version_by_alias(MODEL_NAME, alias)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{MODEL_NAME}/{mv.version}", dst_path=tmp))
        booster = mlflow.lightgbm.load_model(str(local))
        calibrator_json = _bundled_calibrator(local, mv)
        integrity_norms_json = _bundled_integrity_norms(local, mv)
        bundled = local / "extra_files" / STATS_ARTIFACT
        if bundled.exists():
            stats_json = bundled.read_text()
            expected = (mv.tags or {}).get("feature_stats_sha256")
            if expected is not None and hashlib.sha256(bundled.read_bytes()).hexdigest() != expected:
                raise ValueError(f"model version {mv.version}: its feature statistics do not match the sha256 recorded at registration")
        else:
            path = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path=STATS_ARTIFACT, dst_path=tmp)
            stats_json = Path(path).read_text()
    if not isinstance(booster, lgb.Booster):
        raise TypeError(f"model version {mv.version} is not a native LightGBM booster")
    run = client.get_run(mv.run_id)
    return RegisteredModel(
        version=str(mv.version),
        run_id=mv.run_id,
        booster=booster,
        stats_json=stats_json,
        model_sha256=model_sha256(booster),
        metrics=dict(run.data.metrics),
        params=dict(run.data.params),
        aliases=tuple(mv.aliases or ()),
        calibrator_json=calibrator_json,
        integrity_norms_json=integrity_norms_json,
    )


def champion_version(client) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    except MlflowException:
        return None


def list_versions(client) -> pl.DataFrame:
    """Every registered version with aliases and headline metrics."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    except MlflowException:
        versions = []
    rows = []
    for found in sorted(versions, key=lambda v: int(v.version)):
        mv = client.get_model_version(MODEL_NAME, found.version)  # search results omit aliases
        metrics = client.get_run(mv.run_id).data.metrics
        rows.append(
            {
                "version": str(mv.version),
                "aliases": ",".join(mv.aliases or []),
                "created": str(mv.creation_timestamp),
                "test_period": (mv.tags or {}).get("test_period", ""),
                "pr_auc": metrics.get(PRIMARY_METRIC),
                "precision_at_1": metrics.get("labelled/model/precision_at_1"),
                "oracle_precision_at_1": metrics.get("oracle/model/precision_at_1"),
                "oracle_recall_at_5": metrics.get("oracle/model/recall_at_5"),
                "run_id": mv.run_id,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"pr_auc": pl.Float64, "precision_at_1": pl.Float64, "oracle_precision_at_1": pl.Float64, "oracle_recall_at_5": pl.Float64})


def set_champion(client, version: str, *, reason: str | None = None, forced: bool = False) -> None:
    """Move the ``champion`` alias to ``version`` (the last step of a promotion), recording why."""
    if reason:
        client.set_model_version_tag(MODEL_NAME, version, "promotion_reason", reason)
    client.set_model_version_tag(MODEL_NAME, version, "promotion_forced", str(forced).lower())
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, version)


def write_json(data: Any, path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    return path
