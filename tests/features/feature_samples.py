"""Typed, hand-built lake rows and statistics for the feature tests, plus a helper running both feature paths.

Every builder returns contract-typed rows (``MANIFESTS``, ``CONTAINER_EVENTS``,
``INSPECTION_OUTCOMES``, ``ALERTS``); keyword arguments override the defaults.
:func:`features` computes the batch (training) path and, when all candidates
share one decision time, the serving path too, and asserts they are equal.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import polars as pl
from polars.testing import assert_frame_equal

from features.data.contracts import ALERTS, CONTAINER_EVENTS, INSPECTION_OUTCOMES, MANIFESTS
from features.history import History
from features.pipeline import build_features, entity_state
from features.stats import CATEGORICAL_SOURCES, FeatureStats

T = datetime(2025, 3, 10, tzinfo=UTC)
"""The default decision time of hand-built scenarios."""
US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

PRIOR = 0.05
STRENGTH = 20.0


def manifest(**overrides) -> dict:
    """A plain direct banana shipment COBUN -> NLRTM arriving 6 h after :data:`T`, filed 15 days before it."""
    row = {
        "manifest_id": "M1",
        "container_number": "CSQU3054383",
        "container_type": "22G1",
        "reefer": False,
        "seal_number": "SL1",
        "master_bl": "MAEU1000",
        "house_bl": None,
        "vessel_imo": "9074729",
        "voyage": "001E",
        "carrier": "MAEU",
        "place_of_receipt": "COBUN",
        "port_of_loading": "COBUN",
        "transshipment_ports": [],
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
        "packages": 1000,
        "gross_mass_kg": 20_000.0,
        "verified_gross_mass_kg": None,
        "declared_value": 20_000.0,
        "currency": "USD",
        "freight_payment": "PP",
        "booked_at": T - 20 * DAY,
        "filed_at": T - 15 * DAY,
        "amended_at": None,
        "amended_fields": None,
        "etd": T - 14 * DAY,
        "eta": T + 6 * HOUR,
    }
    unknown = set(overrides) - set(row)
    if unknown:
        raise KeyError(f"not manifest columns: {sorted(unknown)}")
    row.update(overrides)
    return row


def event(container_number: str = "CSQU3054383", event_time: datetime = T, locode: str = "COBUN", event_type: str = "GATE_IN", **overrides) -> dict:
    row = {
        "container_number": container_number,
        "event_time": event_time,
        "locode": locode,
        "event_type": event_type,
        "vessel_imo": None,
        "voyage": None,
        "seal_number": "SL1",
    }
    row.update(overrides)
    return row


def outcome(manifest_id: str = "M1", inspected_at: datetime = T, result: str = "NO_FINDING", **overrides) -> dict:
    seizure = result == "SEIZURE"
    row = {
        "manifest_id": manifest_id,
        "container_number": "CSQU3054383",
        "port": "NLRTM",
        "inspected_at": inspected_at,
        "exam_type": "PHYSICAL",
        "result": result,
        "seizure_category": "COCAINE" if seizure else None,
        "quantity_kg": 100.0 if seizure else None,
        "concealment_method": "bags behind the doors" if seizure else None,
        "seal_status": "INTACT",
        "examiner": "EX-1",
        "selection_source": "RANDOM",
    }
    row.update(overrides)
    return row


def alert(alert_id: str, kind: str, value: str, valid_from: datetime = T - DAY, valid_to: datetime | None = None, severity: int = 3, **overrides) -> dict:
    row = {
        "alert_id": alert_id,
        "kind": kind,
        "value": value,
        "reason": f"reason of {alert_id}",
        "issuing_unit": "MAOC-N",
        "severity": severity,
        "valid_from": valid_from,
        "valid_to": valid_to,
    }
    row.update(overrides)
    return row


def frame(rows: list[dict], contract) -> pl.DataFrame:  # noqa: ANN001
    return pl.DataFrame(rows, schema=contract.schema, orient="row") if rows else pl.DataFrame(schema=contract.schema)


def manifests(*rows: dict) -> pl.DataFrame:
    return frame(list(rows), MANIFESTS)


def events(*rows: dict) -> pl.DataFrame:
    return frame(list(rows), CONTAINER_EVENTS)


def outcomes(*rows: dict) -> pl.DataFrame:
    return frame(list(rows), INSPECTION_OUTCOMES)


def alerts(*rows: dict) -> pl.DataFrame:
    return frame(list(rows), ALERTS)


def candidates(*rows: dict, at: datetime = T) -> pl.DataFrame:
    """Manifest rows scored at ``at``."""
    return manifests(*rows).with_columns(pl.lit(at, dtype=pl.Datetime("us", "UTC")).alias("decision_at"))


LOG_VPK_HEADING = 0.0  # 1 USD/kg for HS 0803
LOG_VPK_CHAPTER = math.log(2.0)  # 2 USD/kg for chapter 08
LOG_VPK_GLOBAL = math.log(5.0)
LOG_MASS_HEADING = math.log(20_000.0)
LOG_MASS_CHAPTER = math.log(15_000.0)
LOG_MASS_GLOBAL = math.log(10_000.0)


def hand_stats(**overrides) -> FeatureStats:
    """Statistics with round, known values (prior finding rate 0.05, strength 20)."""
    vocabularies = {column: [] for column in CATEGORICAL_SOURCES}
    vocabularies.update(
        carrier_code=["MAEU", "MSCU"],
        port_of_loading_code=["COBUN", "ECGYE"],
        origin_country_code=["CO", "EC"],
        port_of_discharge_code=["BEANR", "NLRTM"],
        last_hub_code=["DIRECT", "PAMIT"],
        container_type_code=["22G1", "45R1"],
        freight_payment_code=["CC", "PP", "TP"],
        hs_chapter_code=["08", "29"],
        hs_heading_code=["0803", "2939"],
        currency_code=["EUR", "USD"],
    )
    values = {
        "vocabularies": vocabularies,
        "heading_norms": {"0803": {"log_vpk": LOG_VPK_HEADING, "log_mass": LOG_MASS_HEADING}},
        "chapter_norms": {"08": {"log_vpk": LOG_VPK_CHAPTER, "log_mass": LOG_MASS_CHAPTER}},
        "global_norm": {"log_vpk": LOG_VPK_GLOBAL, "log_mass": LOG_MASS_GLOBAL},
        "tare_by_type": {"22G1": 2200.0},
        "prior_finding_rate": PRIOR,
        "prior_strength": STRENGTH,
    }
    values.update(overrides)
    return FeatureStats(**values)


def history(
    manifest_rows: list[dict] | pl.DataFrame = (),
    event_rows: list[dict] | pl.DataFrame = (),
    outcome_rows: list[dict] | pl.DataFrame = (),
    alert_rows: list[dict] | pl.DataFrame = (),
) -> History:
    def typed(rows, contract):  # noqa: ANN001, ANN202
        return rows if isinstance(rows, pl.DataFrame) else frame(list(rows), contract)

    return History.from_frames(
        typed(manifest_rows, MANIFESTS), typed(event_rows, CONTAINER_EVENTS), typed(outcome_rows, INSPECTION_OUTCOMES), typed(alert_rows, ALERTS)
    )


def features(cands: pl.DataFrame, hist: History, stats: FeatureStats | None = None) -> pl.DataFrame:
    """Batch features of ``cands``; when they share one decision time, also the serving path, asserted equal."""
    stats = stats or hand_stats()
    batch = build_features(cands, hist, stats)
    times = cands["decision_at"].unique()
    if times.len() == 1:
        served = build_features(cands, hist, stats, state=entity_state(hist, times[0]))
        assert_frame_equal(batch, served)
    return batch


def one(frame_: pl.DataFrame, column: str, row: int = 0) -> float:
    """One feature value of one row."""
    return frame_[column][row]
