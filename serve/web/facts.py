"""What the pages show beside a served list: manifest details, past inspections, matched alerts, port names.

Everything is read, never written: manifests, outcomes and alerts from the
lake (as the engine sees them), outcomes and watchlist entries recorded through
the service from the store. Facts about a manifest are limited to what was
known strictly before the decision time ``at`` (past inspections, alerts in
force); the manifest's own declared fields are what was filed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import or_, select

from features.data.handling import handled_directions
from features.data.lake import Lake
from features.data.reference import load_ports
from features.intel import match_alerts
from serve.db import Database
from serve.store.watchlist import watchlist_frame_at
from serve.tables import OutcomeRow

DETAIL_COLUMNS = (
    "manifest_id", "container_number", "container_type", "reefer", "seal_number", "master_bl", "house_bl", "vessel_imo", "voyage",
    "carrier", "place_of_receipt", "port_of_loading", "transshipment_ports", "port_of_discharge", "place_of_delivery", "hs_code",
    "goods_description", "packages", "gross_mass_kg", "declared_value", "currency", "freight_payment", "etd", "eta",
    "shipper_id", "shipper_name", "shipper_country", "consignee_id", "consignee_name", "consignee_country",
)
MAX_HISTORY_ROWS = 50
SHOWN_HISTORY_ROWS = 20


@functools.cache
def port_table() -> dict[str, dict[str, Any]]:
    """UN/LOCODE -> ``{name, country, latitude, longitude, is_transshipment_hub}`` (the packaged port reference)."""
    return {r["locode"]: r for r in load_ports().iter_rows(named=True)}


def port_label(locode: str | None) -> str:
    """``"Rotterdam (NLRTM)"``; the bare code for a port outside the reference."""
    if not locode:
        return ""
    port = port_table().get(locode)
    return f"{port['name']} ({locode})" if port else locode


def _lake(lake_dir: Path) -> Lake | None:
    lake = Lake(lake_dir)
    return lake if lake.root.is_dir() else None


def manifest_details(lake_dir: Path, manifest_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Declared fields (:data:`DETAIL_COLUMNS`) of the given manifests, by id (the last committed row of an id wins)."""
    lake = _lake(lake_dir)
    if lake is None or not manifest_ids:
        return {}
    frame = (
        lake.scan("manifests").filter(pl.col("manifest_id").is_in(list(manifest_ids))).select(DETAIL_COLUMNS).collect()
        .unique(subset="manifest_id", keep="last", maintain_order=True)
    )
    return {r["manifest_id"]: r for r in frame.iter_rows(named=True)}


def manifest_for_ports(lake_dir: Path, manifest_id: str, ports: tuple[str, ...] | None) -> dict[str, Any] | None:
    """The manifest when one of ``ports`` handles it (``ports=None``: any port); ``None`` otherwise (no existence oracle)."""
    found = manifest_details(lake_dir, [manifest_id]).get(manifest_id)
    if found is None:
        return None
    if ports is not None and not any(handled_directions(found, p) for p in ports):
        return None
    return found


@dataclass(frozen=True)
class PastInspection:
    """An exam known before the decision time, and why it concerns this container."""

    inspected_at: datetime
    port: str | None
    container_number: str
    link: str
    """``container``, ``shipper`` or ``consignee``."""
    exam_type: str
    result: str
    seizure_category: str | None
    quantity_kg: float | None
    concealment_method: str | None


def _links(manifest: dict[str, Any], row: dict[str, Any]) -> str:
    if row.get("container_number") == manifest["container_number"]:
        return "container"
    if row.get("shipper_id") == manifest["shipper_id"]:
        return "shipper"
    return "consignee"


def past_inspections(lake_dir: Path, database: Database, manifest: dict[str, Any], *, at: datetime) -> list[PastInspection]:
    """Exams of the same container, shipper or consignee finished strictly before ``at`` (lake and store): findings first, then newest first."""
    rows: list[dict[str, Any]] = []
    lake = _lake(lake_dir)
    if lake is not None:
        related = lake.scan("manifests").filter(
            (pl.col("container_number") == manifest["container_number"]) | (pl.col("shipper_id") == manifest["shipper_id"])
            | (pl.col("consignee_id") == manifest["consignee_id"])
        ).select("manifest_id", "shipper_id", "consignee_id").unique("manifest_id")
        outcomes = lake.scan("outcomes").filter(pl.col("inspected_at") < at).join(related, on="manifest_id", how="inner")
        rows.extend(outcomes.sort("inspected_at", descending=True).head(MAX_HISTORY_ROWS).collect().iter_rows(named=True))
        related_ids = related.select("manifest_id").collect().get_column("manifest_id").to_list()
        parties = related.collect()
        party_of = {r["manifest_id"]: r for r in parties.iter_rows(named=True)}
    else:
        related_ids, party_of = [manifest["manifest_id"]], {}
    with database.read() as session:
        query = select(OutcomeRow).where(OutcomeRow.inspected_at < at).where(
            or_(OutcomeRow.container_number == manifest["container_number"], OutcomeRow.manifest_id.in_(related_ids[:5000]))
        ).order_by(OutcomeRow.inspected_at.desc()).limit(MAX_HISTORY_ROWS)
        for o in session.scalars(query):
            rows.append({**party_of.get(o.manifest_id, {}), **{c: getattr(o, c) for c in (
                "manifest_id", "container_number", "port", "inspected_at", "exam_type", "result", "seizure_category", "quantity_kg",
                "concealment_method")}})
    seen, out = set(), []
    findings_first = sorted(sorted(rows, key=lambda r: r["inspected_at"], reverse=True), key=lambda r: r["result"] == "NO_FINDING")
    for r in findings_first:
        key = (r["manifest_id"], r["exam_type"], r["inspected_at"])
        if key in seen:
            continue
        seen.add(key)
        out.append(PastInspection(r["inspected_at"], r.get("port"), r["container_number"], _links(manifest, r), r["exam_type"], r["result"],
                                  r.get("seizure_category"), r.get("quantity_kg"), r.get("concealment_method")))
    return out[:SHOWN_HISTORY_ROWS]


def _alerts(lake_dir: Path, database: Database, at: datetime) -> pl.DataFrame:
    frames = []
    lake = _lake(lake_dir)
    if lake is not None:
        frames.append(lake.scan("alerts").collect())
    with database.read() as session:
        frames.append(watchlist_frame_at(session, at))
    columns = ["alert_id", "kind", "value", "reason", "issuing_unit", "severity", "valid_from", "valid_to"]
    frames = [f.select([c for c in columns if c in f.columns]) for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def matched_alerts(lake_dir: Path, database: Database, manifest: dict[str, Any], *, at: datetime) -> list[dict[str, Any]]:
    """Alerts in force at ``at`` that match the manifest: ``alert_id``, ``kind``, ``reason``, ``issuing_unit``, ``severity``."""
    alerts = _alerts(lake_dir, database, at)
    if alerts.height == 0:
        return []
    lake = _lake(lake_dir)
    row = lake.scan("manifests").filter(pl.col("manifest_id") == manifest["manifest_id"]).tail(1)
    hits = match_alerts(row.with_columns(pl.lit(at).cast(pl.Datetime("us", "UTC")).alias("decision_at")), alerts.lazy()).collect()
    if hits.height == 0:
        return []
    ids = hits.get_column("alert_ids").item().to_list()
    chosen = alerts.filter(pl.col("alert_id").is_in(ids)).unique("alert_id").sort(["severity", "alert_id"], descending=[True, False])
    return chosen.select("alert_id", "kind", "reason", "issuing_unit", "severity").to_dicts()


def route_of(manifest: dict[str, Any]) -> list[str]:
    """Origin, transshipment hubs, discharge, delivery: the UN/LOCODEs in order, consecutive repeats removed."""
    stops = [manifest.get("place_of_receipt"), manifest.get("port_of_loading"), *(manifest.get("transshipment_ports") or ()),
             manifest.get("port_of_discharge"), manifest.get("place_of_delivery")]
    out: list[str] = []
    for s in stops:
        if s and (not out or out[-1] != s):
            out.append(s)
    return out
