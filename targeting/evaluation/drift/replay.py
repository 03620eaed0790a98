"""The replay: the day-by-day backtest (selection policy, outcomes only for the selected, weekly retraining) through a drift scenario."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from targeting.evaluation.backtest import run_backtest
from targeting.evaluation.backtest.run import StrategyRun
from targeting.evaluation.drift.config import DriftBacktestConfig


def replay_run(config: DriftBacktestConfig, strategy: str, seed: int, *, progress: Callable[[str, int, int], None] | None = None) -> StrategyRun:
    """One strategy's replay on the scenario world of ``seed`` (:func:`targeting.evaluation.backtest.run_backtest`)."""
    return run_backtest(config, strategy, (seed,), progress=progress).runs[0]


def replay_frame(run: StrategyRun, *, directions: tuple[str, ...] = ("IMPORT",)) -> pl.DataFrame:
    """The run's candidates of ``directions`` with ``selected``, ``seized``, ``illicit`` and ``pattern`` (see :mod:`targeting.evaluation.drift.metrics`)."""
    frame = run.evaluation.filter(pl.col("direction").is_in(list(directions)))
    return frame.select("day", "port", "direction", "manifest_id", "illicit", "pattern", "selected", "seized")


def seizure_frame(run: StrategyRun) -> pl.DataFrame:
    """Every direction's candidates of the run (a seizure at export or at a hub is a seizure of the pattern too)."""
    return run.evaluation.select("day", "port", "direction", "manifest_id", "illicit", "pattern", "selected", "seized")
