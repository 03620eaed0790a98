"""Precursor controls on served lists: a real small lake, the real engine, serving and ``audit replay`` alike.

An ephedrine shipment (HS 2939.41) from India to Manzanillo with no pre-export notification is a RULE item with
the precursor reason; a notification known strictly before the decision time clears it; one issued after it
changes nothing; a list replays identically from its record. No champion model (day-one lists), so each test
needs only the lake and an empty MLflow store.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from stdnum import iso6346

from features.candidates import Direction
from features.data.contracts import ALERTS, PRE_EXPORT_NOTIFICATIONS
from features.data.ingest import ingest
from features.data.lake import Lake
from features.rules.language import default_rule_profiles
from targeting.engine import ruleset_from
from targeting.kernel import PRECURSOR_CODES
from targeting.lake_engine import LakeEngine
from targeting.lists import InspectionList, ListRequest

DAY = date(2025, 3, 20)
DECISION = datetime(2025, 3, 20, tzinfo=UTC)
ETD = datetime(2025, 2, 28, 18, tzinfo=UTC)
NOW = datetime(2025, 6, 1, tzinfo=UTC)
TS_DAY = date(2025, 3, 2)
"""The estimated call at Colombo (LKCMB), the transshipment hub of every manifest here."""
RULES = ruleset_from(default_rule_profiles(), 1)
NO_WATCHLIST = pl.DataFrame(schema=ALERTS.schema)
EPHEDRINE = "EPH-1"
REASON = "Precursor Ephedrine (HS 293941, 1988 Convention Table I) with no matching pre-export notification from IN to MX"
PROVENANCE = ("input_data_sha256", "data_version", "lake_versions")


def container(i: int) -> str:
    base = f"MSCU{i:06d}"
    return base + iso6346.calc_check_digit(base)


def manifest(i: int, manifest_id: str, hs_code: str, description: str) -> dict:
    return {
        "manifest_id": manifest_id, "container_number": container(i), "container_type": "22G1", "reefer": False, "seal_number": f"SL{i}",
        "master_bl": f"MAEU{i}", "house_bl": None, "vessel_imo": "9074729", "voyage": "011W", "carrier": "MAEU", "place_of_receipt": "INNSA",
        "port_of_loading": "INNSA", "transshipment_ports": ["LKCMB"], "port_of_discharge": "MXZLO", "place_of_delivery": "MXZLO",
        "shipper_id": f"S{i}", "shipper_name": "Pharma Chem Ltd", "shipper_country": "IN", "consignee_id": f"C{i}",
        "consignee_name": "Quimica Central S.A. de C.V.", "consignee_country": "MX", "notify_id": None, "notify_name": None,
        "notify_country": None, "hs_code": hs_code, "goods_description": description, "packages": 40, "gross_mass_kg": 500.0,
        "verified_gross_mass_kg": 510.0, "declared_value": 9000.0, "currency": "USD", "freight_payment": "PP",
        "booked_at": ETD - timedelta(days=12), "filed_at": ETD - timedelta(days=2), "amended_at": None, "amended_fields": None,
        "etd": ETD, "eta": datetime(2025, 3, 20, 6, tzinfo=UTC),
    }  # fmt: skip


def notification(**overrides) -> dict:
    row = {"notification_id": "PEN-IN-2025-0042", "exporting_country": "IN", "importing_country": "MX", "exporter_name": "Pharma Chem Ltd",
           "importer_name": "QUIMICA CENTRAL SA DE CV", "chemical": "Ephedrine", "hs_code": "293941", "quantity_kg": 480.0,
           "shipment_from": ETD - timedelta(days=20), "shipment_to": ETD + timedelta(days=20), "notified_at": ETD - timedelta(days=30)}
    return {**row, **overrides}


def put(lake: Lake, table: str, rows: list[dict], folder: Path, schema=None) -> None:  # noqa: ANN001 - a schema mapping
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{table}-{lake.last_seq()}.parquet"
    pl.DataFrame(rows, schema=schema).write_parquet(path)
    summary = ingest(lake, table, [path], now=NOW)
    assert summary.quarantined == 0 and summary.accepted == len(rows)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("precursor-mlruns")
    return f"sqlite:///{root / 'mlflow.db'}"


@pytest.fixture
def lake(tmp_path) -> Lake:
    """Five arrivals at Manzanillo on the list day: the ephedrine shipment and four ordinary ones."""
    lake = Lake(tmp_path / "lake")
    rows = [manifest(1, EPHEDRINE, "29394100", "EPHEDRINE HYDROCHLORIDE")]
    rows += [manifest(i, f"ORD-{i}", "640299", "FOOTWEAR") for i in range(2, 6)]
    put(lake, "manifests", rows, tmp_path / "in")
    return lake


def engine(lake: Lake, tracking_uri: str, tmp_path: Path) -> LakeEngine:
    return LakeEngine(lake_dir=lake.root, tracking_uri=tracking_uri, cache_dir=tmp_path / "cache", threads=1)


def ask(direction: Direction = Direction.IMPORT, **overrides) -> ListRequest:
    port, day = {Direction.IMPORT: ("MXZLO", DAY), Direction.EXPORT: ("INNSA", ETD.date()), Direction.TRANSSHIPMENT: ("LKCMB", TS_DAY)}[direction]
    return ListRequest(**{"port": port, "list_date": day, "capacity": 2, "exploration_share": 0.0, "direction": direction, **overrides})


def item(record: InspectionList, manifest_id: str):  # noqa: ANN201 - ListItem or None
    return next((i for i in record.items if i.manifest_id == manifest_id), None)


def content(record: InspectionList) -> dict:
    return {k: v for k, v in dataclasses.asdict(record).items() if k not in PROVENANCE}


def precursor_reasons(record: InspectionList) -> list[str]:
    """The precursor-control reasons on the list (not the PRECURSOR-ORIGIN rule profile's, which asks to check the notification)."""
    return [r for i in record.items for r in i.reasons if r.startswith("Precursor ") or "quantity notified in" in r or " is misdeclared" in r]


@pytest.mark.parametrize("direction", list(Direction))
def test_unnotified_ephedrine_shipment_is_selected_first_with_its_precursor_reason_and_replays(lake, tracking_uri, tmp_path, direction):
    served_engine = engine(lake, tracking_uri, tmp_path)
    served = served_engine.build_list(ask(direction), ruleset=RULES, watchlist=NO_WATCHLIST)
    hit = item(served, EPHEDRINE)
    assert hit is not None and hit.rank == 1 and hit.source == "RULE" and hit.reasons[0] == REASON
    assert precursor_reasons(served) == [REASON]  # the footwear is not flagged
    replayed = engine(lake, tracking_uri, tmp_path / "other").replay(served, ruleset=RULES, watchlist=NO_WATCHLIST)
    assert replayed == served


def test_matching_notification_known_before_the_decision_clears_the_flag(lake, tracking_uri, tmp_path):
    put(lake, "pre_export_notifications", [notification()], tmp_path / "in", PRE_EXPORT_NOTIFICATIONS.schema)
    served = engine(lake, tracking_uri, tmp_path).build_list(ask(capacity=5), ruleset=RULES, watchlist=NO_WATCHLIST)
    hit = item(served, EPHEDRINE)
    assert hit is not None and precursor_reasons(served) == []


def test_quantity_far_above_the_notification_is_selected_with_the_notification_named(lake, tracking_uri, tmp_path):
    put(lake, "pre_export_notifications", [notification(quantity_kg=100.0)], tmp_path / "in", PRE_EXPORT_NOTIFICATIONS.schema)
    served = engine(lake, tracking_uri, tmp_path).build_list(ask(), ruleset=RULES, watchlist=NO_WATCHLIST)
    hit = item(served, EPHEDRINE)
    assert hit.rank == 1 and hit.source == "RULE"
    assert hit.reasons[0] == "Ephedrine: declared 500 kg gross, 5.0 times the quantity notified in PEN-IN-2025-0042"
    assert PRECURSOR_CODES["QUANTITY"] == "PRECURSOR-QUANTITY"


def test_notification_issued_after_the_decision_time_changes_nothing_and_the_record_still_replays(lake, tracking_uri, tmp_path):
    first_engine = engine(lake, tracking_uri, tmp_path)
    before = first_engine.build_list(ask(), ruleset=RULES, watchlist=NO_WATCHLIST)
    late = notification(notified_at=DECISION + timedelta(hours=1))
    put(lake, "pre_export_notifications", [late], tmp_path / "in", PRE_EXPORT_NOTIFICATIONS.schema)
    after = engine(lake, tracking_uri, tmp_path / "later").build_list(ask(), ruleset=RULES, watchlist=NO_WATCHLIST)
    assert after.data_version > before.data_version and item(after, EPHEDRINE).reasons[0] == REASON
    assert content(after) == content(before)
    assert first_engine.replay(before, ruleset=RULES, watchlist=NO_WATCHLIST) == before


def test_notification_ingested_after_a_list_was_served_does_not_change_its_replay(lake, tracking_uri, tmp_path):
    served_engine = engine(lake, tracking_uri, tmp_path)
    served = served_engine.build_list(ask(), ruleset=RULES, watchlist=NO_WATCHLIST)
    put(lake, "pre_export_notifications", [notification()], tmp_path / "in", PRE_EXPORT_NOTIFICATIONS.schema)
    assert served_engine.replay(served, ruleset=RULES, watchlist=NO_WATCHLIST) == served
    assert precursor_reasons(served_engine.build_list(ask(), ruleset=RULES, watchlist=NO_WATCHLIST)) == []


def test_precursor_hit_comes_first_among_a_rows_rule_reasons_and_adds_its_weight():
    from targeting.kernel import PRECURSOR_WEIGHT, precursor_hits, with_precursor_hits

    rows = pl.DataFrame([manifest(1, EPHEDRINE, "293941", "EPHEDRINE"), manifest(2, "ORD-2", "640299", "FOOTWEAR")]).with_columns(
        pl.lit(DECISION).alias("decision_at")
    )
    rules = pl.DataFrame({"manifest_id": [EPHEDRINE, "ORD-2"], "rule_codes": [["PRECURSOR-ORIGIN"], ["LATE-FILING"]],
                          "rule_reasons": [["origin"], ["late"]], "rule_score": [15.0, 8.0]})
    merged = {r["manifest_id"]: r for r in with_precursor_hits(rules, precursor_hits(rows, pl.DataFrame(schema=PRE_EXPORT_NOTIFICATIONS.schema))).to_dicts()}
    assert merged[EPHEDRINE] == {"manifest_id": EPHEDRINE, "rule_codes": [PRECURSOR_CODES["NO_PEN"], "PRECURSOR-ORIGIN"],
                                 "rule_reasons": [REASON, "origin"], "rule_score": 15.0 + PRECURSOR_WEIGHT}
    assert merged["ORD-2"] == {"manifest_id": "ORD-2", "rule_codes": ["LATE-FILING"], "rule_reasons": ["late"], "rule_score": 8.0}
