"""Replaying strategies: one run per strategy and seed, and the whole backtest (shared warm-up, forks)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

import numpy as np
import polars as pl

from features.candidates import Direction
from features.data.contracts import CONTAINER_EVENTS, MANIFESTS
from features.history import with_derived_columns
from features.integrity import ROW_COLUMNS as INTEGRITY_ROW_COLUMNS
from features.stats import fit_stats
from targeting.policy import decision_time
from targeting.sim.export_control import export_candidates, export_rule_profiles
from targeting.sim.voyages import build_events
from targeting.sim.world import DayBatch, World
from targeting.evaluation.backtest.config import BacktestConfig, BacktestError, DECISION_SCHEMA, DEFAULT_STRATEGIES, Strategy, parse_strategies
from targeting.evaluation.backtest.sampling import _timed, reviewed_alerts, unlabelled_sample
from targeting.evaluation.backtest.learning import KnownHistory, Learner, _day_features
from targeting.evaluation.backtest.inspector import StrategyInspector
from targeting.evaluation.backtest.prearrival import PopulationInspector, examine_at_hubs, findable_at_hub, hub_candidates
from targeting.evaluation.backtest.report import summary_table, weekly_table


# --------------------------------------------------------------------------- one run


@dataclass
class StrategyRun:
    """Everything one strategy produced on one seed's world.

    ``evaluation``: one row per candidate (``day``, ``port``, ``manifest_id``,
    ``selected``, ``source``, ``illicit`` and ``category`` from the hidden
    truth, ``seized``, ``seizure_category`` from the revealed outcome);
    ``decisions``: the lists (DECISION_SCHEMA); ``outcomes``: the revealed
    outcomes; ``trainings``: one record per retraining; ``cached_rows``: the
    feature rows the learner kept (with ``selected``); ``seconds``: wall time
    of the days this run simulated on its own (after a shared warm-up, if any).
    """

    strategy: Strategy
    seed: int
    evaluation: pl.DataFrame
    decisions: pl.DataFrame
    outcomes: pl.DataFrame
    trainings: list[dict]
    cached_rows: pl.DataFrame | None
    seconds: float
    shared_seconds: float = 0.0
    timers: dict[str, float] = field(default_factory=dict)
    """Wall time by part (``world``: generating days and events; ``inspect``: the world's exams including
    ``decide``, the strategy's decisions, which include ``features`` and ``scoring``; ``training``), own days only."""


@dataclass
class _Context:
    """The mutable state of one strategy's replay (forked after a shared warm-up)."""

    world: World
    known: KnownHistory
    learner: Learner
    inspector: StrategyInspector
    others: dict[str, PopulationInspector] = field(default_factory=dict)
    """The strategy's EXPORT and TRANSSHIPMENT units (by direction name), sharing the learner and known history."""
    evaluation: list[pl.DataFrame] = field(default_factory=list)
    day: int = 0
    next_retrain: int = 0

    @property
    def units(self) -> list:
        """Every unit of the strategy (import first)."""
        return [self.inspector, *self.others.values()]

    def fork(self, strategy: Strategy) -> _Context:
        """An independent copy for ``strategy`` (the world is deep-copied, generator state included)."""
        learner = self.learner.fork()
        known = self.known.fork()
        inspector = replace(
            self.inspector,
            strategy=strategy,
            learner=learner,
            known=known,
            prepared={},
            decisions=list(self.inspector.decisions),
            candidates=list(self.inspector.candidates),
            timers={},
        )
        others = {
            name: replace(unit, strategy=strategy, learner=learner, known=known, decisions=list(unit.decisions), candidates=list(unit.candidates), timers={})
            for name, unit in self.others.items()
        }
        return _Context(copy.deepcopy(self.world), known, learner, inspector, others, list(self.evaluation), self.day, self.next_retrain)


def _day_events(batch: DayBatch, seed: int) -> pl.DataFrame:
    """Container events of a day's arrivals (the world's voyage timing; timing draws from a generator seeded by the day)."""
    ordered = batch.manifests.sort("eta", "manifest_id").with_row_index("_row")
    return build_events(ordered, np.random.default_rng([seed, 2, batch.day])).select(CONTAINER_EVENTS.column_names)


def _evaluation_rows(batch: DayBatch, decision: pl.DataFrame, candidates: pl.DataFrame, outcomes: pl.DataFrame, findable: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per candidate of one direction: selected, source, the hidden truth (``illicit``: contraband an exam there can find), the revealed outcome.

    ``findable`` (``manifest_id``, ``port``, ``findable``) restricts ``illicit`` for EXPORT and TRANSSHIPMENT
    candidates (contraband loaded later in the voyage is not in the container yet).
    """
    pattern = pl.col("pattern") if "pattern" in batch.truth.columns else pl.col("method")  # the drift benchmark's per-pattern figures
    truth = batch.truth.select("manifest_id", pl.lit(True).alias("illicit"), "category", pl.col("quantity_kg").alias("oracle_kg"), pattern.alias("pattern"))
    revealed = outcomes.select("manifest_id", "port", (pl.col("result") == "SEIZURE").alias("seized"), "seizure_category")
    rows = (
        candidates.join(decision.select("manifest_id", "port", "source"), on=["manifest_id", "port"], how="left", maintain_order="left")
        .join(truth, on="manifest_id", how="left", maintain_order="left")
        .join(revealed, on=["manifest_id", "port"], how="left", maintain_order="left")
    )
    illicit = pl.col("illicit").fill_null(False)
    if findable is not None:
        rows = rows.join(findable, on=["manifest_id", "port"], how="left", maintain_order="left")
        illicit = illicit & pl.col("findable").fill_null(False)
    return rows.select(
        "day",
        "port",
        "manifest_id",
        pl.col("direction") if "direction" in rows.columns else pl.lit("IMPORT").alias("direction"),
        pl.col("source").is_not_null().alias("selected"),
        "source",
        illicit.alias("illicit"),
        pl.when(illicit).then(pl.col("category")).otherwise(None).alias("category"),
        pl.when(illicit).then(pl.col("oracle_kg")).otherwise(0.0).fill_null(0.0).alias("oracle_kg"),
        pl.when(illicit).then(pl.col("pattern")).otherwise(None).alias("pattern"),
        pl.col("seized").fill_null(False),
        "seizure_category",
    )


def _before_arrival(ctx: _Context, batch: DayBatch, seed: int) -> list[pl.DataFrame]:
    """EXPORT then TRANSSHIPMENT control of a batch (before its events and imports); their evaluation rows."""
    rows = []
    export = ctx.others.get(Direction.EXPORT.value)
    if export is not None:
        cands = export_candidates(batch.manifests, ctx.world.config.export_ports)
        loaded_here = cands.join(batch.truth.select("manifest_id", "loaded_at"), on="manifest_id", how="left").select(
            "manifest_id", "port", (pl.col("loaded_at") == pl.col("port")).fill_null(False).alias("findable")
        )
        before = len(export.decisions)
        with _timed(export.timers, "inspect"):
            outcomes = ctx.world.inspect_exports(batch, export)
        ctx.known.add_outcomes(outcomes)
        if len(export.decisions) > before:
            rows.append(_evaluation_rows(batch, export.decisions[-1], export.candidates[-1], outcomes, loaded_here))
    hub = ctx.others.get(Direction.TRANSSHIPMENT.value)
    if hub is not None:
        cands = hub_candidates(batch.manifests, ctx.inspector.config.hub_ports)
        if cands.height:
            findable = cands.select("manifest_id", "port").with_columns(findable_at_hub(cands, batch.truth))
            with _timed(hub.timers, "inspect"):
                hub(batch.day, cands, ctx.world.alerts_frame(), np.random.default_rng([seed, 5, batch.day]))
                selection = hub.decisions[-1].select("manifest_id", "port", pl.col("source").alias("selection_source"), "exam_type")  # a container may call at two hubs
                outcomes = examine_at_hubs(batch, cands, selection, np.random.default_rng([seed, 6, batch.day]))
            ctx.known.add_outcomes(outcomes)
            rows.append(_evaluation_rows(batch, hub.decisions[-1], hub.candidates[-1], outcomes, findable))
    return rows


def _advance(ctx: _Context, until: int, *, seed: int, tick: Callable[[int], None]) -> None:
    """Replay days from the context's current day up to ``until`` (exclusive), period by period."""
    cfg = ctx.inspector.config
    features = ctx.inspector.strategy.uses_model
    day = ctx.day
    timers = ctx.inspector.timers
    while day < until:
        end = min((day // cfg.period_days + 1) * cfg.period_days, until, cfg.days)
        if features and not ctx.inspector.warmup and day >= ctx.next_retrain:
            with _timed(timers, "training"):
                _retrain(ctx, day)
        with _timed(timers, "world"):
            batches = {d: ctx.world.day(d) for d in range(day, end)}
        early = {d: _before_arrival(ctx, batch, seed) for d, batch in batches.items()}
        with _timed(timers, "world"):
            if features:
                for d, batch in batches.items():
                    ctx.known.add_day(d, batch.manifests.select(MANIFESTS.column_names), _day_events(batch, seed), keep_full=d < cfg.model_start)
        if len(batches) > 1:
            with _timed(timers, "decide"):
                ctx.inspector.prepare({d: b.manifests.filter(pl.col("_export_stopped_at").is_null()) for d, b in batches.items()}, ctx.world.alerts_frame())
        for d, batch in batches.items():
            with _timed(timers, "inspect"):
                outcomes = ctx.world.inspect(batch, ctx.inspector)
            ctx.known.add_outcomes(outcomes)
            decision = ctx.inspector.decisions[-1].filter(pl.col("day") == d)
            candidates = ctx.inspector.candidates[-1].filter(pl.col("day") == d)
            ctx.evaluation.extend([_evaluation_rows(batch, decision, candidates, outcomes), *early[d]])
            tick(d + 1)
        day = ctx.day = end


def _retrain(ctx: _Context, day: int) -> None:
    cfg = ctx.inspector.config
    at = decision_time(cfg.start + timedelta(days=day))
    ctx.learner.train(day, at, ctx.known.outcome_frame())
    ctx.next_retrain = day + cfg.retrain_every


def _bootstrap(ctx: _Context, *, seed: int) -> None:
    """End of the warm-up: fit the feature statistics, compute the warm-up days' feature rows, train the first model."""
    cfg = ctx.inspector.config
    day = cfg.model_start
    at = decision_time(cfg.start + timedelta(days=day))
    outcomes = ctx.known.outcome_frame()
    warm = pl.concat([ctx.known.full[d] for d in sorted(ctx.known.full)], how="vertical")
    ctx.learner.stats = fit_stats(with_derived_columns(warm.lazy()).collect(), outcomes.filter(pl.col("inspected_at") < at))
    alerts = reviewed_alerts(ctx.world.alerts_frame(), cfg.alert_days)
    decisions = pl.concat(ctx.inspector.decisions, how="vertical")
    offered = pl.concat(ctx.inspector.candidates, how="vertical")  # the import candidates (containers stopped before arrival are not)
    for d in sorted(ctx.known.full):
        ids = offered.filter(pl.col("day") == d).get_column("manifest_id").implode()
        manifests = ctx.known.full[d].filter(pl.col("manifest_id").is_in(ids))
        chosen = set(decisions.filter(pl.col("day") == d).get_column("manifest_id").to_list())
        others = [m for m in manifests.get_column("manifest_id").to_list() if m not in chosen]
        keep = chosen | set(unlabelled_sample(others, cfg.unlabelled_sample, seed=seed, day=d))
        candidates = manifests.filter(pl.col("manifest_id").is_in(list(keep))).with_columns(
            pl.lit(decision_time(cfg.start + timedelta(days=d))).alias("decision_at")
        )
        if candidates.height:
            feats = _day_features(d, candidates, ctx.known, alerts, ctx.learner.stats, outcomes)
            feats = feats.with_columns(pl.col("port_of_discharge").alias("port"), *(candidates.get_column(c) for c in INTEGRITY_ROW_COLUMNS))
            ctx.learner.rows.append(feats.with_columns(pl.col("manifest_id").is_in(list(chosen)).alias("selected")))
    ctx.known.full.clear()
    for unit in ctx.units:
        unit.warmup = False
    with _timed(ctx.inspector.timers, "training"):
        _retrain(ctx, day)


def _new_context(world: World, strategy: Strategy, config: BacktestConfig, seed: int) -> _Context:
    known = KnownHistory()
    learner = Learner(config, seed)
    inspector = StrategyInspector(strategy, config, seed, learner=learner, known=known, warmup=strategy.uses_model)
    others = {}
    if Direction.TRANSSHIPMENT.value in config.directions:
        others[Direction.TRANSSHIPMENT.value] = PopulationInspector(
            Direction.TRANSSHIPMENT, strategy, config, seed, learner=learner, known=known, warmup=strategy.uses_model
        )
    if Direction.EXPORT.value in config.directions:
        others[Direction.EXPORT.value] = PopulationInspector(
            Direction.EXPORT, strategy, config, seed, rules=export_rule_profiles(), learner=learner, known=known, warmup=strategy.uses_model
        )
    return _Context(world, known, learner, inspector, others)


def _finish(ctx: _Context, strategy: Strategy, seed: int, seconds: float, shared: float) -> StrategyRun:
    made = [d for unit in ctx.units for d in unit.decisions]
    decisions = pl.concat(made, how="vertical").sort("day", "direction", "port", maintain_order=True) if made else pl.DataFrame(schema=DECISION_SCHEMA)
    timers = dict(ctx.inspector.timers)
    for name, unit in ctx.others.items():
        timers.update({f"{name.lower()} {k}": v for k, v in unit.timers.items()})
    return StrategyRun(
        strategy=strategy,
        seed=seed,
        evaluation=pl.concat(ctx.evaluation, how="vertical"),
        decisions=decisions,
        outcomes=ctx.known.outcome_frame(),
        trainings=list(ctx.learner.trainings),
        cached_rows=pl.concat(ctx.learner.rows, how="vertical") if ctx.learner.rows else None,
        seconds=seconds,
        shared_seconds=shared,
        timers={k: round(v, 3) for k, v in sorted(timers.items())},
    )


# --------------------------------------------------------------------------- the whole backtest


@dataclass
class BacktestResult:
    """The runs of every strategy on every seed, with wall times (``timings``: label -> seconds)."""

    config: BacktestConfig
    strategies: tuple[Strategy, ...]
    seeds: tuple[int, ...]
    runs: list[StrategyRun]
    timings: dict[str, float] = field(default_factory=dict)

    def weekly(self) -> pl.DataFrame:
        """See :func:`weekly_table`."""
        return weekly_table(self.runs, self.config)

    def summary(self) -> pl.DataFrame:
        """See :func:`summary_table`."""
        return summary_table(self.runs, self.config, strategies=self.strategies)

    def run(self, strategy: str, seed: int) -> StrategyRun:
        """The run of ``strategy`` (by name) on ``seed``."""
        for found in self.runs:
            if found.strategy.name == strategy and found.seed == seed:
                return found
        raise KeyError(f"no run of {strategy!r} on seed {seed}")


Progress = Callable[[str, int, int], None]
"""``progress(label, done, total)``: called as a task (world generation, a warm-up, a strategy's days) advances."""


def run_backtest(
    config: BacktestConfig,
    strategies: Sequence[Strategy] | str = DEFAULT_STRATEGIES,
    seeds: Iterable[int] = (7,),
    *,
    progress: Progress | None = None,
) -> BacktestResult:
    """Replay every strategy on the world of every seed (see the module docstring).

    Per seed the world is generated once; ``rules`` and ``random`` start from
    a copy of it, the model strategies from a copy of one shared warm-up run
    (same results as separate runs: the warm-up does not depend on the
    strategy). Returns the runs in ``seeds`` x ``strategies`` order.
    """
    chosen = parse_strategies(strategies) if isinstance(strategies, str) else tuple(strategies)
    if not chosen:
        raise BacktestError("give at least one strategy")
    seed_list = tuple(int(s) for s in seeds)
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise BacktestError("give at least one seed, each once")
    say = progress or (lambda label, done, total: None)
    runs: list[StrategyRun] = []
    timings: dict[str, float] = {}
    for seed in seed_list:
        label = f"seed {seed}"
        say(f"{label} · world", 0, 1)
        began = time.perf_counter()
        world = World(config.world_config(seed))
        timings[f"{label} world"] = time.perf_counter() - began
        say(f"{label} · world", 1, 1)
        shared, shared_seconds = None, 0.0
        modelled = [s for s in chosen if s.uses_model]
        if modelled:
            shared, shared_seconds = _shared_warmup(world, modelled[0], config, seed, say)
            timings[f"{label} warm-up"] = shared_seconds
            timings.update({f"{label} warm-up {k}": v for k, v in sorted(shared.inspector.timers.items())})
        for strategy in chosen:
            task = f"{label} · {strategy.name}"
            began = time.perf_counter()
            if strategy.uses_model:
                ctx = shared.fork(strategy)
            else:
                ctx = _new_context(copy.deepcopy(world), strategy, config, seed)
            first = ctx.day
            _advance(ctx, config.days, seed=seed, tick=lambda d, task=task, first=first: say(task, d - first, config.days - first))
            seconds = time.perf_counter() - began
            timings[f"{label} {strategy.name}"] = seconds
            runs.append(_finish(ctx, strategy, seed, seconds, shared_seconds if strategy.uses_model else 0.0))
    return BacktestResult(config, chosen, seed_list, runs, timings)


def _shared_warmup(world: World, strategy: Strategy, config: BacktestConfig, seed: int, say: Progress) -> tuple[_Context, float]:
    """Run the warm-up once (and train the first model) for every model strategy of ``seed``."""
    began = time.perf_counter()
    ctx = _new_context(copy.deepcopy(world), strategy, config, seed)
    until = min(config.model_start, config.days)
    task = f"seed {seed} · warm-up"
    _advance(ctx, until, seed=seed, tick=lambda d: say(task, d, until))
    if config.model_start < config.days:
        with _timed(ctx.inspector.timers, "bootstrap"):
            _bootstrap(ctx, seed=seed)
    return ctx, time.perf_counter() - began
