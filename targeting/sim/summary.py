"""Headline figures of a simulated world (written to ``world.json``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from targeting.sim.world import WorldConfig, WorldTables


def summarise(config: WorldConfig, tables: WorldTables) -> dict:
    """Headline figures of a simulated world (base rate, inspections, seizures per source)."""
    o = tables.outcomes
    illicit = int(tables.oracle["illicit"].sum())
    by_source = (
        o.group_by("selection_source")
        .agg(pl.len().alias("inspected"), (pl.col("result") == "SEIZURE").sum().alias("seizures"))
        .sort("selection_source")
        .to_dicts()
    )
    return {
        "config": {k: (v.isoformat() if isinstance(v, date) else list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()},
        "manifests": tables.manifests.height,
        "events": tables.events.height,
        "outcomes": o.height,
        "alerts": tables.alerts.height,
        "illicit": illicit,
        "base_rate": illicit / max(1, tables.manifests.height),
        "seizures": int((o["result"] == "SEIZURE").sum()),
        "by_source": by_source,
        "illicit_by_method": tables.oracle.filter(pl.col("illicit")).group_by("method").len().sort("method").to_dicts(),
        "exports": _export_summary(config, tables),
        "scenario": _scenario_summary(config, tables),
        "legit_churn": config.legit_churn,
    }


def _scenario_summary(config: WorldConfig, tables: WorldTables) -> dict | None:
    """The drift scenario: name, change day (index and date), and the changed pattern's shipments and seizures."""
    scenario = config.drift_scenario
    if scenario is None:
        return None
    new = tables.oracle.filter(pl.col("pattern") == scenario.new_pattern)
    seized = tables.outcomes.filter(pl.col("result") == "SEIZURE").join(new.select("manifest_id"), on="manifest_id", how="semi")
    change_day = config.scenario_change_day
    return {
        "name": scenario.name,
        "description": scenario.description,
        "change_day": change_day,
        "change_date": (config.start + timedelta(days=change_day)).isoformat(),
        "new_pattern": scenario.new_pattern,
        "new_pattern_shipments": new.height,
        "new_pattern_seized": seized["manifest_id"].n_unique(),
        "new_pattern_stopped_at_export": int(new["seized_at_export"].sum()),
    }


def _export_summary(config: WorldConfig, tables: WorldTables) -> list[dict]:
    """Per export port: departures, export exams, seizures, contraband loaded there, containers stopped."""
    loaded = tables.oracle.filter(pl.col("port_of_loading").is_in(list(config.export_ports)))
    exams = tables.outcomes.join(loaded.select("manifest_id", pl.col("port_of_loading").alias("port")), on=["manifest_id", "port"], how="inner")
    per_port = loaded.group_by(pl.col("port_of_loading").alias("port")).agg(
        pl.len().alias("departures"),
        (pl.col("illicit") & (pl.col("loaded_at") == pl.col("port_of_loading"))).sum().alias("illicit_loaded_here"),
        pl.col("seized_at_export").sum().alias("stopped"),
    )
    per_exam = exams.group_by("port").agg(pl.len().alias("inspected"), (pl.col("result") == "SEIZURE").sum().alias("seizures"))
    return (
        per_port.join(per_exam, on="port", how="left")
        .with_columns(pl.col("inspected", "seizures").fill_null(0))
        .select("port", "departures", "inspected", "seizures", "illicit_loaded_here", "stopped")
        .sort("port")
        .to_dicts()
    )
