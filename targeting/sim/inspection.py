"""How the simulated control units select and examine: the historical policy and the import exam.

An :class:`Inspector` selects, for one day's candidates, which get inspected
at each port; :class:`HistoricalInspector` is the policy units followed before
the engine (watchlist hits, rule profiles by weight, a random slice).
:func:`examine_imports` turns a selection of arrivals into outcome rows (the
export exam is :func:`targeting.sim.export_control.examine_exports`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import polars as pl

from features.intel import match_alerts
from features.rules.language import RuleProfile, evaluate_rules


class Inspector(Protocol):
    """Selects, for one arrival day, which candidates get inspected at each port.

    ``candidates`` are the day's manifests for all ports (``port_of_discharge``
    is the inspecting port) with their hidden columns; the inspector may only
    use the contract columns and ``alerts``. Returns ``manifest_id``,
    ``selection_source`` and ``exam_type`` per inspected row.
    """

    def __call__(self, day: int, candidates: pl.DataFrame, alerts: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame: ...


@dataclass
class HistoricalInspector:
    """The unit's historical policy per port-day: watchlist hits, rule profiles by weight, and a random slice.

    Capacity is ``inspection_rate`` of the port-day's arrivals (watchlist hits
    first, then rule hits by score with random tie-break); the random slice
    inspects each other candidate with probability ``random_rate``.

    ``port_column`` names the inspecting port (``port_of_discharge`` for
    imports; ``port`` for the export candidates of
    :meth:`targeting.sim.world.World.inspect_exports`). When the candidates carry a
    ``decision_at`` column (exports: 00:00 UTC of the departure day) alerts are
    matched at each row's own decision time and rules are those active at the
    earliest one; otherwise the decision time is the arrival day's midnight.
    ``stochastic_capacity``: the capacity is ``inspection_rate x n`` rounded
    up with probability equal to its fraction (no minimum of one), for units
    whose port-day groups are small (export units).
    """

    rules: list[RuleProfile]
    inspection_rate: float
    random_rate: float
    start_at: datetime
    port_column: str = "port_of_discharge"
    stochastic_capacity: bool = False

    def __call__(self, day, candidates, alerts, rng):
        if candidates.height == 0:
            return empty_selection()
        if "decision_at" in candidates.columns:
            frame = candidates.lazy()
            decision_at = candidates["decision_at"].min()
        else:
            decision_at = self.start_at + timedelta(days=day)
            frame = candidates.lazy().with_columns(pl.lit(decision_at).alias("decision_at"))
        hits = match_alerts(frame, alerts.lazy()).select("manifest_id", "alert_count")
        scored = evaluate_rules(self.rules, frame, at=decision_at, port=None).select("manifest_id", "rule_score")
        ranked = (
            frame.select("manifest_id", self.port_column)
            .join(hits, on="manifest_id", how="left", maintain_order="left")
            .join(scored, on="manifest_id", how="left", maintain_order="left")
            .collect()
            .with_columns(pl.Series("_tiebreak", rng.random(candidates.height)), pl.Series("_random", rng.random(candidates.height)))
        )
        selections = [self._select_port(group, rng) for group in ranked.partition_by(self.port_column, maintain_order=True)]
        return pl.concat(selections) if selections else empty_selection()

    def _select_port(self, ranked: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        if self.stochastic_capacity:
            capacity = int(self.inspection_rate * ranked.height + rng.random())
        else:
            capacity = max(1, round(self.inspection_rate * ranked.height))
        watch = ranked.filter(pl.col("alert_count") > 0)
        rules = (
            ranked.filter((pl.col("alert_count") == 0) & (pl.col("rule_score") > 0))
            .sort(["rule_score", "_tiebreak"], descending=[True, False])
            .head(max(0, capacity - watch.height))
        )
        chosen = set(watch["manifest_id"].to_list()) | set(rules["manifest_id"].to_list())
        random = ranked.filter((pl.col("_random") < self.random_rate) & ~pl.col("manifest_id").is_in(list(chosen)))
        selection = pl.concat(
            [
                watch.with_columns(pl.lit("WATCHLIST").alias("selection_source")),
                rules.with_columns(pl.lit("RULE").alias("selection_source")),
                random.with_columns(pl.lit("RANDOM").alias("selection_source")),
            ]
        )
        physical = (pl.col("selection_source") == "WATCHLIST") | (pl.col("rule_score") >= 30) | pl.Series(rng.random(selection.height) < 0.3)
        return selection.select(
            "manifest_id", "selection_source", pl.when(physical).then(pl.lit("PHYSICAL")).otherwise(pl.lit("NII")).alias("exam_type")
        )


def empty_selection() -> pl.DataFrame:
    return pl.DataFrame(schema={"manifest_id": pl.String, "selection_source": pl.String, "exam_type": pl.String})


def examine_imports(manifests: pl.DataFrame, truth: pl.DataFrame, selection: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Outcome rows of the selected import exams (at the port of discharge, 6-60 hours after the ETA)."""
    columns = ("manifest_id", "container_number", "port_of_discharge", "eta", "seal_number", "_event_seal")
    rows = selection.join(manifests.select(columns), on="manifest_id", how="left")
    rows = rows.join(truth.select("manifest_id", "category", "quantity_kg", "concealment"), on="manifest_id", how="left")
    n = rows.height
    physical = (rows["exam_type"] == "PHYSICAL").to_numpy()
    illicit = rows["category"].is_not_null().to_numpy()
    found = illicit & (rng.random(n) < np.where(physical, 0.92, 0.75))
    discrepancy = ~illicit & (rng.random(n) < 0.04)
    seal_swapped = (rows["seal_number"] != rows["_event_seal"]).fill_null(False).to_numpy()
    result = np.where(found, "SEIZURE", np.where(discrepancy, "DISCREPANCY", "NO_FINDING"))
    seal_status = np.where(seal_swapped & physical, "MISMATCH", np.where(physical, "INTACT", "NOT_CHECKED"))
    hours = rng.uniform(6, 60, n)
    return rows.select(
        "manifest_id",
        "container_number",
        pl.col("port_of_discharge").alias("port"),
        (pl.col("eta") + pl.Series(hours * 3_600_000_000).cast(pl.Int64).cast(pl.Duration("us"))).alias("inspected_at"),
        "exam_type",
        pl.Series("result", result),
        pl.when(pl.Series(found)).then(pl.col("category")).otherwise(None).alias("seizure_category"),
        pl.when(pl.Series(found)).then((pl.col("quantity_kg") * pl.Series(rng.uniform(0.9, 1.0, n))).round(1)).otherwise(None).alias("quantity_kg"),
        pl.when(pl.Series(found)).then(pl.col("concealment")).otherwise(None).alias("concealment_method"),
        pl.Series("seal_status", seal_status),
        (pl.lit("EX-") + pl.col("port_of_discharge") + pl.lit("-") + pl.Series(rng.integers(1, 40, n)).cast(pl.String).str.zfill(3)).alias("examiner"),
        "selection_source",
        pl.lit("IMPORT").alias("direction"),
    )
