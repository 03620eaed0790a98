"""Train, log, register, compare and promote: the data scientist's workflow over a lake and an MLflow store."""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from features.history import History
from features.registry import feature_columns
from features.stats import FeatureStats
from models import plots
from models.dataset import TimeSplit
from models.metrics import RATES, rate_label
from models.risk_model import predict_proba
from models.tracking import (
    MODEL_NAME,
    PRIMARY_METRIC,
    STATS_ARTIFACT,
    LoggedModel,
    champion_version,
    load_version,
    log_training_run,
    set_champion,
    write_json,
)
from models.training import Evaluation, TrainConfig, TrainResult, evaluate_scores, labelled_frame, matched_history, train_model

LAKE_TABLES = ("manifests", "events", "outcomes", "alerts")


def lake_digest(lake) -> str:
    """sha256 over the committed data files of every input table (the training data's identity)."""
    digest = hashlib.sha256()
    for table in LAKE_TABLES:
        digest.update(f"{table}:{lake.data_sha256(table)}\n".encode())
    return digest.hexdigest()


def arrival_range(history: History) -> tuple[date, date]:
    """First and last arrival (ETA) dates in the history."""
    bounds = history.manifests.select(pl.col("eta").min().alias("lo"), pl.col("eta").max().alias("hi")).collect()
    if bounds["lo"][0] is None:
        raise ValueError("the lake holds no manifests: ingest data first")
    return bounds["lo"][0].date(), bounds["hi"][0].date()


def lineage(lake, history: History, split: TimeSplit) -> dict:
    first, last = arrival_range(history)
    counts = {t: history_count(getattr(history, t)) for t in LAKE_TABLES}
    return {
        "lake": str(lake.root.resolve()),
        "lake_log_seq": lake.last_seq(),
        "arrivals_from": first.isoformat(),
        "arrivals_to": last.isoformat(),
        **{f"rows_{t}": n for t, n in counts.items()},
        **{f"sha256_{t}": lake.data_sha256(t) for t in LAKE_TABLES},
        **{f"split_{k}": v for k, v in split.as_dict().items()},
    }


def history_count(frame: pl.LazyFrame) -> int:
    return int(frame.select(pl.len()).collect().item())


def model_card(result: TrainResult, data: dict, logged_sha: str) -> str:
    """Markdown model card: data, split, metrics beside baselines, top features, bias handling, limits."""
    table = result.evaluation.table()
    lines = [
        f"# Model card: {MODEL_NAME}",
        "",
        "LightGBM (native booster, binary objective) scoring the probability that an inspection of a container finds contraband.",
        f"Model text sha256: `{logged_sha}`.",
        "",
        "## Data",
        "",
        f"- Lake: `{data['lake']}` (log sequence {data['lake_log_seq']}), arrivals {data['arrivals_from']} to {data['arrivals_to']}.",
        f"- Rows: manifests {data['rows_manifests']:,}, events {data['rows_events']:,}, outcomes {data['rows_outcomes']:,}, alerts {data['rows_alerts']:,}.",
        f"- Split by arrival date: train {result.config.split.train_start} to {result.config.split.train_end} (exclusive), "
        f"validation to {result.config.split.valid_end}, test to {result.config.split.test_end}; earlier arrivals only warm up entity history.",
        f"- Counts: " + ", ".join(f"{k} {v:,}" for k, v in result.counts.items()) + ".",
        "",
        "## Labels and selection bias",
        "",
        "Only inspected containers have labels (1 = seizure). Uninspected containers are used as negatives with weight "
        f"{result.config.unlabelled_weight}; random-slice inspections (the only unbiased sample) have weight {result.config.random_weight}. "
        "Metrics are reported separately on all labelled test rows (biased towards what rules selected), on the random slice "
        "(unbiased, small) and, for simulated worlds, against the oracle over all test traffic.",
        "",
        "## Test-period metrics (model beside baselines)",
        "",
    ]
    cols = ["stream", "scorer", "n", "positives", "base_rate", *[f"precision@{rate_label(r)}" for r in (1.0, 5.0)], "recall@5", "pr_auc", "roc_auc"]
    cols = [c for c in cols if c in table.columns]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for row in table.select(cols).iter_rows():
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    lines += ["", "## Hit rate per selection source (inspections of test-period arrivals)", ""]
    lines.append("| source | inspections | seizures | hit rate | seized kg |")
    lines.append("|---|---|---|---|---|")
    for row in result.source_hit_rates.iter_rows():
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    lines += ["", "## Most important features (total gain)", ""]
    for row in result.importance.head(15).iter_rows(named=True):
        lines.append(f"- `{row['feature']}`: {row['gain']:.1f}")
    lines += [
        "",
        "## Known limits",
        "",
        "- Trained on past seizures: methods never seized before are learned only through generic indicators (new traders, routes, dwell).",
        "- Labels are noisy: an inspection can miss contraband (recorded as no finding).",
        "- Traffickers adapt after seizures; retrain regularly and keep the random exploration slice so drift stays visible.",
        "- The random-slice stream is small: its metrics have wide uncertainty.",
        "- The raw score is fitted to the weighted training mix; officers see the calibrated probability and its band (below).",
    ]
    return "\n".join(lines + calibration_card(result)) + "\n"


def calibration_card(result: TrainResult) -> list[str]:
    """Model-card lines: the calibrator, Brier/ECE before and after per test stream, band hit rates."""
    from models.calibration import RISK_BANDS

    cal = result.calibrator
    lines = ["", "## Calibrated risk", ""]
    if cal is None:
        return lines + ["No calibrator: the validation period has no seizure (or only seizures) to fit one; lists made with this version are NOT_RATED."]
    lines += [f"Calibrator: {cal.method}, fitted on the {cal.fitted_on} ({cal.rows:,} rows, {cal.positives} seizures); chosen by Brier score on the test period.",
              "Bands: " + ", ".join(f"{band} >= {floor:g}" for band, floor in RISK_BANDS) + ".", "",
              "| stream | n | positives | Brier raw | Brier calibrated | ECE raw | ECE calibrated | mean raw | mean calibrated | observed |", "|" + "---|" * 10]
    for stream, entry in result.calibration.items():
        raw, calibrated = entry["uncalibrated"], entry.get("calibrated", {})
        lines.append("| " + " | ".join([stream, *(_fmt(v) for v in (raw["n"], raw["positives"], raw["brier"], calibrated.get("brier"), raw["ece"], calibrated.get("ece"),
                                                                       raw["mean_predicted"], calibrated.get("mean_predicted"), raw["observed_rate"]))]) + " |")
    return lines


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if not np.isfinite(value) else f"{value:.4g}"
    return str(value)


def write_artifacts(result: TrainResult, out: Path, data: dict, logged_sha: str) -> None:
    """Plots, importance, statistics, metric table and model card into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    result.stats.save(out / STATS_ARTIFACT)
    result.importance.write_csv(out / "feature_importance.csv")
    plots.feature_importance_plot(result.importance, out / "feature_importance.png")
    table = result.evaluation.table()
    table.write_csv(out / "metrics.csv")
    write_json(table.to_dicts(), out / "metrics.json")
    write_json({"features": feature_columns()}, out / "features.json")
    test = result.test_rows
    for stream, mask, labels in _plot_streams(test):
        curves = {"model": (result.test_scores[mask], labels[mask])}
        plots.pr_curve_plot(curves, out / f"pr_curve_{stream}.png", title=f"Precision-recall, {stream} test stream")
        plots.lift_plot(curves, out / f"lift_curve_{stream}.png", title=f"Cumulative gains, {stream} test stream")
    inspected = test["inspected"].to_numpy()
    if inspected.sum():
        plots.reliability_plot(result.test_scores[inspected], test["label"].fill_null(0).to_numpy()[inspected], out / "reliability.png", title="Reliability, labelled test rows")
    write_calibration_artifacts(result, out)
    (out / "model_card.md").write_text(model_card(result, data, logged_sha))


def write_calibration_artifacts(result: TrainResult, out: Path) -> list[Path]:
    """``calibration.json`` (calibrator, test-period measures and band hit rates) and a reliability plot per test stream (raw and calibrated)."""
    write_json({"calibrator": None if result.calibrator is None else json.loads(result.calibrator.to_json()), "test": result.calibration}, out / "calibration.json")
    test, written = result.test_rows, []
    calibrated = None if result.calibrator is None else result.calibrator.predict(result.test_scores)
    streams = {"labelled": test["inspected"].to_numpy(), "random_slice": test["random_slice"].to_numpy()}
    if "illicit" in test.columns:
        streams["oracle"] = np.ones(test.height, dtype=bool)
    for stream, mask in streams.items():
        if not mask.any():
            continue
        truth = test["illicit"].to_numpy() if stream == "oracle" else test["label"].fill_null(0).to_numpy()
        curves = {"model score (raw)": (result.test_scores[mask], truth[mask])}
        if calibrated is not None:
            curves["calibrated probability"] = (calibrated[mask], truth[mask])
        written.append(plots.calibration_plot(curves, out / f"reliability_{stream}.png", title=f"Reliability, {stream} test stream ({int(mask.sum()):,} rows)"))
    return written


def _plot_streams(test: pl.DataFrame):
    labelled = test["inspected"].to_numpy()
    yield "labelled", labelled, test["label"].fill_null(0).to_numpy().astype(bool)
    if "illicit" in test.columns:
        yield "oracle", np.ones(test.height, dtype=bool), test["illicit"].to_numpy()


def train_and_register(
    lake,
    client,
    config: TrainConfig,
    *,
    oracle: pl.DataFrame | None = None,
    register: bool = True,
    progress: Callable[[str], None] | None = None,
    cluster=None,  # noqa: ANN001 - distributed.Client
    negative_fraction: float = 1.0,
    scratch: Path | None = None,
) -> tuple[TrainResult, LoggedModel]:
    """Train on the lake, log the run with its artifacts and register the model version.

    With ``cluster`` (a ``distributed.Client``) features and training run on that Dask cluster
    (:func:`models.distributed.train_on_cluster`, with ``negative_fraction`` and ``scratch``); the
    logged model is a local booster like any other, and the run's parameters record
    ``training.path = cluster`` and ``training.negative_fraction``. Without a cluster,
    ``negative_fraction`` must be 1 (``ValueError``).
    """
    history = History.from_lake(lake)
    if cluster is not None:
        from models.distributed import train_on_cluster

        result = train_on_cluster(cluster, history, config, oracle=oracle, progress=progress, negative_fraction=negative_fraction, scratch=scratch)
    elif negative_fraction != 1:
        raise ValueError(f"negative down-sampling (fraction {negative_fraction:g}) is done by the cluster path only: give a cluster")
    else:
        result = train_model(history, config, oracle=oracle, progress=progress)
    data = lineage(lake, history, config.split)
    with tempfile.TemporaryDirectory() as tmp:
        sha = result.model.model_sha256()
        write_artifacts(result, Path(tmp), data, sha)
        logged = log_training_run(result, client=client, data_lineage=data, dataset_digest=lake_digest(lake), artifacts_dir=Path(tmp), register=register)
    if cluster is not None:  # how the model was trained: on the run, beside the LightGBM parameters
        client.log_param(logged.run_id, "training.path", "cluster")
        client.log_param(logged.run_id, "training.negative_fraction", f"{negative_fraction:g}")
    return result, logged


def default_split(lake, *, warmup_days: int = 30) -> TimeSplit:
    first, last = arrival_range(History.from_lake(lake))
    return TimeSplit.default_for(first, last, warmup_days=warmup_days)


def split_from_params(params: dict[str, str]) -> TimeSplit:
    """The split a registered version was trained with (from its run parameters)."""
    return TimeSplit(*(date.fromisoformat(params[f"split.{k}"]) for k in ("train_start", "train_end", "valid_end", "test_end")))


def evaluate_versions(lake, client, versions: list[str], split: TimeSplit, *, oracle: pl.DataFrame | None = None) -> dict[str, Evaluation]:
    """Evaluate registered versions on the same test period of the lake (each with its own statistics)."""
    history, _ = matched_history(History.from_lake(lake))  # labels only from outcomes that match their manifest
    rows = labelled_frame(history, split, oracle=oracle).filter(pl.col("period") == "test")
    from features.pipeline import build_features

    out = {}
    for version in versions:
        model = load_version(client, version)
        feats = build_features(rows.drop("period"), history, FeatureStats.from_json(model.stats_json))
        scores = predict_proba(model.booster, feats)
        test = pl.concat([rows.select([c for c in ("inspected", "label", "random_slice", "seized_kg", "illicit", "oracle_kg") if c in rows.columns]), feats], how="horizontal")
        out[version] = evaluate_scores(test, {"model": scores})
    return out


def _metric(value: float | None) -> str:
    """A metric for a promotion message; ``n/a`` when the stream is absent (no labelled rows in the period)."""
    return "n/a" if value is None else f"{value:.4f}"


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    version: str
    previous: str | None
    challenger_metric: float | None
    champion_metric: float | None
    metric: str
    message: str


def promote(lake, client, version: str, *, force: bool = False, reason: str | None = None, tolerance: float = 0.0) -> PromotionDecision:
    """Move ``champion`` to ``version`` unless it is worse than the current champion on the challenger's test period.

    Both are re-evaluated on the same held-out period (the challenger's), each
    with its own fitted statistics. ``force`` overrides a refusal and needs a
    ``reason``, recorded as a tag. Moving the alias is the last step: a crash
    before it leaves the old champion serving.
    """
    if force and not reason:
        raise ValueError("--force needs --reason")
    challenger = load_version(client, version)
    previous = champion_version(client)
    if previous == str(version):
        return PromotionDecision(False, str(version), previous, None, None, PRIMARY_METRIC, f"version {version} is already the champion")
    if previous is None:
        set_champion(client, str(version), reason=reason or "first champion", forced=force)
        return PromotionDecision(True, str(version), None, None, None, PRIMARY_METRIC, f"version {version} is the first champion")
    split = split_from_params(challenger.params)
    evaluations = evaluate_versions(lake, client, [previous, str(version)], split)
    ours = evaluations[str(version)].headline().get(PRIMARY_METRIC)
    theirs = evaluations[previous].headline().get(PRIMARY_METRIC)
    worse = ours is None or theirs is None or not np.isfinite(ours) or (np.isfinite(theirs) and ours < theirs - tolerance)
    numbers = f"{PRIMARY_METRIC} on {split.valid_end}..{split.test_end}: challenger v{version} {_metric(ours)} vs champion v{previous} {_metric(theirs)}"
    if worse and not force:
        comparable = ours is not None and theirs is not None and np.isfinite(ours)
        why = "challenger is worse" if comparable else "the metric is undefined on this period (no labelled test rows, or no seizures among them)"
        return PromotionDecision(False, str(version), previous, ours, theirs, PRIMARY_METRIC, f"refused: {why}; {numbers}")
    set_champion(client, str(version), reason=reason or numbers, forced=bool(worse and force))
    verb = "forced" if worse else "promoted"
    return PromotionDecision(True, str(version), previous, ours, theirs, PRIMARY_METRIC, f"{verb}: {numbers}")


def compare_versions(lake, client, a: str, b: str, *, oracle: pl.DataFrame | None = None) -> pl.DataFrame:
    """Metric table of two versions on the same test period (version ``b``'s)."""
    split = split_from_params(load_version(client, b).params)
    evaluations = evaluate_versions(lake, client, [a, b], split, oracle=oracle)
    rows = []
    for version, evaluation in evaluations.items():
        for row in evaluation.table().iter_rows(named=True):
            rows.append({"version": version, **row})
    keep = ["version", "stream", "n", "positives", *(f"precision@{rate_label(r)}" for r in RATES), *(f"recall@{rate_label(r)}" for r in RATES), "pr_auc", "roc_auc", "brier"]
    frame = pl.DataFrame(rows)
    return frame.select([c for c in keep if c in frame.columns])
