"""The LightGBM risk model, in the style of a scikit-learn estimator.

The constructor stores arguments; ``fit`` validates its inputs and sets the
learned state (``booster_``, ``feature_names_in_``, ``best_iteration_``).
Training is deterministic (``deterministic=True``, ``force_row_wise=True``,
fixed seeds, explicit ``num_threads``): the same data and seed reproduce the
same model text. Categoricals arrive as integer codes from fitted
vocabularies and are declared to LightGBM by name; Polars categorical dtypes
never reach LightGBM.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin


class ModelInputError(ValueError):
    """The frame given to the model does not match what it was trained on."""


class RiskModel(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees scoring the probability that an inspection finds contraband.

    A scikit-learn estimator: the constructor only stores its arguments
    (``get_params``/``set_params`` come from :class:`sklearn.base.BaseEstimator`);
    :meth:`fit` validates its inputs and sets the learned attributes, which do
    not exist before it: ``booster_`` (native LightGBM booster),
    ``feature_names_in_``, ``n_features_in_``, ``best_iteration_``, ``classes_``.
    """

    def __init__(
        self,
        *,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        n_estimators: int = 600,
        min_child_samples: int = 20,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        lambda_l2: float = 1.0,
        early_stopping_rounds: int = 50,
        num_threads: int = 2,
        seed: int = 7,
        categorical_features: tuple[str, ...] = (),
    ) -> None:
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.early_stopping_rounds = early_stopping_rounds
        self.num_threads = num_threads
        self.seed = seed
        self.categorical_features = categorical_features

    def lgb_params(self) -> dict:
        """LightGBM parameters (everything that determines the model)."""
        return {
            "objective": "binary",
            "metric": ["average_precision", "binary_logloss"],
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "bagging_seed": self.seed,
            "feature_fraction_seed": self.seed,
            "data_random_seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "max_cat_to_onehot": 8,
            "cat_smooth": 10.0,
            "verbose": -1,
        }

    def fit(
        self,
        X: pl.DataFrame,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        eval_set: Sequence[tuple[pl.DataFrame, np.ndarray]] | None = None,
        eval_sample_weight: Sequence[np.ndarray | None] | None = None,
    ) -> "RiskModel":
        """Train on ``X`` (numeric and integer-coded categorical columns) and binary ``y``; returns ``self``.

        With ``eval_set`` (one ``(X, y)`` pair; its rows weighted by
        ``eval_sample_weight[0]``) training stops early on its average
        precision and keeps only the trees up to the best iteration.
        """
        _check_frame(X)
        y = _binary(y, X.height, "y")
        if y.sum() == 0:
            raise ModelInputError("no positive labels (seizures) to learn from")
        categorical = [c for c in self.categorical_features if c in X.columns]
        train = lgb.Dataset(X.to_numpy(), label=y, weight=sample_weight, feature_name=X.columns, categorical_feature=categorical, free_raw_data=False)
        valid_sets, callbacks = [], []
        if eval_set:
            if len(eval_set) != 1:
                raise ModelInputError(f"eval_set takes one (X, y) pair, got {len(eval_set)}")
            X_valid, y_valid = eval_set[0]
            missing = [c for c in X.columns if c not in X_valid.columns]
            if missing:
                raise ModelInputError(f"missing feature columns: {missing}")
            X_valid = X_valid.select(X.columns)
            _check_frame(X_valid)
            y_valid = _binary(y_valid, X_valid.height, "eval_set y")
            weight_valid = eval_sample_weight[0] if eval_sample_weight else None
            if y_valid.sum() > 0:
                valid_sets = [lgb.Dataset(X_valid.to_numpy(), label=y_valid, weight=weight_valid, reference=train, feature_name=X.columns, categorical_feature=categorical)]
                callbacks = [lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)]
        booster = lgb.train(self.lgb_params(), train, num_boost_round=self.n_estimators, valid_sets=valid_sets, callbacks=callbacks)
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        if valid_sets:
            # keep only the trees up to the best iteration so the saved text is the model we evaluated
            booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=self.best_iteration_))
        self.booster_ = booster
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(X.columns)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray:
        """``(n, 2)`` class probabilities (no finding, seizure); columns aligned by name."""
        positive = predict_proba(self._booster(), X)
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: pl.DataFrame) -> np.ndarray:
        """Class labels (1: a seizure is more likely than not). Targeting ranks by :meth:`predict_proba` instead."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def _booster(self) -> lgb.Booster:
        if not hasattr(self, "booster_"):
            raise ModelInputError("the model is not fitted")
        return self.booster_

    def model_text(self) -> str:
        return self._booster().model_to_string()

    def model_sha256(self) -> str:
        return hashlib.sha256(self.model_text().encode()).hexdigest()


def _binary(y: np.ndarray, rows: int, name: str) -> np.ndarray:
    values = np.asarray(y, dtype=float)
    if len(values) != rows:
        raise ModelInputError(f"{name} has {len(values)} rows but X has {rows}")
    if not set(np.unique(values)) <= {0.0, 1.0}:
        raise ModelInputError(f"{name} must be binary (0/1)")
    return values


def _check_frame(X: pl.DataFrame) -> None:
    bad = [c for c, t in X.schema.items() if not (t.is_numeric() or t == pl.Boolean)]
    if bad:
        raise ModelInputError(f"non-numeric columns reach the model: {bad} (encode categoricals as integer codes)")


def aligned(booster: lgb.Booster, X: pl.DataFrame) -> np.ndarray:
    """``X`` in the booster's own column order (LightGBM does not check names for array input)."""
    names = booster.feature_name()
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise ModelInputError(f"missing feature columns: {missing}")
    frame = X.select(names)
    _check_frame(frame)
    return frame.to_numpy()


def predict_proba(booster: lgb.Booster, X: pl.DataFrame, *, num_threads: int | None = None) -> np.ndarray:
    """Probabilities from a native booster, columns aligned by name."""
    kwargs = {"num_threads": num_threads} if num_threads else {}
    return np.asarray(booster.predict(aligned(booster, X), **kwargs), dtype=float)


def predict_contributions(booster: lgb.Booster, X: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature contributions to the raw score (log-odds) and the bias term; rows sum to the raw score.

    Expensive (~ms per row): call it only for the rows that are shown.
    """
    contrib = np.asarray(booster.predict(aligned(booster, X), pred_contrib=True), dtype=float)
    return contrib[:, :-1], contrib[:, -1]


def raw_scores(booster: lgb.Booster, X: pl.DataFrame) -> np.ndarray:
    return np.asarray(booster.predict(aligned(booster, X), raw_score=True), dtype=float)
