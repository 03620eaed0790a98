"""Time-replay backtest: inspection strategies on a simulated world that reacts to their seizures.

Customs targeting is evaluated honestly only by replaying time: each list
period (a day by default), for each port, the strategy builds the inspection
list with the real selection policy (:func:`targeting.policy.select` on
watchlist hits from :func:`features.intel.match_alerts`, rule hits from
:func:`features.rules.language.evaluate_rules` and model scores) at a capacity given as
a share of arrivals; the simulated world examines the selected containers and
reveals outcomes **only for them**; the model is retrained on a schedule on
what has been revealed so far. Trafficking organisations adapt after each
seizure (:mod:`targeting.sim.trafficking`), so every strategy meets the
drift its own seizures cause.

Every served population is replayed (:attr:`BacktestConfig.directions`):
EXPORT lists at the world's export control ports and TRANSSHIPMENT lists at
``hub_ports`` are decided when an arrival day's batch is generated, before
its events and its IMPORT lists (:mod:`targeting.evaluation.backtest.prearrival`);
a seizure at export or at a hub stops the container, so it is never an import
candidate. Each direction's lists come from the kernel with the request's
direction; one model per strategy learns from the revealed labels of every
direction (a row labelled only by an exam at its own port), and every
figure is also reported per direction (:func:`direction_table`).

Time semantics. Day ``d`` is the arrival day ``start + d``; its list is
decided at ``start + d`` 00:00 UTC (the decision time) from data available
strictly before it: manifests seen so far (the world reveals each day's
arrivals on that day), container events generated so far, the outcomes the
strategy itself revealed, and the alerts issued so far. A model retrained at
the start of day ``d`` learns from feature rows with decision times in
``[d - train_window_days, d)`` and from outcomes recorded (``inspected_at``)
strictly before ``d`` 00:00 UTC. With ``period_days > 1`` the unit decides
once per period over all of the period's arrivals (capacity pooled), each row
still scored at its own arrival day, and outcomes return at the end of the
period.

Strategies (see :func:`parse_strategy`): ``rules`` (watchlist, then rule hits
by score; slots the rules leave are drawn at random), ``random`` (watchlist,
then a uniform random draw), ``model`` / ``model+N`` (the policy with the
model's scores and ``N`` % of the capacity drawn uniformly at random), and
``ucb`` / ``ucb+N`` (as ``model+N`` but the exploration slots are drawn with
probability proportional to an upper confidence bound, see
:func:`ucb_weights`, with exact inclusion probabilities). Before the first
model exists (``warmup_days``) the model strategies run the historical
behaviour: watchlist, rule hits, and a random slice of
``warmup_random_share`` of the capacity.

Retraining uses the engine's own code path: feature statistics from
:func:`features.stats.fit_stats` (fitted once, when the warm-up ends, and kept
so every cached feature row stays encoded with the same vocabularies), features
from :func:`features.pipeline.build_features` with the snapshot
:class:`~features.entity.EntityState` of each decision time, and
:class:`models.risk_model.RiskModel` with uninspected rows as weighted
negatives (a seeded sample of them, re-weighted by the inverse sampling
share). Each day's features are computed once, at that day's decision time,
and cached for the rows training can use (the selected ones and the sample of
the others); retraining reads the cache (:func:`training_frame`).

Evaluation against the world's hidden truth (never a strategy input) uses
:func:`models.metrics.ranking_metrics`: per week and over the evaluation
period (the days after the warm-up), precision, recall and normalised
precision of the selected set against the oracle at the same capacity.

Deterministic for a seed: the world draws from its own generator; every
strategy draw (random slices, unlabelled samples, event timings) comes from a
generator seeded by ``(seed, strategy, port, day)``; LightGBM trains
deterministically. Model strategies share one warm-up run per seed (the world
is forked when the warm-up ends), which gives exactly what separate runs give.
"""

from __future__ import annotations

from targeting.evaluation.backtest.config import BacktestConfig, BacktestError, DEFAULT_STRATEGIES, Strategy, parse_strategies, parse_strategy
from targeting.evaluation.backtest.sampling import capacity_for, plan_port_selection, pps_inclusion, reviewed_alerts, systematic_sample, ucb_weights, unlabelled_sample
from targeting.evaluation.backtest.learning import training_frame
from targeting.evaluation.backtest.inspector import StrategyInspector
from targeting.evaluation.backtest.run import BacktestResult, StrategyRun, run_backtest
from targeting.evaluation.backtest.report import direction_table, format_value, last_weeks_mean, log_to_mlflow, run_overall, summary_cells, summary_markdown, summary_table, trainings_frame, weekly_table, write_outputs

__all__ = [
    "DEFAULT_STRATEGIES",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "Strategy",
    "StrategyInspector",
    "StrategyRun",
    "capacity_for",
    "direction_table",
    "log_to_mlflow",
    "parse_strategies",
    "parse_strategy",
    "format_value",
    "last_weeks_mean",
    "plan_port_selection",
    "pps_inclusion",
    "reviewed_alerts",
    "run_overall",
    "summary_cells",
    "summary_markdown",
    "trainings_frame",
    "run_backtest",
    "summary_table",
    "systematic_sample",
    "training_frame",
    "ucb_weights",
    "unlabelled_sample",
    "weekly_table",
    "write_outputs",
]
