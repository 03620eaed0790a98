"""Pre-export notifications of the simulated world (INCB PEN Online style).

Legitimate chemical trade declared under a precursor HS code, or under a code precursors are misdeclared
under (``features/data/precursors.csv``), is notified by the exporting country before shipment: one
notification per such manifest line, with the importer's name as the exporter spells it (sometimes another
legal-form spelling), a net quantity a little below the gross mass and a shipment window around the ETD.
A small share of legitimate shipments is never notified (administrative gaps: the flag's false positives).
Diverted shipments (the oracle's illicit ``PRECURSOR`` rows) are never notified.

Written as ``pre_export_notifications.parquet`` beside the other feeds (PRE_EXPORT_NOTIFICATIONS contract).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from features.data.contracts import PRE_EXPORT_NOTIFICATIONS
from features.precursors import precursor_codes

UNNOTIFIED_SHARE = 0.03
"""Share of legitimate chemical shipments with no notification."""
_SPELLINGS = ((" LTD", " LIMITED"), (" SA", " S.A."), (" CO", " COMPANY"), (" INC", " INCORPORATED"))


def _importer_spelling(name: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return name
    for short, long in _SPELLINGS:
        if name.upper().endswith(short):
            return name[: -len(short)] + long
    return name.upper()


def pre_export_notifications(manifests: pl.DataFrame, oracle: pl.DataFrame, *, seed: int) -> pl.DataFrame:
    """Notifications for the legitimate shipments under precursor or misdeclaration codes (see the module docstring)."""
    codes = precursor_codes()
    diverted = oracle.filter(pl.col("illicit") & (pl.col("category") == "PRECURSOR")).select("manifest_id")
    chemical = (
        manifests.with_columns(pl.col("hs_code").str.slice(0, 6).alias("hs6"))
        .join(codes.select("hs6", "substance"), on="hs6", how="inner")
        .join(diverted, on="manifest_id", how="anti")
        .sort("manifest_id")
    )
    rng = np.random.default_rng([seed, 1988])
    rows = []
    for m in chemical.iter_rows(named=True):
        if rng.random() < UNNOTIFIED_SHARE:
            continue
        etd = m["etd"]
        rows.append({
            "notification_id": f"PEN-{m['port_of_loading'][:2]}-{m['manifest_id']}",
            "exporting_country": m["port_of_loading"][:2],
            "importing_country": m["port_of_discharge"][:2],
            "exporter_name": m["shipper_name"],
            "importer_name": _importer_spelling(m["consignee_name"], rng),
            "chemical": m["substance"],
            "hs_code": m["hs6"],
            "quantity_kg": round(float(m["gross_mass_kg"]) * float(rng.uniform(0.85, 0.97)), 1),
            "shipment_from": etd - timedelta(days=int(rng.integers(10, 30))),
            "shipment_to": etd + timedelta(days=int(rng.integers(10, 30))),
            "notified_at": min(m["booked_at"], etd) - timedelta(days=int(rng.integers(1, 15))),
        })
    return pl.DataFrame(rows, schema=PRE_EXPORT_NOTIFICATIONS.schema)


def write_pre_export_notifications(tables, out: Path, *, seed: int) -> Path:  # noqa: ANN001 - targeting.sim.world.WorldTables
    """Write the world's notifications to ``out/pre_export_notifications.parquet``; returns the path."""
    path = Path(out) / "pre_export_notifications.parquet"
    pre_export_notifications(tables.manifests, tables.oracle, seed=seed).write_parquet(path)
    return path
