"""Loading-side features on hand-built samples: what an export unit knows at 00:00 UTC of the departure day, and nothing later."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from features.manifest import MISSING
from features.registry import REGISTRY

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_samples import DAY, HOUR, T, US, candidates, event, features, history, manifest, outcome  # noqa: E402

ETD = T + 18 * HOUR


def export_row(manifest_id: str = "M1", **overrides) -> dict:
    """A banana reefer leaving Guayaquil at 18:00 on the decision day, booked 10 days and filed 3 days before."""
    row = manifest(
        manifest_id=manifest_id,
        port_of_loading="ECGYE",
        place_of_receipt="ECGYE",
        booked_at=T - 10 * DAY,
        filed_at=T - 3 * DAY,
        etd=ETD,
        eta=ETD + 20 * DAY,
    )
    row.update({"booking_amended_at": None, "booking_amended_fields": None})
    row.update(overrides)
    return row


def score(*rows: dict, events=(), outcomes=(), past=()) -> pl.DataFrame:  # noqa: ANN001
    return features(candidates(*rows, at=T), history([*past, *rows], list(events), list(outcomes)))


def value(frame: pl.DataFrame, column: str, row: int = 0) -> float:
    return frame[column][row]


def test_loading_features_are_registered_in_their_family() -> None:
    loading = [s.name for s in REGISTRY.values() if s.family == "loading"]
    assert loading == [
        "booking_changed",
        "booking_change_hours_before_etd",
        "booking_change_sensitive",
        "gate_in_lead_hours",
        "awaiting_gate_in",
        "seal_changes",
    ]
    for family in ("exporter_heading_n_prior", "exporter_destination_n_prior", "destination_n_findings", "destination_days_since_last_finding"):
        assert REGISTRY[family].family == "entity"


def test_a_booking_change_known_before_decision_counts_with_its_lead_and_fields() -> None:
    out = score(
        export_row("M1", booking_amended_at=T - 10 * HOUR, booking_amended_fields=["consignee"]),
        export_row("M2", booking_amended_at=T - 5 * DAY, booking_amended_fields=["vessel"]),
        export_row("M3"),
    )
    assert out["booking_changed"].to_list() == [1, 1, 0]
    assert out["booking_change_hours_before_etd"].to_list() == pytest.approx([28.0, 5 * 24 + 18.0, MISSING])
    assert out["booking_change_sensitive"].to_list() == [1, 0, 0]


def test_a_booking_change_at_or_after_the_decision_time_changes_nothing() -> None:
    before = score(export_row("M1"))
    for at in (T, T + US, T + 2 * HOUR):
        after = score(export_row("M1", booking_amended_at=at, booking_amended_fields=["consignee", "seal"]))
        assert after.equals(before), at


def test_feeds_without_booking_columns_get_the_sentinels() -> None:
    rows = candidates(export_row("M1"), at=T).drop("booking_amended_at", "booking_amended_fields")
    hist = history([export_row("M1")])
    out = features(rows, hist)
    assert (value(out, "booking_changed"), value(out, "booking_change_hours_before_etd"), value(out, "booking_change_sensitive")) == (0, MISSING, 0)


def test_gate_in_lead_terminal_dwell_and_awaiting_gate_in() -> None:
    gated = score(export_row("M1"), events=[event(event_time=T - 30 * HOUR, locode="ECGYE", event_type="GATE_IN")])
    assert value(gated, "gate_in_lead_hours") == pytest.approx(48.0)
    assert value(gated, "awaiting_gate_in") == 0
    assert value(gated, "origin_dwell_hours") == pytest.approx(30.0)  # terminal dwell so far, not loaded yet
    waiting = score(export_row("M1"))
    assert (value(waiting, "gate_in_lead_hours"), value(waiting, "awaiting_gate_in")) == (MISSING, 1)


def test_a_gate_in_after_the_decision_time_is_not_known() -> None:
    for at in (T, T + 3 * HOUR):
        out = score(export_row("M1"), events=[event(event_time=at, locode="ECGYE", event_type="GATE_IN")])
        assert (value(out, "gate_in_lead_hours"), value(out, "awaiting_gate_in")) == (MISSING, 1), at


def test_an_arrival_long_departed_is_never_awaiting_gate_in() -> None:
    out = score(manifest())  # the default sample: departed 14 days before T, arriving on T
    assert value(out, "awaiting_gate_in") == 0
    assert value(out, "booking_changed") == 0


def test_gate_in_at_another_port_or_of_an_earlier_trip_does_not_count() -> None:
    out = score(
        export_row("M1"),
        events=[
            event(event_time=T - 30 * HOUR, locode="COBUN", event_type="GATE_IN"),
            # the container's previous trip from Guayaquil, ended by its empty return
            event(event_time=T - 40 * DAY, locode="ECGYE", event_type="GATE_IN"),
            event(event_time=T - 12 * DAY, locode="NLRTM", event_type="EMPTY_RETURN"),
        ],
    )
    assert (value(out, "gate_in_lead_hours"), value(out, "awaiting_gate_in")) == (MISSING, 1)


@pytest.mark.parametrize(
    ("seals", "changes"),
    [
        ([], 0),
        (["SL1"], 0),
        (["RS9"], 1),
        (["SL1", "RS9", "RS9"], 1),
        (["SL1", "RS9", "SL1"], 2),
        (["SL1", None, "SL1"], 0),
    ],
)
def test_seal_changes_count_changes_along_documents_then_events(seals: list, changes: int) -> None:
    kinds = ["GATE_IN", "LOAD", "TS_DISCHARGE"]
    events = [
        event(event_time=T - (40 - i) * HOUR, locode="ECGYE" if i < 2 else "PAMIT", event_type=kinds[i], seal_number=s)
        for i, s in enumerate(seals)
    ]
    out = score(export_row("M1", etd=T - 39 * HOUR + HOUR, eta=T + 20 * DAY), events=events)
    assert value(out, "seal_changes") == changes


def test_a_seal_read_after_the_decision_time_changes_nothing() -> None:
    gate_in = event(event_time=T - 30 * HOUR, locode="ECGYE", event_type="GATE_IN", seal_number="SL1")
    before = score(export_row("M1"), events=[gate_in])
    after = score(export_row("M1"), events=[gate_in, event(event_time=T, locode="ECGYE", event_type="LOAD", seal_number="RS9")])
    assert before.equals(after)
    assert value(before, "seal_changes") == 0


def test_exporter_novelty_counts_the_exporters_earlier_product_and_destination() -> None:
    past = [
        manifest(manifest_id="P1", shipper_id="S1", hs_code="080390", port_of_discharge="NLRTM", filed_at=T - 60 * DAY, etd=T - 55 * DAY, eta=T - 35 * DAY),
        manifest(manifest_id="P2", shipper_id="S1", hs_code="080390", port_of_discharge="BEANR", filed_at=T - 50 * DAY, etd=T - 45 * DAY, eta=T - 25 * DAY),
        # filed at the decision time: not known yet
        manifest(manifest_id="P3", shipper_id="S1", hs_code="090111", port_of_discharge="DEHAM", filed_at=T, etd=T + DAY, eta=T + 20 * DAY),
    ]
    out = score(
        export_row("M1", shipper_id="S1", hs_code="080390", port_of_discharge="NLRTM"),
        export_row("M2", shipper_id="S1", hs_code="090111", port_of_discharge="DEHAM"),
        export_row("M3", shipper_id="S9", shipper_name="Andes Cargo Export SA", hs_code="080390", port_of_discharge="NLRTM"),
        past=past,
    )
    assert out["exporter_heading_n_prior"].to_list() == [2.0, 0.0, 0.0]
    assert out["exporter_destination_n_prior"].to_list() == [1.0, 0.0, 0.0]


def test_destination_risk_counts_seizures_of_containers_bound_there_recorded_before_decision() -> None:
    past = [
        manifest(manifest_id="P1", port_of_discharge="NLRTM", filed_at=T - 30 * DAY, etd=T - 20 * DAY, eta=T + 2 * DAY),
        manifest(manifest_id="P2", port_of_discharge="BEANR", filed_at=T - 30 * DAY, etd=T - 20 * DAY, eta=T + 2 * DAY),
    ]
    seized_at_export = [
        outcome("P1", inspected_at=T - 20 * DAY - 6 * HOUR, result="SEIZURE", port="ECGYE"),
        outcome("P2", inspected_at=T - 20 * DAY - 6 * HOUR, result="SEIZURE", port="ECGYE"),
        outcome("P1", inspected_at=T + HOUR, result="SEIZURE", port="NLRTM", exam_type="NII"),  # after decision: unknown
    ]
    out = score(export_row("M1", port_of_discharge="NLRTM"), export_row("M2", port_of_discharge="DEHAM"), past=past, outcomes=seized_at_export)
    assert out["destination_n_findings"].to_list() == [1.0, 0.0]
    assert out["destination_days_since_last_finding"].to_list() == pytest.approx([20.25, 3650.0])
