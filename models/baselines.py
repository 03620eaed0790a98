"""Baselines, always evaluated beside the model on the same rows.

- ``rules``: the rule-profile score (sum of weights of the rules that fire),
  what the unit used historically;
- ``random``: a seeded uniform score (random selection);
- ``importer_findings``: the consignee's smoothed past finding rate (point in time).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from features.rules.language import RuleProfile, evaluate_rules

BASELINES = ("rules", "random", "importer_findings")


def rule_scores(rows: pl.DataFrame, rules: Sequence[RuleProfile]) -> np.ndarray:
    """Rule-profile score of each row (rules active at the row's decision time, national or for its inspecting port)."""
    if rows.height == 0:
        return np.array([], dtype=float)
    scores = np.zeros(rows.height)
    indexed = rows.with_row_index("__row")
    by_port = "port" if "port" in rows.columns else "port_of_discharge"  # served rows name their inspecting port
    for (at, port), group in indexed.group_by(["decision_at", by_port], maintain_order=True):
        evaluated = evaluate_rules(rules, group.lazy(), at=at, port=port).collect()
        scores[group["__row"].to_numpy()] = evaluated["rule_score"].to_numpy()
    return scores


def random_scores(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n)


def importer_findings_scores(features: pl.DataFrame) -> np.ndarray:
    return features["consignee_finding_rate"].to_numpy().astype(float)


def baseline_scores(rows: pl.DataFrame, features: pl.DataFrame, rules: Sequence[RuleProfile], *, seed: int) -> dict[str, np.ndarray]:
    """All baseline scores for ``rows`` (manifests with ``decision_at``) and their ``features``, aligned."""
    return {
        "rules": rule_scores(rows, rules),
        "random": random_scores(rows.height, seed),
        "importer_findings": importer_findings_scores(features),
    }
