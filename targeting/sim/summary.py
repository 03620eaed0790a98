"""Headline figures of a simulated world (written to ``world.json``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
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
