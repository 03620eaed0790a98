"""Calibrated risk: the model score mapped to the probability that an exam finds contraband, and the risk band an officer reads.

The LightGBM score is trained on a weighted mix (uninspected containers as
down-weighted negatives, random-slice exams up-weighted, see
:mod:`models.training`), so it ranks well but is not a probability of a
finding. A :class:`Calibrator` is fitted at training time on held-out labelled
rows (the validation period, never the rows the trees were fitted on) and
travels inside the registered model artefact (``extra_files/calibrator.json``),
so the champion's calibrator is always the one fitted with it.

Three methods, chosen by measurement (:func:`choose_calibrator`): a log-odds
**shift** (one parameter: the intercept that makes the mean probability equal
the observed rate, the classic correction for a model trained on a re-weighted
sample; the most robust with few seizures), **Platt** scaling (a logistic
regression on the score's log-odds: slope and intercept) and **isotonic**
regression (a monotone step function interpolated linearly: no shape
assumption, needs many seizures; each step's rate is shrunk towards the
overall rate by :data:`ISOTONIC_PRIOR_ROWS` pseudo-exams, so a step made of one
or two seizures never claims a certain finding). All are monotone non-decreasing in the
score, so calibration never changes a ranking.

**Risk bands** are fixed thresholds on the calibrated probability
(:data:`RISK_BANDS`): an absolute probability means the same at every port and
every week, while a band relative to a port's base rate would move whenever
the (noisily estimated) base rate moves. A list made without a calibrated model
(day one, or a model version registered before calibration existed) is
:data:`NOT_RATED`: no probability is invented.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

CALIBRATOR_ARTIFACT = "calibrator.json"
METHODS = ("shift", "platt", "isotonic")
"""Simplest first: ties in the choice go to the earlier method."""
NOT_RATED = "NOT_RATED"
ISOTONIC_PRIOR_ROWS = 2.0
"""Pseudo-exams at the overall rate added to every isotonic step (a Beta prior): 1 seizure in 1 exam reads ~33 %, not 100 %."""
RISK_BANDS: tuple[tuple[str, float], ...] = (("VERY_HIGH", 0.20), ("HIGH", 0.05), ("MEDIUM", 0.01), ("LOW", 0.0))
"""Band and the lowest calibrated probability of a finding it covers (checked top down).

LOW: below 1 in 100 (ordinary traffic: the base rate of findings is well under
1%); MEDIUM: 1 to 5 in 100; HIGH: 5 to 20 in 100; VERY_HIGH: 1 in 5 or more.
"""
BANDS: tuple[str, ...] = (*(name for name, _ in RISK_BANDS), NOT_RATED)
_EPS = 1e-6


class CalibrationError(ValueError):
    """A calibrator cannot be fitted or read (stable message naming what is missing)."""


def risk_band(probability: float | None) -> str:
    """The band of a calibrated probability (:data:`RISK_BANDS`); :data:`NOT_RATED` for ``None``.

    >>> risk_band(0.30), risk_band(0.05), risk_band(0.004), risk_band(None)
    ('VERY_HIGH', 'HIGH', 'LOW', 'NOT_RATED')
    """
    if probability is None:
        return NOT_RATED
    if not math.isfinite(probability) or not 0.0 <= probability <= 1.0:
        raise ValueError(f"a calibrated probability must be in [0, 1], got {probability!r}")
    for band, floor in RISK_BANDS:
        if probability >= floor:
            return band
    return RISK_BANDS[-1][0]


def chance_text(probability: float | None) -> str:
    """A calibrated probability as officers read it; empty when not rated.

    >>> chance_text(0.1234), chance_text(0.004), chance_text(0.0002), chance_text(None)
    ('12%', '0.4%', '<0.1%', '')
    """
    if probability is None:
        return ""
    percent = 100.0 * float(probability)
    if percent < 0.1:
        return "<0.1%"
    return f"{percent:.0f}%" if percent >= 10 else f"{percent:.1f}%"


def _logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibrator:
    """A fitted monotone map from model score to the probability that an exam finds contraband.

    ``params``: shift and Platt ``{"a": slope, "b": intercept}`` on the score's log-odds
    (``a > 0``; shift has ``a = 1``); isotonic ``{"x": [...], "y": [...]}`` knots (``x`` increasing,
    ``y`` non-decreasing), interpolated linearly and clipped at both ends.
    ``fitted_on`` says which rows it was fitted on; ``rows``/``positives`` how many.
    """

    method: str
    params: dict
    fitted_on: str
    rows: int
    positives: int
    measures: dict = field(default_factory=dict)
    """Held-out measures at fit time (Brier, ECE, ... per stream), for the record."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise CalibrationError(f"unknown calibration method {self.method!r} (expected one of {', '.join(METHODS)})")
        if self.method in ("shift", "platt") and not self.params.get("a", 0) > 0:
            raise CalibrationError("a Platt calibrator needs a positive slope (the score must rank seizures higher)")
        if self.method == "isotonic":
            x, y = np.asarray(self.params.get("x", []), float), np.asarray(self.params.get("y", []), float)
            if len(x) == 0 or len(x) != len(y) or np.any(np.diff(x) < 0) or np.any(np.diff(y) < 0):
                raise CalibrationError("isotonic knots must be non-empty, of equal length, x increasing and y non-decreasing")

    def predict(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``scores`` (model probabilities in [0, 1]); monotone non-decreasing."""
        s = np.asarray(scores, dtype=float)
        if not np.all(np.isfinite(s)):
            raise ValueError("scores must be finite (found NaN or infinity)")
        if self.method in ("shift", "platt"):
            z = self.params["a"] * _logit(s) + self.params["b"]
            out = 1.0 / (1.0 + np.exp(-z))
        else:
            out = np.interp(s, self.params["x"], self.params["y"])
        return np.clip(out, 0.0, 1.0)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "Calibrator":
        try:
            data = json.loads(text)
            return cls(**data)
        except (TypeError, ValueError, KeyError) as exc:
            if isinstance(exc, CalibrationError):
                raise
            raise CalibrationError(f"unreadable calibrator: {exc}") from None


def fit_calibrator(scores: np.ndarray, labels: np.ndarray, method: str, *, fitted_on: str, weights: np.ndarray | None = None) -> Calibrator:
    """Fit ``method`` (``platt`` or ``isotonic``) on held-out ``scores`` and binary ``labels`` (seizure found).

    Raises :class:`CalibrationError` without both classes (no seizure, or no clean exam).
    """
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    positives = int(y.sum())
    if len(s) == 0 or positives == 0 or positives == len(s):
        raise CalibrationError(f"calibration needs seizures and clean exams among the held-out rows ({len(s)} rows, {positives} seizures)")
    if method == "shift":
        params = {"a": 1.0, "b": _intercept_shift(_logit(s), y, weights)}
    elif method == "platt":
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(s).reshape(-1, 1), y, sample_weight=weights)
        params = {"a": float(fit.coef_[0][0]), "b": float(fit.intercept_[0])}
    elif method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        fit = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(s, y, sample_weight=weights)
        params = {"x": [float(v) for v in fit.X_thresholds_], "y": _shrunk_steps(fit.predict(s), fit.y_thresholds_, y, weights)}
    else:
        raise CalibrationError(f"unknown calibration method {method!r} (expected one of {', '.join(METHODS)})")
    return Calibrator(method=method, params=params, fitted_on=fitted_on, rows=len(s), positives=positives)


def _shrunk_steps(fitted: np.ndarray, steps: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> list[float]:
    """Each isotonic step's rate as a Beta posterior mean: ``(k + m p) / (n + m)`` with ``m`` = :data:`ISOTONIC_PRIOR_ROWS`.

    ``fitted`` is the isotonic value of every held-out row, ``steps`` the knots' values; ``p`` is the overall
    (weighted) rate, ``n`` and ``k`` a step's (weighted) exams and seizures. Kept non-decreasing.
    """
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    prior = float(np.average(y, weights=w))
    shrunk = []
    for value in steps:
        rows = fitted == value
        shrunk.append((float((w * y)[rows].sum()) + ISOTONIC_PRIOR_ROWS * prior) / (float(w[rows].sum()) + ISOTONIC_PRIOR_ROWS))
    return [float(v) for v in np.maximum.accumulate(shrunk)]


def _intercept_shift(logits: np.ndarray, y: np.ndarray, weights: np.ndarray | None) -> float:
    """The ``b`` with weighted mean of ``sigmoid(logits + b)`` equal to the weighted rate of ``y`` (the intercept's maximum-likelihood condition)."""
    from scipy.optimize import brentq

    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    target = float(np.sum(w * y))

    def gap(b: float) -> float:
        return float(np.sum(w / (1.0 + np.exp(-(logits + b))))) - target

    return float(brentq(gap, -50.0, 50.0, xtol=1e-10))


def quantile_bins(probabilities: np.ndarray, *, bins: int) -> np.ndarray:
    """Bin index of each probability: ``bins`` quantile bins (fewer when many values tie)."""
    p = np.asarray(probabilities, dtype=float)
    if len(p) == 0:
        return np.zeros(0, dtype=int)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))


def log_bins(probabilities: np.ndarray, *, bins: int, floor: float = 1e-6) -> np.ndarray:
    """Bin index of each probability: ``bins`` bins of equal width in log10 between the smallest (at least ``floor``) and the largest."""
    p = np.maximum(np.asarray(probabilities, dtype=float), floor)
    if len(p) == 0:
        return np.zeros(0, dtype=int)
    lo, hi = np.log10(p.min()), np.log10(p.max())
    if hi <= lo:
        return np.zeros(len(p), dtype=int)
    return np.clip(((np.log10(p) - lo) / (hi - lo) * bins).astype(int), 0, bins - 1)


def reliability_table(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 12, spacing: str = "quantile") -> pl.DataFrame:
    """Per bin: ``n``, ``positives``, ``mean_predicted``, ``observed`` rate (the reliability plot's points); empty bins left out.

    ``spacing="quantile"``: bins of equal counts (what :func:`expected_calibration_error` uses);
    ``"log"``: bins of equal width in log10 probability, which resolves the rare high-risk tail
    where most seizures are (quantile bins put nearly all of them in the last bin).
    """
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=float)
    index = quantile_bins(p, bins=bins) if spacing == "quantile" else log_bins(p, bins=bins)
    frame = pl.DataFrame({"bin": index, "p": p, "y": y}, schema={"bin": pl.Int64, "p": pl.Float64, "y": pl.Float64})
    return (
        frame.group_by("bin")
        .agg(pl.len().cast(pl.Int64).alias("n"), pl.col("y").sum().cast(pl.Int64).alias("positives"),
             pl.col("p").mean().alias("mean_predicted"), pl.col("y").mean().alias("observed"))
        .sort("bin")
    )


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 12) -> float:
    """Count-weighted mean of |mean predicted - observed rate| over quantile bins (NaN without rows)."""
    table = reliability_table(probabilities, labels, bins=bins)
    if table.height == 0:
        return float("nan")
    gaps = (table["mean_predicted"] - table["observed"]).abs().to_numpy()
    return float(np.sum(gaps * table["n"].to_numpy()) / table["n"].sum())


def calibration_measures(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 12) -> dict[str, float]:
    """Brier score, ECE, log loss, mean predicted probability and observed rate of ``probabilities`` against ``labels``."""
    p, y = np.clip(np.asarray(probabilities, dtype=float), 0, 1), np.asarray(labels, dtype=float)
    if len(p) == 0:
        return {name: float("nan") for name in ("brier", "ece", "log_loss", "mean_predicted", "observed_rate")} | {"n": 0.0, "positives": 0.0}
    q = np.clip(p, _EPS, 1 - _EPS)
    return {
        "n": float(len(p)),
        "positives": float(y.sum()),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(p, y, bins=bins),
        "log_loss": float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))),
        "mean_predicted": float(p.mean()),
        "observed_rate": float(y.mean()),
    }


def band_hit_rates(probabilities: np.ndarray | None, labels: np.ndarray) -> pl.DataFrame:
    """Per band: rows, seizures (or oracle positives) and the observed hit rate; every band listed, empty ones with 0 rows."""
    y = np.asarray(labels, dtype=float)
    bands = [NOT_RATED] * len(y) if probabilities is None else [risk_band(float(p)) for p in probabilities]
    frame = pl.DataFrame({"band": bands, "y": y}, schema={"band": pl.String, "y": pl.Float64})
    counts = frame.group_by("band").agg(pl.len().cast(pl.Int64).alias("rows"), pl.col("y").sum().cast(pl.Int64).alias("positives"))
    order = pl.DataFrame({"band": list(BANDS), "order": list(range(len(BANDS)))})
    return (
        order.join(counts, on="band", how="left")
        .with_columns(pl.col("rows").fill_null(0), pl.col("positives").fill_null(0))
        .with_columns(pl.when(pl.col("rows") > 0).then(pl.col("positives") / pl.col("rows")).alias("hit_rate"))
        .sort("order")
        .drop("order")
    )


def choose_calibrator(
    fit_scores: np.ndarray,
    fit_labels: np.ndarray,
    eval_scores: np.ndarray,
    eval_labels: np.ndarray,
    *,
    fitted_on: str,
    bins: int = 12,
) -> tuple[Calibrator, dict[str, dict[str, float]]]:
    """Fit every method on the fit rows and keep the one with the lowest Brier score on the evaluation rows.

    Ties (equal Brier to 1e-12) go to the simpler method (:data:`METHODS` order). Returns the
    chosen calibrator (its ``measures`` hold every method's figures and the
    uncalibrated score's) and those figures: ``{"uncalibrated"|method: measures}``.
    """
    figures = {"uncalibrated": calibration_measures(eval_scores, eval_labels, bins=bins)}
    fitted = {}
    for method in METHODS:
        try:
            fitted[method] = fit_calibrator(fit_scores, fit_labels, method, fitted_on=fitted_on)
        except CalibrationError:
            if method == METHODS[0]:
                raise
            continue
        figures[method] = calibration_measures(fitted[method].predict(eval_scores), eval_labels, bins=bins)
    best = min(fitted, key=lambda m: (round(figures[m]["brier"], 12), METHODS.index(m)))
    chosen = fitted[best]
    measures = {"chosen": best, **{name: {k: v for k, v in f.items() if math.isfinite(v)} for name, f in figures.items()}}
    return Calibrator(chosen.method, chosen.params, chosen.fitted_on, chosen.rows, chosen.positives, measures), figures
