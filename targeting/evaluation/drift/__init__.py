"""Drift scenarios as a benchmark: does the engine catch a new modus operandi in its first weeks?

Each scenario of :data:`targeting.sim.scenarios.SCENARIOS` is a regime change
at a known arrival day (an organisation moves origin and cover load, moves
hub, switches from fronts to rip-on, misdeclares a precursor under a new code,
uses a new concealment); its shipments from then on carry the truth pattern
``"<scenario>:new"``. ``ordinary`` is the same world without a change (the
ordinary test period). For each scenario and seed (three by default):

- **frozen**: the simulator's world under its historical inspection policy;
  a model trained only on labels recorded before the change day (rows from
  the end of the warm-up, outcomes with ``inspected_at`` strictly before
  00:00 UTC of the change day) scores every served row of the 30 days after;
  a second model, trained the same way before ``change - 30``, scores the 30
  days before (same staleness: the "before" figure). Recall at 1 % and 5 %
  of traffic per pattern (pooled ranking of the window's IMPORT rows, by
  :func:`models.metrics.ranking_metrics`), normalised precision at 1 %, and
  the same from daily lists at 1 % (``list_recall``), with the days to the
  first new-pattern row on such a list (:mod:`.frozen`, :mod:`.metrics`).
- **replay**: the backtest (:func:`targeting.evaluation.backtest.run_backtest`,
  strategy ``model+5``, weekly retraining, a 90-day watchlist review) through
  the same scenario: recall of each pattern by its daily lists, normalised
  precision of the lists, days to the first seizure of the new pattern
  (any direction) (:mod:`.replay`).

Outputs (:func:`write_outputs`): ``records.csv`` (per seed), ``summary.csv``
(mean, min, max over seeds), ``curves.csv`` and ``new_pattern_recall.png``
(cumulative recall of the new pattern by day after the change, frozen vs
replay), ``summary.md`` (headline, targets, per-pattern tables).

Commands::

    targeting drift --scenarios all --seeds 3 --out drift
    targeting drift --scenarios moved-origin-cover,ordinary --seeds 7,8 --no-replay --out drift-frozen
    python -m bench.bench_drift            # the table with the issue's targets checked

Ablations (feature subsets). Both models learn from the columns a feature
spec names (:func:`resolve_features`): ``default`` (the default model's
inputs, :func:`features.registry.feature_columns`), ``all`` (every computed
feature, with those off by default), ``baseline`` (the model's features when
this benchmark was built, listed in ``baseline_features.json``), feature
families (``manifest``, ``routing``, ``loading``, ``entity``, ``priors``,
``anomaly``, ``intelligence``, ``categorical``), the group ``trader-change``
or single feature names; ``-name`` removes. Examples::

    targeting drift --features baseline --out drift-baseline                 # the model before issue 15
    targeting drift --features baseline,my_new_feature,my_other_one          # baseline plus new columns
    targeting drift --features -my_family --out drift-without                # the default inputs but a family
    run_drift(DriftConfig(features="-entity"), ("moved-origin-cover",), (7,))  # from Python

New features must be registered in :mod:`features.registry` (and computed by
:func:`features.pipeline.build_features`); the spec only chooses which
registered columns the models see. ``python -m bench.bench_drift --features
SPEC`` checks the ordinary-period target against ``--baseline-features``
(default ``baseline``) on the same worlds.
"""

from __future__ import annotations

from targeting.evaluation.drift.config import (
    ORDINARY,
    DriftBacktestConfig,
    DriftConfig,
    DriftError,
    baseline_features,
    new_pattern,
    parse_scenarios,
    resolve_features,
    scenario_catalogue,
)
from targeting.evaluation.drift.report import aggregate, check_targets, headline_markdown, pattern_markdown, recall_plot, targets_markdown, write_outputs
from targeting.evaluation.drift.run import DriftResult, run_drift

__all__ = [
    "ORDINARY",
    "DriftBacktestConfig",
    "DriftConfig",
    "DriftError",
    "DriftResult",
    "aggregate",
    "baseline_features",
    "check_targets",
    "headline_markdown",
    "new_pattern",
    "parse_scenarios",
    "pattern_markdown",
    "recall_plot",
    "resolve_features",
    "run_drift",
    "scenario_catalogue",
    "targets_markdown",
    "write_outputs",
]
