"""The LightGBM risk model, in the style of a scikit-learn estimator.

The constructor stores arguments; ``fit`` validates its inputs and sets the
learned state (``booster_``, ``feature_names_``, ``best_iteration_``).
Training is deterministic (``deterministic=True``, ``force_row_wise=True``,
fixed seeds, explicit ``num_threads``): the same data and seed reproduce the
same model text. Categoricals arrive as integer codes from fitted
vocabularies and are declared to LightGBM by name; Polars categorical dtypes
never reach LightGBM.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import polars as pl


class ModelInputError(ValueError):
    """The frame given to the model does not match what it was trained on."""


@dataclass
class RiskModel:
    """Gradient-boosted trees scoring the probability that an inspection finds contraband."""

    num_leaves: int = 31
    learning_rate: float = 0.05
    n_estimators: int = 600
    min_child_samples: int = 20
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    early_stopping_rounds: int = 50
    num_threads: int = 2
    seed: int = 7
    categorical_features: tuple[str, ...] = ()
    booster_: lgb.Booster | None = field(default=None, init=False, repr=False)
    feature_names_: list[str] = field(default_factory=list, init=False)
    best_iteration_: int = field(default=0, init=False)

    def params(self) -> dict:
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
        *,
        weight: np.ndarray | None = None,
        X_valid: pl.DataFrame | None = None,
        y_valid: np.ndarray | None = None,
        weight_valid: np.ndarray | None = None,
    ) -> "RiskModel":
        """Train on ``X`` (numeric and integer-coded categorical columns) and binary ``y``.

        With a validation set, stops early on its average precision.
        """
        _check_frame(X)
        y = np.asarray(y, dtype=float)
        if len(y) != X.height:
            raise ModelInputError(f"y has {len(y)} rows but X has {X.height}")
        if not set(np.unique(y)) <= {0.0, 1.0}:
            raise ModelInputError("y must be binary (0/1)")
        if y.sum() == 0:
            raise ModelInputError("no positive labels (seizures) to learn from")
        if X_valid is not None and y_valid is not None:
            missing = [c for c in X.columns if c not in X_valid.columns]
            if missing:
                raise ModelInputError(f"missing feature columns: {missing}")
            X_valid = X_valid.select(X.columns)
            _check_frame(X_valid)
            if len(y_valid) != X_valid.height:
                raise ModelInputError(f"y_valid has {len(y_valid)} rows but X_valid has {X_valid.height}")
        categorical = [c for c in self.categorical_features if c in X.columns]
        train = lgb.Dataset(X.to_numpy(), label=y, weight=weight, feature_name=X.columns, categorical_feature=categorical, free_raw_data=False)
        valid_sets, callbacks = [], []
        if X_valid is not None and y_valid is not None and np.sum(y_valid) > 0:
            valid = lgb.Dataset(
                X_valid.to_numpy(), label=np.asarray(y_valid, float), weight=weight_valid, reference=train, feature_name=X.columns,
                categorical_feature=categorical,
            )
            valid_sets = [valid]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)]
        self.booster_ = lgb.train(self.params(), train, num_boost_round=self.n_estimators, valid_sets=valid_sets, callbacks=callbacks)
        self.best_iteration_ = int(self.booster_.best_iteration or self.booster_.current_iteration())
        if valid_sets:
            # keep only the trees up to the best iteration so the saved text is the model we evaluated
            self.booster_ = lgb.Booster(model_str=self.booster_.model_to_string(num_iteration=self.best_iteration_))
        self.feature_names_ = list(X.columns)
        return self

    def predict(self, X: pl.DataFrame) -> np.ndarray:
        return predict_proba(self._booster(), X)

    def _booster(self) -> lgb.Booster:
        if self.booster_ is None:
            raise ModelInputError("the model is not fitted")
        return self.booster_

    def model_text(self) -> str:
        return self._booster().model_to_string()

    def model_sha256(self) -> str:
        return hashlib.sha256(self.model_text().encode()).hexdigest()


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
