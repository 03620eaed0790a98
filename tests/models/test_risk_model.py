"""Specification of the LightGBM risk model (models.risk_model): inputs checked by name and type, deterministic, early-stopped."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from models.risk_model import ModelInputError, RiskModel, predict_contributions, predict_proba, raw_scores

N = 3000


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, np.ndarray]:
    """Seizures depend on ``value_dev`` and on category code 3 of ``origin_code``; ``noise`` and ``reefer`` are unrelated."""
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            "value_dev": rng.normal(size=N),
            "noise": rng.normal(size=N),
            "origin_code": rng.integers(0, 6, N).astype(np.int32),
            "reefer": rng.random(N) < 0.3,
        }
    )
    logit = -4 + 1.5 * frame["value_dev"].to_numpy() + np.where(frame["origin_code"].to_numpy() == 3, 2.0, 0.0)
    labels = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, labels


def small_model(**kwargs) -> RiskModel:
    return RiskModel(**{"n_estimators": 60, "learning_rate": 0.1, "num_threads": 1, "categorical_features": ("origin_code",), **kwargs})


@pytest.fixture(scope="module")
def fitted(data) -> RiskModel:  # noqa: ANN001
    frame, labels = data
    return small_model().fit(frame, labels)


def test_fit_returns_the_estimator_with_learned_state_that_does_not_exist_before(data) -> None:  # noqa: ANN001
    frame, labels = data
    model = small_model()
    assert not any(hasattr(model, name) for name in ("booster_", "feature_names_in_", "n_features_in_", "best_iteration_", "classes_"))
    assert model.fit(frame, labels) is model
    assert model.feature_names_in_.tolist() == ["value_dev", "noise", "origin_code", "reefer"] and model.n_features_in_ == 4
    assert model.booster_.feature_name() == model.feature_names_in_.tolist()
    assert model.best_iteration_ == 60 == model.booster_.num_trees() and model.classes_.tolist() == [0, 1]


def test_the_model_follows_the_scikit_learn_parameter_contract() -> None:
    from sklearn.base import clone

    model = small_model(num_leaves=15)
    params = model.get_params()
    assert params["num_leaves"] == 15 and params["categorical_features"] == ("origin_code",) and params["seed"] == 7
    assert model.set_params(learning_rate=0.2, seed=3) is model and model.get_params()["learning_rate"] == 0.2
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()


def test_sample_weight_changes_the_model_and_predict_proba_gives_two_columns(data) -> None:  # noqa: ANN001
    frame, labels = data
    weights = np.where(labels == 1, 5.0, 1.0)
    plain = small_model().fit(frame, labels)
    weighted = small_model().fit(frame, labels, sample_weight=weights)
    assert plain.model_sha256() != weighted.model_sha256()
    proba = weighted.predict_proba(frame)
    assert proba.shape == (N, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(proba[:, 1], predict_proba(weighted.booster_, frame))
    assert set(np.unique(weighted.predict(frame))) <= {0, 1}


def test_reordered_columns_give_identical_predictions(fitted: RiskModel, data) -> None:  # noqa: ANN001
    frame, _ = data
    reordered = frame.select("reefer", "origin_code", "noise", "value_dev")
    expected = fitted.predict_proba(frame)[:, 1]
    assert np.array_equal(fitted.predict_proba(reordered)[:, 1], expected)
    assert np.array_equal(predict_proba(fitted.booster_, reordered), expected)
    assert np.array_equal(raw_scores(fitted.booster_, reordered), raw_scores(fitted.booster_, frame))
    contrib, bias = predict_contributions(fitted.booster_, reordered)
    contrib_ref, bias_ref = predict_contributions(fitted.booster_, frame[:50])
    assert np.array_equal(contrib[:50], contrib_ref) and np.array_equal(bias[:50], bias_ref)
    # without alignment by name the same booster would score the reordered matrix differently (ENGINEERING trap 2)
    assert not np.allclose(fitted.booster_.predict(reordered.to_numpy()), expected)


def test_extra_columns_are_ignored_and_missing_ones_are_named(fitted: RiskModel, data) -> None:  # noqa: ANN001
    frame, _ = data
    extra = frame.with_columns(pl.lit(1.0).alias("manifest_weight"))
    assert np.array_equal(fitted.predict_proba(extra), fitted.predict_proba(frame))
    with pytest.raises(ModelInputError, match=r"^missing feature columns: \['noise'\]$"):
        fitted.predict(frame.drop("noise"))


@pytest.mark.parametrize(
    "dtype",
    [pl.String, pl.Categorical, pl.Enum(["0", "1", "2", "3", "4", "5"])],
    ids=["string", "categorical", "enum"],
)
def test_polars_string_and_categorical_columns_are_refused_before_lightgbm(data, dtype) -> None:  # noqa: ANN001
    frame, labels = data
    coded = frame.with_columns(pl.col("origin_code").cast(pl.String).cast(dtype))
    message = r"^non-numeric columns reach the model: \['origin_code'\] \(encode categoricals as integer codes\)$"
    with pytest.raises(ModelInputError, match=message):
        small_model().fit(coded, labels)
    with pytest.raises(ModelInputError, match=message):
        small_model().fit(frame, labels, eval_set=[(coded, labels)])
    with pytest.raises(ModelInputError, match=message):
        small_model().fit(frame, labels).predict(coded)


def test_datetime_columns_are_refused_too(data) -> None:  # noqa: ANN001
    frame, labels = data
    with pytest.raises(ModelInputError, match=r"^non-numeric columns reach the model: \['filed_at'\]"):
        small_model().fit(frame.with_columns(pl.lit(datetime(2025, 1, 1, tzinfo=UTC)).alias("filed_at")), labels)


def test_training_without_any_seizure_is_refused(data) -> None:  # noqa: ANN001
    frame, labels = data
    with pytest.raises(ModelInputError, match=r"^no positive labels \(seizures\) to learn from$"):
        small_model().fit(frame, np.zeros_like(labels))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([0, 1, 2] * (N // 3)), r"^y must be binary \(0/1\)$"),
        (np.array([0.0, np.nan, 1.0] * (N // 3)), r"^y must be binary \(0/1\)$"),
        (np.array([0, 1] * 10), rf"^y has 20 rows but X has {N}$"),
    ],
)
def test_labels_must_be_binary_and_one_per_row(data, labels, message) -> None:  # noqa: ANN001
    with pytest.raises(ModelInputError, match=message):
        small_model().fit(data[0], labels)


def test_validation_frame_must_match_the_training_frame(data) -> None:  # noqa: ANN001
    frame, labels = data
    with pytest.raises(ModelInputError, match=r"^missing feature columns: \['reefer'\]$"):
        small_model().fit(frame, labels, eval_set=[(frame.drop("reefer"), labels)])
    with pytest.raises(ModelInputError, match=rf"^eval_set y has 10 rows but X has {N}$"):
        small_model().fit(frame, labels, eval_set=[(frame, labels[:10])])


def test_an_unfitted_model_cannot_predict(data) -> None:  # noqa: ANN001
    with pytest.raises(ModelInputError, match="^the model is not fitted$"):
        small_model().predict(data[0])
    with pytest.raises(ModelInputError, match="^the model is not fitted$"):
        small_model().model_sha256()


def test_two_trainings_on_the_same_data_and_seed_give_the_same_model_text(data) -> None:  # noqa: ANN001
    frame, labels = data
    first = small_model().fit(frame, labels, eval_set=[(frame[2000:], labels[2000:])])
    second = small_model().fit(frame, labels, eval_set=[(frame[2000:], labels[2000:])])
    assert first.model_sha256() == second.model_sha256()
    assert first.model_text() == second.model_text()
    # the hash does depend on the seed (bagging and feature sampling)
    assert small_model(seed=8).fit(frame, labels).model_sha256() != small_model().fit(frame, labels).model_sha256()


def test_params_are_deterministic_with_explicit_threads() -> None:
    params = RiskModel(num_threads=3, seed=11).lgb_params()
    assert params["deterministic"] is True and params["force_row_wise"] is True
    assert params["num_threads"] == 3
    assert {params[k] for k in ("seed", "bagging_seed", "feature_fraction_seed", "data_random_seed")} == {11}
    assert params["objective"] == "binary"


def test_early_stopping_keeps_only_the_trees_up_to_the_best_iteration(data) -> None:  # noqa: ANN001
    frame, labels = data
    train, valid = slice(0, 2000), slice(2000, N)
    model = small_model(n_estimators=400).fit(frame[train], labels[train], eval_set=[(frame[valid], labels[valid])])
    assert 0 < model.best_iteration_ < 400
    assert model.booster_.num_trees() == model.best_iteration_
    assert f"\nTree={model.best_iteration_ - 1}\n" in model.model_text() and f"\nTree={model.best_iteration_}\n" not in model.model_text()
    # the saved model is the one that was evaluated: the same as training exactly best_iteration_ rounds
    plain = small_model(n_estimators=model.best_iteration_).fit(frame[train], labels[train])
    assert np.array_equal(model.predict_proba(frame), plain.predict_proba(frame))


def test_a_validation_set_without_seizures_disables_early_stopping(data) -> None:  # noqa: ANN001
    frame, labels = data
    model = small_model(n_estimators=30).fit(frame, labels, eval_set=[(frame[:100], np.zeros(100))])
    assert model.best_iteration_ == 30 == model.booster_.num_trees()


def test_integer_codes_are_declared_categorical_to_lightgbm(fitted: RiskModel) -> None:
    assert "[categorical_feature: 2]" in fitted.model_text()


def test_contributions_plus_bias_equal_the_raw_score_and_the_probability(fitted: RiskModel, data) -> None:  # noqa: ANN001
    frame, _ = data
    rows = frame[:200]
    contrib, bias = predict_contributions(fitted.booster_, rows)
    assert contrib.shape == (200, 4) and bias.shape == (200,)
    raw = raw_scores(fitted.booster_, rows)
    np.testing.assert_allclose(contrib.sum(axis=1) + bias, raw, rtol=0, atol=1e-9)
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), fitted.predict_proba(rows)[:, 1], rtol=0, atol=1e-12)


def test_the_model_ranks_the_informative_signal(fitted: RiskModel, data) -> None:  # noqa: ANN001
    frame, labels = data
    scores = fitted.predict_proba(frame)[:, 1]
    assert scores[labels == 1].mean() > 3 * scores[labels == 0].mean()
    gain = dict(zip(fitted.booster_.feature_name(), fitted.booster_.feature_importance("gain")))
    assert gain["value_dev"] > gain["noise"] and gain["origin_code"] > gain["reefer"]
