"""Valid raw rows (all strings) of every contract, shared by the validation, lake and ingest tests."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

NOW = datetime(2024, 2, 1, tzinfo=timezone.utc)

MANIFEST: dict[str, str | None] = {
    "manifest_id": "M1",
    "container_number": "CSQU3054383",
    "container_type": "22G1",
    "reefer": "false",
    "seal_number": "SL123",
    "master_bl": "MAEU123",
    "house_bl": None,
    "vessel_imo": "9074729",
    "voyage": "001E",
    "carrier": "MAEU",
    "place_of_receipt": "COBUN",
    "port_of_loading": "COBUN",
    "transshipment_ports": "PAMIT",
    "port_of_discharge": "NLRTM",
    "place_of_delivery": "NLRTM",
    "shipper_id": "S1",
    "shipper_name": "Frutas del Pacifico",
    "shipper_country": "CO",
    "consignee_id": "C1",
    "consignee_name": "Fresh Import BV",
    "consignee_country": "NL",
    "notify_id": None,
    "notify_name": None,
    "notify_country": None,
    "hs_code": "080390",
    "goods_description": "FRESH BANANAS",
    "packages": "1080",
    "gross_mass_kg": "21000",
    "verified_gross_mass_kg": "21150",
    "declared_value": "18000",
    "currency": "USD",
    "freight_payment": "PP",
    "booked_at": "2024-01-02T10:00:00Z",
    "filed_at": "2024-01-04T09:30:00+01:00",
    "amended_at": None,
    "amended_fields": None,
    "etd": "2024-01-05T18:00:00-05:00",
    "eta": "2024-01-20T06:00:00Z",
}

EVENT: dict[str, str | None] = {
    "container_number": "CSQU3054383",
    "event_time": "2024-01-20T08:00:00Z",
    "locode": "NLRTM",
    "event_type": "DISCHARGE",
    "vessel_imo": "9074729",
    "voyage": "001E",
    "seal_number": "SL123",
}

OUTCOME: dict[str, str | None] = {
    "manifest_id": "M1",
    "container_number": "CSQU3054383",
    "port": "NLRTM",
    "inspected_at": "2024-01-22T15:00:00+01:00",
    "exam_type": "PHYSICAL",
    "result": "SEIZURE",
    "seizure_category": "COCAINE",
    "quantity_kg": "120.5",
    "concealment_method": "rip-on/rip-off",
    "seal_status": "BROKEN",
    "examiner": "e-17",
    "selection_source": "MODEL",
}

ALERT: dict[str, str | None] = {
    "alert_id": "A1",
    "kind": "ROUTE",
    "value": "COBUN>NLRTM",
    "reason": "Cocaine in banana reefers",
    "issuing_unit": "PCU Guayaquil",
    "severity": "4",
    "valid_from": "2024-01-01T00:00:00Z",
    "valid_to": "2025-01-01T00:00:00Z",
}

PORT: dict[str, str | None] = {
    "locode": "XXABC",
    "name": "Example Harbour",
    "country": "XX",
    "latitude": "12.5",
    "longitude": "-45.25",
    "is_transshipment_hub": "false",
}

PRE_EXPORT_NOTIFICATION: dict[str, str | None] = {
    "notification_id": "PEN-IN-2024-000123",
    "exporting_country": "IN",
    "importing_country": "MX",
    "exporter_name": "Pharma Chem Ltd",
    "importer_name": "Quimica Central SA de CV",
    "chemical": "Pseudoephedrine",
    "hs_code": "293942",
    "quantity_kg": "450",
    "shipment_from": "2024-01-01T00:00:00Z",
    "shipment_to": "2024-02-01T00:00:00Z",
    "notified_at": "2023-12-20T09:00:00Z",
}

SAMPLES: dict[str, dict[str, str | None]] = {
    "manifests": MANIFEST,
    "events": EVENT,
    "outcomes": OUTCOME,
    "alerts": ALERT,
    "ports": PORT,
    "pre_export_notifications": PRE_EXPORT_NOTIFICATION,
}


def row(table: str, **overrides: str | None) -> dict[str, str | None]:
    """A valid raw row of ``table`` with ``overrides`` applied."""
    return {**SAMPLES[table], **overrides}


def raw_frame(rows: list[dict[str, str | None]]) -> pl.DataFrame:
    """Rows as a raw frame: every column String plus ``__row`` (Int64)."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    df = pl.DataFrame(
        {c: [r.get(c) for r in rows] for c in columns},
        schema={c: pl.String for c in columns},
    )
    return df.with_row_index("__row").with_columns(pl.col("__row").cast(pl.Int64))


def manifest_rows(n: int, *, start: int = 0) -> list[dict[str, str | None]]:
    """``n`` valid manifests with distinct ids ``M<start>``..."""
    return [row("manifests", manifest_id=f"M{i}") for i in range(start, start + n)]
