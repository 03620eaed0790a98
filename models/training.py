"""Training and evaluation on a time split, with baselines on the same test period.

Selection bias. Only inspected containers have labels, and most inspections
were chosen by rules and watchlists, so labelled rows over-represent what the
rules target. The model handles this in three ways:

1. uninspected containers enter training as negatives with a small weight
   (``unlabelled_weight``): with a base rate well under 1%, an uninspected
   container is almost always clean, and this keeps the model calibrated to
   the whole traffic instead of only to what rules picked;
2. random-slice inspections, the only unbiased sample, get a larger weight
   (``random_weight``, an inverse-propensity-style correction);
3. evaluation is reported separately on the random-slice stream (unbiased but
   small), on all labelled test rows (large but biased), and, for simulated
   worlds, against the oracle over all test traffic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Sequence

import numpy as np
import polars as pl

from features.data.handling import matching_outcomes
from features.candidates import decision_time
from features.history import History, with_derived_columns
from features.integrity import IntegrityNorms, fit_integrity_norms, integrity_inputs
from features.pipeline import build_features
from features.registry import categorical_columns, feature_columns
from features.rules.language import RuleProfile, default_rule_profiles
from features.stats import FeatureStats, fit_stats
from models.baselines import baseline_scores
from models.dataset import SERVED_DIRECTIONS, TimeSplit, served_rows, with_labels, with_oracle
from models.calibration import Calibrator, CalibrationError, band_hit_rates, calibration_measures, choose_calibrator
from models.metrics import RankingReport, ranking_metrics, source_hit_rates
from models.risk_model import RiskModel

STREAMS = ("labelled", "random_slice", "oracle")


@dataclass(frozen=True)
class TrainConfig:
    """What a training run does. ``unlabelled_weight`` and ``random_weight``: see the module docstring."""

    split: TimeSplit
    unlabelled_weight: float = 0.05
    random_weight: float = 5.0
    seed: int = 7
    num_threads: int = 2
    model: dict = field(default_factory=dict)
    rules: tuple[RuleProfile, ...] = ()
    calibration_rows: str = "inspected"
    """Validation-period rows the calibrator is fitted on: ``inspected`` (every exam) or ``random_slice`` (see :func:`fit_risk_calibrator`)."""

    def rule_profiles(self) -> list[RuleProfile]:
        return list(self.rules) if self.rules else default_rule_profiles()


@dataclass
class Evaluation:
    """Metrics per stream and scorer on the test period."""

    reports: dict[str, dict[str, RankingReport]]

    def table(self) -> pl.DataFrame:
        rows = []
        for stream, scorers in self.reports.items():
            for scorer, report in scorers.items():
                rows.append({"stream": stream, "scorer": scorer, **report.metrics})
        return pl.DataFrame(rows)

    def headline(self) -> dict[str, float]:
        """Flat metric dict for tracking: ``<stream>/<scorer>/<metric>`` ('@n' written as '_at_n')."""
        out = {}
        for stream, scorers in self.reports.items():
            for scorer, report in scorers.items():
                for name, value in report.metrics.items():
                    out[f"{stream}/{scorer}/{name.replace('@', '_at_')}"] = value
        return out


@dataclass
class TrainResult:
    model: RiskModel
    stats: FeatureStats
    config: TrainConfig
    evaluation: Evaluation
    test_rows: pl.DataFrame
    test_scores: np.ndarray
    counts: dict[str, int]
    importance: pl.DataFrame
    source_hit_rates: pl.DataFrame
    """Hit rate per selection source of the inspections of test-period arrivals (:func:`models.metrics.source_hit_rates`)."""
    calibrator: Calibrator | None = None
    """Score -> probability of a finding, fitted on the validation period (``None``: too few seizures there)."""
    calibration: dict = dataclasses.field(default_factory=dict)
    """Test-period calibration figures per stream and per ``uncalibrated``/``calibrated`` (:func:`calibration_report`)."""
    integrity_norms: IntegrityNorms | None = None
    """Seal/dwell norms of the training rows (:func:`features.integrity.fit_integrity_norms`, no outcomes): what the INTEGRITY slice of this model's lists is judged against."""

    def source_metrics(self) -> dict[str, float]:
        """Flat ``source/<SOURCE>/<inspections|seizures|hit_rate>`` metrics for tracking."""
        return {
            f"source/{row['selection_source']}/{name}": float(row[name])
            for row in self.source_hit_rates.iter_rows(named=True)
            for name in ("inspections", "seizures", "hit_rate")
        }


def _sample_weights(rows: pl.DataFrame, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    inspected = rows["inspected"].to_numpy()
    labels = np.where(inspected, rows["label"].fill_null(0).to_numpy(), 0).astype(float)
    weights = np.where(inspected, np.where(rows["random_slice"].to_numpy(), config.random_weight, 1.0), config.unlabelled_weight)
    return labels, weights


def matched_history(history: History) -> tuple[History, int]:
    """``history`` with only the outcomes that match their manifest, and how many outcomes were left out.

    An outcome matches when its manifest exists, its container is the
    manifest's and its port handles the manifest
    (:func:`features.data.handling.matching_outcomes`); any other outcome
    would put a label on the wrong container or port.
    """
    matching, ignored = matching_outcomes(history.outcomes, history.manifests)
    return dataclasses.replace(history, outcomes=matching), int(ignored.select(pl.len()).collect().item())


def labelled_frame(history: History, split: TimeSplit, *, oracle: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every served row (each direction, :func:`models.dataset.served_rows`) from ``train_start`` to ``test_end`` with labels and its period."""
    rows = served_rows(history, start=split.train_start, end=split.test_end)
    rows = with_labels(rows, history.outcomes).with_columns(split.period_of()).collect()
    return with_oracle(rows, oracle)


def fit_feature_stats(history: History, rows: pl.DataFrame, split: TimeSplit) -> FeatureStats:
    """Fit statistics on the training period only (manifests of train rows, outcomes before train_end)."""
    train_manifests = with_derived_columns(rows.filter(pl.col("period") == "train").lazy()).collect()
    outcomes = history.outcomes.filter(pl.col("inspected_at") < decision_time(split.train_end)).collect()
    return fit_stats(train_manifests, outcomes)


def _stream_mask_and_truth(rows: pl.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per stream: the rows it covers, their binary labels and values (seized or oracle kg)."""
    labels, values = rows["label"].fill_null(0).to_numpy().astype(bool), rows["seized_kg"].to_numpy()
    streams = {
        "labelled": (rows["inspected"].to_numpy(), labels, values),
        "random_slice": (rows["random_slice"].to_numpy(), labels, values),
    }
    if "illicit" in rows.columns:
        streams["oracle"] = (np.ones(rows.height, dtype=bool), rows["illicit"].to_numpy(), rows["oracle_kg"].to_numpy())
    return streams


def evaluate_scores(rows: pl.DataFrame, scorers: dict[str, np.ndarray]) -> Evaluation:
    """Evaluate each scorer on each available stream of ``rows`` (test-period rows).

    Streams: ``labelled`` (inspected rows), ``random_slice`` and, for simulated
    worlds, ``oracle`` (every row against the hidden truth), over all rows; with
    a ``direction`` column also per direction, named ``<stream>_<direction>``
    (lower case, e.g. ``oracle_export``): the ranking within each served
    population, as its list ranks it.
    """
    reports: dict[str, dict[str, RankingReport]] = {}
    ids = rows["manifest_id"].to_numpy()
    groups = [("", np.ones(rows.height, dtype=bool))]
    if "direction" in rows.columns:
        direction = rows["direction"].to_numpy()
        groups += [(f"_{d.value.lower()}", direction == d.value) for d in SERVED_DIRECTIONS]
    for stream, (mask, labels, values) in _stream_mask_and_truth(rows).items():
        for suffix, within in groups:
            covered = mask & within
            if covered.sum() == 0:
                continue
            reports[stream + suffix] = {
                name: ranking_metrics(
                    scores[covered], labels[covered], values=values[covered], tiebreak=ids[covered], probabilities=(name == "model")
                )
                for name, scores in scorers.items()
            }
    return Evaluation(reports)


def _calibration_rows(rows: pl.DataFrame, which: str) -> np.ndarray:
    if which == "inspected":
        return rows["inspected"].to_numpy().astype(bool)
    if which == "random_slice":
        return rows["random_slice"].to_numpy().astype(bool)
    raise ValueError(f"calibration_rows must be 'inspected' or 'random_slice', got {which!r}")


MIN_CALIBRATION_SEIZURES = 5
"""Below this many seizures among the validation period's calibration rows, the test period's are added to them."""


def fit_risk_calibrator(valid: pl.DataFrame, valid_scores: np.ndarray, test: pl.DataFrame, test_scores: np.ndarray, config: TrainConfig) -> Calibrator | None:
    """The calibrator of a model: fitted on held-out exams, the method (shift, Platt, isotonic) chosen on the test period's exams.

    The validation and test periods are held out from the trees (validation
    only stops boosting), so their scores are honest. Labels exist only for
    inspected rows: ``calibration_rows="inspected"`` fits on every exam
    (assumes that, at a given score, examined containers find contraband as
    often as the others; the rules' extra information biases this upwards,
    which the oracle stream measures), ``"random_slice"`` only on random exams
    (unbiased, but a handful of seizures at a 0.2% random rate). The fit uses
    the validation period's rows; with fewer than
    :data:`MIN_CALIBRATION_SEIZURES` seizures there, the test period's rows
    are added (``fitted_on`` says so, and the test-period measures of the
    labelled stream are then in-sample). ``None`` when even both periods have
    no seizure (or only seizures): lists made with such a model are not rated.
    """
    fit_mask, eval_mask = _calibration_rows(valid, config.calibration_rows), _calibration_rows(test, config.calibration_rows)
    fit_scores, fit_labels = valid_scores[fit_mask], valid["label"].fill_null(0).to_numpy()[fit_mask]
    eval_scores, eval_labels = test_scores[eval_mask], test["label"].fill_null(0).to_numpy()[eval_mask]
    fitted_on = f"validation period, {config.calibration_rows} rows"
    if fit_labels.sum() < MIN_CALIBRATION_SEIZURES:
        fit_scores, fit_labels = np.concatenate([fit_scores, eval_scores]), np.concatenate([fit_labels, eval_labels])
        fitted_on = f"validation and test periods, {config.calibration_rows} rows (fewer than {MIN_CALIBRATION_SEIZURES} seizures in validation)"
    try:
        calibrator, _ = choose_calibrator(fit_scores, fit_labels, eval_scores, eval_labels, fitted_on=fitted_on)
    except CalibrationError:
        return None
    return calibrator


def calibration_report(test: pl.DataFrame, test_scores: np.ndarray, calibrator: Calibrator | None) -> dict:
    """Test-period calibration per stream (``labelled``, ``random_slice``, ``oracle``): measures of the raw score and the calibrated probability, and band hit rates.

    The oracle stream is every test row against the hidden truth (contraband
    an exam there can find, simulated worlds only); the others are exams and
    their outcomes.
    """
    calibrated = None if calibrator is None else calibrator.predict(test_scores)
    report = {}
    for stream, (mask, labels, _) in _stream_mask_and_truth(test).items():
        if mask.sum() == 0:
            continue
        y = labels[mask].astype(float)
        entry = {"uncalibrated": calibration_measures(test_scores[mask], y)}
        if calibrated is not None:
            entry["calibrated"] = calibration_measures(calibrated[mask], y)
        entry["bands"] = band_hit_rates(None if calibrated is None else calibrated[mask], y).to_dicts()
        report[stream] = entry
    return report


def train_model(
    history: History,
    config: TrainConfig,
    *,
    oracle: pl.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Fit statistics and the model on the training period; evaluate model and baselines on the test period."""
    say = progress or (lambda _: None)
    history, ignored_outcomes = matched_history(history)
    if ignored_outcomes:
        say(f"ignoring {ignored_outcomes:,} outcomes that do not match their manifest (unknown manifest, other container or port)")
    say("labelling arrivals")
    rows = labelled_frame(history, config.split, oracle=oracle).filter(pl.col("period").is_not_null())
    say("fitting feature statistics")
    stats = fit_feature_stats(history, rows, config.split)
    say(f"computing features for {rows.height:,} rows")
    feats = build_features(rows.drop("period"), history, stats)
    data = pl.concat([rows.select("period", "inspected", "label", "random_slice", "seized_kg", *(["illicit", "oracle_kg"] if "illicit" in rows.columns else [])), feats], how="horizontal")
    model = RiskModel(num_threads=config.num_threads, seed=config.seed, categorical_features=tuple(categorical_columns()), **config.model)
    train = data.filter(pl.col("period") == "train")
    valid = data.filter(pl.col("period") == "valid")
    test = data.filter(pl.col("period") == "test")
    y, w = _sample_weights(train, config)
    yv, wv = _sample_weights(valid, config)
    say(f"training on {train.height:,} rows ({int(y.sum())} seizures)")
    model.fit(train.select(feature_columns()), y, sample_weight=w, eval_set=[(valid.select(feature_columns()), yv)], eval_sample_weight=[wv])
    say("evaluating on the test period")
    scores = model.predict_proba(test.select(feature_columns()))[:, 1]
    say("calibrating on the validation period")
    calibrator = fit_risk_calibrator(valid, model.predict_proba(valid.select(feature_columns()))[:, 1], test, scores, config)
    is_train = (rows.get_column("period") == "train").to_numpy()
    norms = fit_integrity_norms(integrity_inputs(rows.filter(pl.Series(is_train)), feats.filter(pl.Series(is_train))))
    test_manifests = rows.filter(pl.col("period") == "test")
    scorers = {"model": scores, **baseline_scores(test_manifests, test, config.rule_profiles(), seed=config.seed)}
    evaluation = evaluate_scores(test, scorers)
    booster = model.booster_
    importance = pl.DataFrame(
        {"feature": booster.feature_name(), "gain": booster.feature_importance("gain"), "splits": booster.feature_importance("split")}
    ).sort("gain", descending=True)
    counts = {
        f"{period}_{what}": int(value)
        for period, frame in (("train", train), ("valid", valid), ("test", test))
        for what, value in (("rows", frame.height), ("inspected", frame["inspected"].sum()), ("seizures", frame["label"].fill_null(0).sum()))
    }
    counts["ignored_outcomes"] = ignored_outcomes
    test_ids = test_manifests.select("manifest_id", "port").unique()
    test_outcomes = history.outcomes.join(test_ids.lazy(), on=["manifest_id", "port"], how="semi").collect()
    return TrainResult(
        model, stats, config, evaluation, test, scores, counts, importance, source_hit_rates(test_outcomes),
        calibrator=calibrator, calibration=calibration_report(test, scores, calibrator), integrity_norms=norms,
    )


def score_rows(booster, stats: FeatureStats, history: History, rows: pl.DataFrame) -> np.ndarray:
    """Score arrival rows (manifests with ``decision_at``) with a booster and its statistics."""
    from models.risk_model import predict_proba

    feats = build_features(rows, history, stats)
    return predict_proba(booster, feats)


def decision_bounds(split: TimeSplit) -> tuple[datetime, datetime]:
    return decision_time(split.valid_end), decision_time(split.test_end)


def rule_profiles_or_default(rules: Sequence[RuleProfile] | None) -> list[RuleProfile]:
    return list(rules) if rules else default_rule_profiles()
