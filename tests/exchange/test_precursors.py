"""Precursor controls: the shipped list, the pre_export_notifications table and the flags it drives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from features.data.contracts import PRE_EXPORT_NOTIFICATIONS
from features.data.ingest import ingest
from features.data.lake import Lake
from features.precursors import precursor_codes, precursor_flags

AT = datetime(2025, 8, 28, tzinfo=UTC)


def test_shipped_list_has_the_table_i_codes_with_their_hs_subheadings():
    codes = {r["hs6"]: r for r in precursor_codes().filter(pl.col("own")).to_dicts()}
    expected = {"293941": "Ephedrine", "293942": "Pseudoephedrine", "291524": "Acetic anhydride", "284161": "Potassium permanganate"}
    for hs6, name in expected.items():
        assert codes[hs6]["substance"] == name and codes[hs6]["control"] == "TABLE_I"
    assert codes["291431"]["substance"].startswith("1-Phenyl-2-propanone")


def shipment(manifest_id: str, hs_code: str, *, consignee: str = "Quimica Central S.A. de C.V.", gross: float = 500.0) -> dict:
    return {"manifest_id": manifest_id, "hs_code": hs_code, "port_of_loading": "INNSA", "port_of_discharge": "MXZLO",
            "consignee_name": consignee, "gross_mass_kg": gross, "etd": AT - timedelta(days=10), "decision_at": AT}


def notification(**overrides) -> dict:
    row = {"notification_id": "PEN-IN-2025-0001", "exporting_country": "IN", "importing_country": "MX", "exporter_name": "Pharma Chem Ltd",
           "importer_name": "QUIMICA CENTRAL SA DE CV", "chemical": "Pseudoephedrine", "hs_code": "293942", "quantity_kg": 450.0,
           "shipment_from": AT - timedelta(days=30), "shipment_to": AT, "notified_at": AT - timedelta(days=40)}
    return {**row, **overrides}


def flags(shipments: list[dict], notices: list[dict]) -> dict[str, dict]:
    notes = pl.DataFrame(notices, schema=PRE_EXPORT_NOTIFICATIONS.schema) if notices else None
    out = precursor_flags(pl.DataFrame(shipments), notes)
    return {r["manifest_id"]: r for r in out.to_dicts()}


def test_precursor_shipment_without_notification_is_flagged_with_a_specific_reason():
    got = flags([shipment("M1", "29394200"), shipment("M2", "08039010")], [])
    assert got["M1"]["precursor_reason"] == (
        "Precursor Pseudoephedrine (HS 293942, 1988 Convention Table I) with no matching pre-export notification from IN to MX"
    )
    assert got["M2"]["precursor_reason"] is None and not got["M2"]["precursor_code"]


def test_notified_shipment_passes_even_with_the_importer_spelled_differently():
    got = flags([shipment("M1", "293942")], [notification()])
    assert got["M1"]["precursor_notified"] and got["M1"]["precursor_reason"] is None


def test_quantity_far_above_the_notification_is_flagged():
    got = flags([shipment("M1", "293942", gross=2400.0)], [notification()])
    assert got["M1"]["precursor_reason"] == "Pseudoephedrine: declared 2400 kg gross, 5.3 times the quantity notified in PEN-IN-2025-0001"


def test_neighbouring_misdeclaration_code_without_notification_is_flagged():
    got = flags([shipment("M1", "293949")], [])
    assert got["M1"]["precursor_misdeclaration_code"] and "is where Ephedrine" in got["M1"]["precursor_reason"]


def test_notification_issued_after_the_decision_or_for_another_importer_does_not_cover():
    late = notification(notified_at=AT + timedelta(hours=1))
    other = notification(notification_id="PEN-2", importer_name="Distribuidora Norte SA")
    got = flags([shipment("M1", "293942")], [late, other])
    assert not got["M1"]["precursor_notified"] and got["M1"]["precursor_reason"].startswith("Precursor Pseudoephedrine")


def test_pre_export_notifications_are_ingested_with_bad_rows_quarantined_with_reasons(tmp_path):
    good = {k: (v.isoformat() if isinstance(v, datetime) else str(v)) for k, v in notification().items()}
    bad = {**good, "notification_id": "PEN-BAD", "quantity_kg": "0", "importing_country": "MEX"}
    source = tmp_path / "pen.csv"
    pl.DataFrame([good, bad], schema={k: pl.String for k in good}).write_csv(source)
    summary = ingest(Lake(tmp_path / "lake"), "pre_export_notifications", [source], now=AT)
    assert (summary.accepted, summary.quarantined) == (1, 1)
    stored = Lake(tmp_path / "lake").scan("pre_export_notifications").collect()
    assert stored["notification_id"].to_list() == ["PEN-IN-2025-0001"] and stored.schema == PRE_EXPORT_NOTIFICATIONS.schema
    reasons = dict(summary.reasons)
    assert "importing_country: not a 2-letter country code" in reasons and "quantity_kg: not above 0" in reasons


def test_simulated_world_notifies_legitimate_chemical_trade_and_never_the_diverted_shipments():
    from datetime import date

    from targeting.sim.precursor_notifications import pre_export_notifications
    from targeting.sim.world import WorldConfig, simulate_world

    tables = simulate_world(WorldConfig(seed=3, start=date(2025, 1, 1), days=60, containers_per_day=300))
    notices = pre_export_notifications(tables.manifests, tables.oracle, seed=3)
    diverted = tables.oracle.filter(pl.col("illicit") & (pl.col("category") == "PRECURSOR"))["manifest_id"].to_list()
    assert notices.height > 100 and diverted
    assert not set(notices["notification_id"].str.split("-").list.slice(2).list.join("-").to_list()) & set(diverted)
    shipments = tables.manifests.with_columns(pl.col("eta").alias("decision_at"))
    flagged = precursor_flags(shipments, notices).filter(pl.col("precursor_reason").is_not_null())["manifest_id"].to_list()
    codes = precursor_codes()["hs6"].to_list()
    coded = tables.manifests.filter(pl.col("manifest_id").is_in(diverted), pl.col("hs_code").str.slice(0, 6).is_in(codes))["manifest_id"].to_list()
    assert coded and set(coded) <= set(flagged)  # every diversion under a precursor or misdeclaration code is flagged
    assert len(set(flagged) - set(diverted)) <= len(coded)  # legitimate trade is notified: few false flags
