"""Per-direction evaluation on a simulated world: the model beside the rules and random, and one model vs one per direction.

``python -m targeting.evaluation.directions [--seed 7] [--days 120] [--containers 600]``
simulates a world (imports at ``NLRTM``/``BEANR``/``DEHAM``, transshipment
hubs, export control units at source ports), takes the served rows of every
direction (:func:`models.dataset.served_rows`, the populations lists are
built for) with the default time split, fits the feature statistics on the
training period and prints, per direction, the oracle precision and recall at
1 % of that direction's test rows for

- ``pooled``: one model trained on every direction's rows;
- ``pooled+direction``: the same with the direction as an integer feature;
- ``per-direction``: one model per direction, trained on that direction's rows
  (a direction without a single training seizure uses the pooled model);
- ``rules`` (the default rule profiles) and ``random``.

Time semantics: rows, features and labels are those of
:func:`models.training.labelled_frame` (everything known strictly before
each row's ``decision_at``); the oracle is hidden truth, used only here.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import polars as pl

from features.candidates import Direction
from features.history import History
from features.pipeline import build_features
from features.registry import categorical_columns, feature_columns
from features.rules.language import default_rule_profiles
from models.baselines import random_scores, rule_scores
from models.dataset import TimeSplit
from models.metrics import ranking_metrics
from models.risk_model import ModelInputError, RiskModel
from models.training import TrainConfig, _sample_weights, fit_feature_stats, labelled_frame
from targeting.sim.world import WorldConfig, simulate_world

DIRECTION_FEATURE = "direction_code"
CODES = {d.value: i for i, d in enumerate(Direction)}
VARIANTS = ("pooled", "pooled+direction", "per-direction")


def _fit(data: pl.DataFrame, columns: Sequence[str], config: TrainConfig, model: dict) -> RiskModel:
    train, valid = data.filter(pl.col("period") == "train"), data.filter(pl.col("period") == "valid")
    y, w = _sample_weights(train, config)
    yv, wv = _sample_weights(valid, config)
    risk = RiskModel(num_threads=config.num_threads, seed=config.seed, categorical_features=tuple(categorical_columns()), **model)
    return risk.fit(train.select(columns), y, sample_weight=w, eval_set=[(valid.select(columns), yv)], eval_sample_weight=[wv])


def variant_scores(data: pl.DataFrame, config: TrainConfig, model: dict) -> dict[str, np.ndarray]:
    """Test-period scores of each variant, aligned with ``data``'s test rows."""
    base = feature_columns()
    with_direction = [*base, DIRECTION_FEATURE]
    test = data.filter(pl.col("period") == "test")
    out = {
        "pooled": _fit(data, base, config, model).predict_proba(test.select(base))[:, 1],
        "pooled+direction": _fit(data, with_direction, config, model).predict_proba(test.select(with_direction))[:, 1],
    }
    per = np.zeros(test.height)
    for direction in Direction:
        mine = data.filter(pl.col("direction") == direction.value)
        mask = (test["direction"] == direction.value).to_numpy()
        if not mask.any():
            continue
        try:
            per[mask] = _fit(mine, base, config, model).predict_proba(test.filter(pl.col("direction") == direction.value).select(base))[:, 1]
        except ModelInputError:  # no seizure of this direction to learn from: it can only borrow the pooled model
            per[mask] = out["pooled"][mask]
            print(f"per-direction: no {direction.value} seizure in the training period; that direction uses the pooled model")
    out["per-direction"] = per
    return out


def compare(history: History, oracle: pl.DataFrame, split: TimeSplit, *, seed: int = 7, model: dict | None = None) -> pl.DataFrame:
    """One row per direction and scorer: test rows, illicit rows, oracle precision@1 and recall@1 (1 % of the direction's rows)."""
    config = TrainConfig(split=split, seed=seed)
    rows = labelled_frame(history, split, oracle=oracle).filter(pl.col("period").is_not_null())
    stats = fit_feature_stats(history, rows, split)
    feats = build_features(rows.drop("period"), history, stats)
    data = pl.concat(
        [rows.select("period", "direction", "inspected", "label", "random_slice", "seized_kg", "illicit", "oracle_kg"), feats.drop("manifest_id")],
        how="horizontal",
    ).with_columns(pl.col("direction").replace_strict(CODES, return_dtype=pl.Float64).alias(DIRECTION_FEATURE))
    test_rows = rows.filter(pl.col("period") == "test")
    test = data.filter(pl.col("period") == "test")
    scorers = variant_scores(data, config, model or {})
    scorers["rules"] = rule_scores(test_rows, default_rule_profiles())
    scorers["random"] = random_scores(test.height, seed)
    results = []
    for direction in Direction:
        mask = (test["direction"] == direction.value).to_numpy()
        if not mask.any():
            continue
        labels = test["illicit"].to_numpy()[mask]
        ids = test_rows["manifest_id"].to_numpy()[mask]
        for name, scores in scorers.items():
            report = ranking_metrics(scores[mask], labels, tiebreak=ids)
            results.append(
                {
                    "direction": direction.value,
                    "scorer": name,
                    "rows": int(mask.sum()),
                    "illicit": int(labels.sum()),
                    "precision@1": report.metrics.get("precision@1"),
                    "recall@1": report.metrics.get("recall@1"),
                }
            )
    return pl.DataFrame(results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--containers", type=int, default=600)
    args = parser.parse_args(argv)
    world = WorldConfig(seed=args.seed, days=args.days, containers_per_day=args.containers)
    tables = simulate_world(world)
    history = History.from_frames(tables.manifests, tables.events, tables.outcomes, tables.alerts)
    first = world.start
    split = TimeSplit.default_for(first, first + timedelta(days=args.days - 1))
    table = compare(history, tables.oracle, split, seed=args.seed)
    with pl.Config(tbl_rows=100, tbl_cols=10, float_precision=3):
        print(f"world seed {args.seed}, {args.days} days, {args.containers} containers/day; split {split.as_dict()}")
        print(table)


if __name__ == "__main__":
    main()
