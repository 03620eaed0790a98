"""Specification of the manifest, routing, intelligence and categorical feature families on hand-built rows.

Each test asserts exact values computed by hand from the scenario; scenarios
whose candidates share one decision time also check the serving path.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import polars as pl
import pytest

from features.data.contracts import ALERT_KINDS
from features.manifest import MAX_GROSS_KG_20FT, MAX_GROSS_KG_40FT
from features.pipeline import KEY_COLUMNS, build_features
from features.data.reference import haversine_km_np, load_ports
from features.registry import categorical_columns, computed_columns
from features.stats import CATEGORICAL_SOURCES, UNKNOWN_CODE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_samples import (  # noqa: E402
    DAY,
    HOUR,
    LOG_MASS_HEADING,
    LOG_VPK_CHAPTER,
    LOG_VPK_GLOBAL,
    LOG_VPK_HEADING,
    T,
    US,
    alert,
    candidates,
    event,
    features,
    hand_stats,
    history,
    manifest,
)


def score(*rows: dict, at=T, events=(), alerts=(), stats=None) -> pl.DataFrame:  # noqa: ANN001
    """Features of ``rows`` at ``at`` with the rows themselves as manifest history."""
    return features(candidates(*rows, at=at), history(list(rows), events, (), alerts), stats)


def ids(n: int) -> list[str]:
    return [f"M{i}" for i in range(1, n + 1)]


# ----------------------------------------------------------------------------- manifest family
@pytest.mark.parametrize(
    ("description", "vague"),
    [
        ("FAK", 1),
        ("Freight All Kinds", 1),
        ("GENERAL CARGO", 1),
        ("SAID TO CONTAIN 1000 CARTONS", 1),
        ("STC 20 PALLETS", 1),
        ("consolidated cargo", 1),
        ("SUNDRIES", 1),
        ("various goods", 1),
        ("FRESH BANANAS", 0),
        ("FAKE FUR COATS", 0),  # 'FAK' only as a word
        ("GENERAL ELECTRIC MOTORS", 0),
        ("", 0),
    ],
)
def test_vague_description(description: str, vague: int) -> None:
    feats = score(manifest(goods_description=description))
    assert feats["vague_description"].item() == vague
    assert feats["description_length"].item() == float(len(description))


def test_declared_times_give_lead_and_transit_hours() -> None:
    feats = score(manifest(booked_at=T - 20 * DAY, filed_at=T - 15 * DAY, etd=T - 14 * DAY, eta=T + 6 * HOUR))
    assert feats["filing_lead_hours"].item() == 15 * 24 + 6
    assert feats["booking_lead_hours"].item() == 6 * 24
    assert feats["transit_hours"].item() == 14 * 24 + 6
    assert feats["filed_after_departure"].item() == 0
    late = score(manifest(filed_at=T - 13 * DAY, etd=T - 14 * DAY))
    assert late["filed_after_departure"].item() == 1


def test_party_and_paperwork_flags() -> None:
    rows = [
        manifest(manifest_id="M1"),
        manifest(manifest_id="M2", house_bl="NVO123", seal_number=None, notify_id="C1", freight_payment="CC", reefer=True, container_type="45R1"),
        manifest(manifest_id="M3", notify_id="N9", consignee_country="DE", freight_payment="TP", place_of_receipt="COCLO"),
    ]
    feats = score(*rows)
    assert feats["house_bl_only"].to_list() == [0, 1, 0]
    assert feats["seal_present"].to_list() == [1, 0, 1]
    assert feats["notify_differs"].to_list() == [0, 0, 1]  # no notify party, notify = consignee, another party
    assert feats["consignee_foreign"].to_list() == [0, 0, 1]
    assert feats["freight_not_prepaid"].to_list() == [0, 1, 1]
    assert feats["freight_third_party"].to_list() == [0, 0, 1]
    assert feats["reefer"].to_list() == [0, 1, 0]
    assert feats["receipt_differs_from_loading"].to_list() == [0, 0, 1]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"declared_value": 10_000.0}, math.log(0.5) - LOG_VPK_HEADING),  # heading 0803 norm: 1 USD/kg
        ({"declared_value": 40_000.0}, math.log(2.0) - LOG_VPK_HEADING),
        ({"declared_value": 10_000.0, "currency": "EUR"}, math.log(10_000 * 1.08 / 20_000) - LOG_VPK_HEADING),
        ({"declared_value": 10_000.0, "hs_code": "080100"}, math.log(0.5) - LOG_VPK_CHAPTER),  # heading unknown: chapter norm
        ({"declared_value": 10_000.0, "hs_code": "850440"}, math.log(0.5) - LOG_VPK_GLOBAL),  # chapter unknown: all goods
        ({"declared_value": 0.0}, 0.0),  # unusable: 0
        ({"declared_value": 10_000.0, "currency": "XXX"}, 0.0),  # no conversion rate: 0
    ],
)
def test_value_per_kg_log_deviation_against_fitted_norms(overrides: dict, expected: float) -> None:
    feats = score(manifest(**overrides))
    assert feats["value_per_kg_log_deviation"].item() == pytest.approx(expected, abs=1e-12)


def test_undervalued_goods_have_negative_value_deviation() -> None:
    feats = score(manifest(manifest_id="M1", declared_value=2_000.0), manifest(manifest_id="M2", declared_value=200_000.0))
    low, high = feats["value_per_kg_log_deviation"].to_list()
    assert low < 0 < high
    assert feats["value_per_kg_usd"].to_list() == [0.1, 10.0]


def test_value_per_kg_usd_is_minus_one_when_unusable() -> None:
    assert score(manifest(currency="XXX"))["value_per_kg_usd"].item() == -1.0


def test_mass_features() -> None:
    rows = [
        manifest(manifest_id="M1", gross_mass_kg=20_000.0, verified_gross_mass_kg=23_000.0),
        manifest(manifest_id="M2", gross_mass_kg=10_000.0, verified_gross_mass_kg=None),
        manifest(manifest_id="M3", container_type="45R1", reefer=True, gross_mass_kg=20_000.0, verified_gross_mass_kg=23_000.0),
    ]
    feats = score(*rows)
    # HS 0803 mass norm: 20,000 kg
    assert feats["mass_log_deviation"].to_list() == pytest.approx([0.0, math.log(10_000) - LOG_MASS_HEADING, 0.0], abs=1e-12)
    assert feats["mass_log_deviation"][1] == pytest.approx(math.log(0.5))
    assert feats["vgm_excess_kg"].to_list() == [800.0, 0.0, 3000.0]  # 22G1 tare 2200 fitted; no VGM: 0; 45R1 tare unknown: 0
    assert feats["mass_capacity_ratio"].to_list() == [20_000 / MAX_GROSS_KG_20FT, 10_000 / MAX_GROSS_KG_20FT, 20_000 / MAX_GROSS_KG_40FT]
    assert feats["packages_per_tonne"].to_list() == [50.0, 100.0, 50.0]


@pytest.mark.parametrize(
    ("amended_at", "fields", "at", "before", "late_sensitive"),
    [
        (T - 18 * HOUR, ["consignee"], T, 1, 1),  # 24 h before ETA, known at T
        (T - 18 * HOUR, ["consignee"], T - 20 * HOUR, 0, 0),  # not yet amended at the decision time
        (T - 18 * HOUR, ["consignee"], T - 18 * HOUR, 0, 0),  # amended exactly at the decision time: not yet known
        (T - 18 * HOUR, ["description", "mass"], T, 1, 1),
        (T - 18 * HOUR, ["mass", "value"], T, 1, 0),  # not a sensitive field
        (T - 100 * HOUR, ["destination"], T, 1, 0),  # 106 h before ETA: not late
        (None, None, T, 0, 0),
    ],
)
def test_late_sensitive_amendment_only_counts_once_known(amended_at, fields, at, before: int, late_sensitive: int) -> None:  # noqa: ANN001
    feats = score(manifest(amended_at=amended_at, amended_fields=fields), at=at)
    assert feats["amended_before_decision"].item() == before
    assert feats["late_sensitive_amendment"].item() == late_sensitive


# ----------------------------------------------------------------------------- routing family: route geometry
def _coords(locode: str) -> tuple[float, float]:
    row = load_ports().filter(pl.col("locode") == locode).row(0, named=True)
    return row["latitude"], row["longitude"]


def _km(a: str, b: str) -> float:
    return float(haversine_km_np(*_coords(a), *_coords(b)))


def _sea_km(*stops: str) -> float:
    """Sea length of the legs through ``stops``, summed in whole metres as the feature does."""
    from features.data.seadistance import sea_distance_m

    return sum(sea_distance_m(a, b) for a, b in zip(stops[:-1], stops[1:])) / 1000.0


def test_route_circuity_is_one_for_a_direct_route_and_more_via_a_hub() -> None:
    rows = [
        manifest(manifest_id="M1", place_of_receipt="CNSHA", port_of_loading="CNSHA"),
        manifest(manifest_id="M2", place_of_receipt="CNSHA", port_of_loading="CNSHA", transshipment_ports=["SGSIN"]),
        manifest(manifest_id="M3", place_of_receipt="CNSHA", port_of_loading="CNSHA", transshipment_ports=["PAMIT"]),
    ]
    feats = score(*rows)
    direct = _sea_km("CNSHA", "NLRTM")
    via_singapore = _sea_km("CNSHA", "SGSIN", "NLRTM")
    via_panama = _sea_km("CNSHA", "PAMIT", "NLRTM")
    assert feats["route_km"].to_list() == [direct, via_singapore, via_panama]
    assert feats["route_circuity"].to_list() == [1.0, via_singapore / direct, via_panama / direct]
    # Singapore lies on the sea route from Shanghai to Rotterdam (through Malacca and Suez); Panama does not
    assert 1.0 <= feats["route_circuity"][1] < 1.02
    assert feats["route_circuity"][2] > 1.2
    assert feats["transshipment_count"].to_list() == [0.0, 1.0, 1.0]


def test_route_length_is_the_sea_route_not_the_great_circle() -> None:
    feats = score(manifest(manifest_id="M1", place_of_receipt="CNSHA", port_of_loading="CNSHA"))
    assert feats["route_km"].item() > 1.8 * _km("CNSHA", "NLRTM")  # around Asia and through Suez, not over Siberia


def test_route_features_are_minus_one_for_a_port_without_coordinates() -> None:
    feats = score(manifest(transshipment_ports=["XXZZZ"]))
    assert feats["route_km"].item() == -1.0
    assert feats["route_circuity"].item() == -1.0


def test_loading_and_discharging_in_the_same_port_is_not_circuitous() -> None:
    assert score(manifest(port_of_loading="NLRTM", place_of_receipt="NLRTM"))["route_circuity"].item() == 1.0


# ----------------------------------------------------------------------------- routing family: container events
ETD = T - 14 * DAY


def test_origin_dwell_is_gate_in_to_load_at_the_port_of_loading() -> None:
    evs = [event(event_time=ETD - 36 * HOUR, event_type="GATE_IN"), event(event_time=ETD, event_type="LOAD")]
    feats = score(manifest(), events=evs)
    assert feats["origin_dwell_hours"].item() == 36.0
    assert feats["voyage_event_count"].item() == 2.0
    assert feats["load_event_missing"].item() == 0


def test_origin_dwell_before_loading_is_time_since_gate_in() -> None:
    evs = [event(event_time=ETD - 36 * HOUR, event_type="GATE_IN"), event(event_time=ETD, event_type="LOAD")]
    feats = score(manifest(), at=ETD - 12 * HOUR, events=evs)
    assert feats["origin_dwell_hours"].item() == 24.0
    assert feats["voyage_event_count"].item() == 1.0


def test_origin_dwell_is_minus_one_without_a_gate_in_at_the_port_of_loading() -> None:
    elsewhere = [event(event_time=ETD - 36 * HOUR, event_type="GATE_IN", locode="ECGYE")]
    assert score(manifest(), events=elsewhere)["origin_dwell_hours"].item() == -1.0
    assert score(manifest())["origin_dwell_hours"].item() == -1.0


def test_load_event_missing_after_departure() -> None:
    assert score(manifest())["load_event_missing"].item() == 1  # ETD 14 days ago, no LOAD seen
    recent = manifest(etd=T - 24 * HOUR, filed_at=T - 2 * DAY)
    assert score(recent)["load_event_missing"].item() == 0  # ETD less than 48 h ago


def test_transshipment_dwell_is_the_longest_stay_at_a_hub() -> None:
    row = manifest(transshipment_ports=["PAMIT", "ESALG"])
    evs = [
        event(event_time=ETD, event_type="LOAD"),
        event(event_time=ETD + 5 * DAY, locode="PAMIT", event_type="TS_DISCHARGE"),
        event(event_time=ETD + 5 * DAY + 50 * HOUR, locode="PAMIT", event_type="TS_LOAD"),
        event(event_time=ETD + 10 * DAY, locode="ESALG", event_type="TS_DISCHARGE"),
        event(event_time=ETD + 10 * DAY + 20 * HOUR, locode="ESALG", event_type="TS_LOAD"),
    ]
    assert score(row, events=evs)["transshipment_dwell_max_hours"].item() == 50.0
    # at ESALG for 60 h and not yet reloaded at the decision time: the stay so far counts
    stuck = evs[:4] + [event(event_time=ETD + 10 * DAY + 80 * HOUR, locode="ESALG", event_type="TS_LOAD")]
    assert score(row, at=ETD + 10 * DAY + 60 * HOUR, events=stuck)["transshipment_dwell_max_hours"].item() == 60.0
    assert score(row)["transshipment_dwell_max_hours"].item() == -1.0


def test_event_seal_mismatches_count_events_reading_another_seal() -> None:
    evs = [
        event(event_time=ETD - 36 * HOUR, event_type="GATE_IN", seal_number="SL1"),
        event(event_time=ETD, event_type="LOAD", seal_number="SL2"),
        event(event_time=ETD + 5 * DAY, locode="PAMIT", event_type="TS_DISCHARGE", seal_number="SL2"),
        event(event_time=ETD + 6 * DAY, locode="PAMIT", event_type="TS_LOAD", seal_number=None),  # no reading: no mismatch
        event(event_time=T + HOUR, locode="NLRTM", event_type="DISCHARGE", seal_number="SL3"),  # after the decision time
    ]
    feats = score(manifest(transshipment_ports=["PAMIT"]), events=evs)
    assert feats["event_seal_mismatches"].item() == 2.0
    assert feats["voyage_event_count"].item() == 4.0
    # a manifest without a seal number has nothing to mismatch (seal_present says so)
    assert score(manifest(seal_number=None), events=evs)["event_seal_mismatches"].item() == 0.0


def test_event_features_ignore_the_containers_previous_trip() -> None:
    previous = [
        event(event_time=ETD - 40 * DAY, event_type="GATE_IN", seal_number="OLD1"),
        event(event_time=ETD - 39 * DAY, event_type="LOAD", seal_number="OLD1"),
        event(event_time=ETD - 30 * DAY, locode="ESALG", event_type="TS_DISCHARGE", seal_number="OLD1"),
        event(event_time=ETD - 28 * DAY, locode="ESALG", event_type="TS_LOAD", seal_number="OLD1"),
        event(event_time=ETD - 20 * DAY, locode="NLRTM", event_type="DISCHARGE", seal_number="OLD1"),
        event(event_time=ETD - 18 * DAY, locode="NLRTM", event_type="GATE_OUT", seal_number="OLD1"),
        event(event_time=ETD - 15 * DAY, locode="NLRTM", event_type="EMPTY_RETURN", seal_number=None),
    ]
    current = [
        event(event_time=ETD - 36 * HOUR, event_type="GATE_IN"),
        event(event_time=ETD, event_type="LOAD"),
        event(event_time=ETD + 5 * DAY, locode="ESALG", event_type="TS_DISCHARGE"),
        event(event_time=ETD + 7 * DAY, locode="ESALG", event_type="TS_LOAD"),
    ]
    feats = score(manifest(transshipment_ports=["ESALG"]), events=previous + current)
    assert feats["origin_dwell_hours"].item() == 36.0
    assert feats["transshipment_dwell_max_hours"].item() == 48.0
    assert feats["event_seal_mismatches"].item() == 0.0
    assert feats["voyage_event_count"].item() == 4.0


def test_events_of_another_container_do_not_count() -> None:
    evs = [event(container_number="TEXU3070079", event_time=ETD - 36 * HOUR, event_type="GATE_IN", seal_number="X")]
    feats = score(manifest(), events=evs)
    assert feats["voyage_event_count"].item() == 0.0
    assert feats["origin_dwell_hours"].item() == -1.0


# ----------------------------------------------------------------------------- intelligence family
@pytest.mark.parametrize(
    ("valid_from", "valid_to", "active"),
    [
        (T - DAY, T + DAY, 1),
        (T - DAY, None, 1),  # open-ended
        (T, None, 1),  # valid_from is inclusive
        (T - 10 * DAY, T, 0),  # valid_to is exclusive: expired at T
        (T - 10 * DAY, T - US, 0),  # expired
        (T + US, None, 0),  # issued for later
        (T + DAY, T + 10 * DAY, 0),  # future
    ],
)
def test_alert_counts_only_when_active_at_decision_time(valid_from, valid_to, active: int) -> None:  # noqa: ANN001
    feats = score(manifest(), alerts=[alert("A1", "PARTY", "C1", valid_from, valid_to, severity=4)])
    assert feats["alert_count"].item() == active
    assert feats["alert_count_party"].item() == active
    assert feats["alert_max_severity"].item() == 4 * active


def test_alert_kinds_match_their_manifest_fields() -> None:
    row = manifest(house_bl="NVO77", notify_id="N5", transshipment_ports=["PAMIT"])
    cases = [
        alert("P1", "PARTY", "S1", severity=1),  # shipper
        alert("P2", "PARTY", "N5", severity=2),  # notify party
        alert("C1", "CONTAINER", "CSQU3054383", severity=2),
        alert("B1", "BL", "NVO77", severity=3),  # house B/L
        alert("B2", "BL", "MAEU1000", severity=1),  # master B/L
        alert("V1", "VESSEL", "9074729", severity=2),
        alert("H1", "HS_CODE", "0803", severity=5),
        alert("R1", "ROUTE", "PA>NL", severity=1),  # via a transshipment port in Panama
        alert("X1", "PARTY", "C2"),
        alert("X2", "CONTAINER", "TEXU3070079"),
        alert("X3", "HS_CODE", "0804"),
        alert("X4", "ROUTE", "EC>NL"),
    ]
    feats = score(row, alerts=cases)
    expected = {"party": 2, "container": 1, "bl": 2, "vessel": 1, "hs_code": 1, "route": 1}
    assert {k.lower(): feats[f"alert_count_{k.lower()}"].item() for k in ALERT_KINDS} == expected
    assert feats["alert_count"].item() == sum(expected.values())
    assert feats["alert_max_severity"].item() == 5


@pytest.mark.parametrize(
    ("prefix", "matches"),
    [("08", 1), ("080", 1), ("0803", 1), ("08039", 1), ("080390", 1), ("0804", 0), ("29", 0), ("0803901", 0)],
)
def test_hs_code_alert_matches_any_prefix_length(prefix: str, matches: int) -> None:
    feats = score(manifest(hs_code="080390"), alerts=[alert("H1", "HS_CODE", prefix)])
    assert feats["alert_count_hs_code"].item() == matches


@pytest.mark.parametrize(
    ("route", "row", "matches"),
    [
        ("EC>NL", {"place_of_receipt": "ECGYE", "port_of_loading": "ECGYE"}, 1),
        ("EC>NL", {}, 0),  # Colombia, not Ecuador
        ("EC>NL", {"transshipment_ports": ["ECGYE"]}, 1),  # transshipped in Ecuador
        ("EC>NL", {"place_of_receipt": "ECGYE"}, 1),  # received in Ecuador, loaded in Colombia
        ("ECGYE>*", {"port_of_loading": "ECGYE", "place_of_receipt": "ECGYE"}, 1),
        ("CO>BE", {}, 0),
        ("CO>BEANR", {"place_of_delivery": "BEANR"}, 1),  # delivered on to Antwerp
        ("*>NLRTM", {}, 1),
        ("NL>CO", {}, 0),  # direction matters
    ],
)
def test_route_alert_matches_origin_side_and_destination_side(route: str, row: dict, matches: int) -> None:
    feats = score(manifest(**row), alerts=[alert("R1", "ROUTE", route)])
    assert feats["alert_count_route"].item() == matches


def test_an_alert_matching_several_fields_counts_once() -> None:
    row = manifest(shipper_id="P1", consignee_id="P1", notify_id="P1")
    assert score(row, alerts=[alert("A1", "PARTY", "P1")])["alert_count"].item() == 1


# ----------------------------------------------------------------------------- categorical codes
def test_categorical_codes_are_vocabulary_positions_and_unknown_is_zero() -> None:
    rows = [
        manifest(manifest_id="M1"),
        manifest(manifest_id="M2", carrier="MSCU", transshipment_ports=["PAMIT"], container_type="45R1", reefer=True, currency="EUR"),
        manifest(manifest_id="M3", carrier="ONEY", transshipment_ports=["SGSIN"], container_type="42G1", hs_code="850440", port_of_loading="CNSHA"),
    ]
    feats = score(*rows)
    assert feats["carrier_code"].to_list() == [1, 2, UNKNOWN_CODE]
    assert feats["last_hub_code"].to_list() == [1, 2, UNKNOWN_CODE]  # vocabulary ["DIRECT", "PAMIT"]
    assert feats["container_type_code"].to_list() == [1, 2, UNKNOWN_CODE]
    assert feats["currency_code"].to_list() == [2, 1, 2]
    assert feats["hs_chapter_code"].to_list() == [1, 1, UNKNOWN_CODE]
    assert feats["hs_heading_code"].to_list() == [1, 1, UNKNOWN_CODE]
    assert feats["port_of_loading_code"].to_list() == [1, 1, UNKNOWN_CODE]
    assert feats["origin_country_code"].to_list() == [1, 1, UNKNOWN_CODE]
    assert feats["freight_payment_code"].to_list() == [2, 2, 2]


def test_categorical_codes_are_int32_never_a_polars_categorical() -> None:
    feats = score(manifest())
    assert categorical_columns() == list(CATEGORICAL_SOURCES)
    for column in categorical_columns():
        assert feats.schema[column] == pl.Int32, column
    for column in computed_columns():
        if column not in categorical_columns():
            assert feats.schema[column] == pl.Float64, column
    assert not any(isinstance(dtype, (pl.Categorical, pl.Enum)) for dtype in feats.schema.values())
    assert feats.columns == [*KEY_COLUMNS, *computed_columns()]


def test_empty_vocabulary_maps_everything_to_unknown() -> None:
    stats = hand_stats(vocabularies={})
    feats = score(manifest(), stats=stats)
    assert feats.select(categorical_columns()).row(0) == (UNKNOWN_CODE,) * len(categorical_columns())


def test_codes_are_the_same_on_both_paths_for_a_mixed_batch() -> None:
    rows = [manifest(manifest_id=i, carrier=c) for i, c in zip(ids(3), ["MAEU", "MSCU", "HLCU"])]
    hist = history(rows)
    batch = build_features(candidates(*rows), hist, hand_stats())
    assert batch["carrier_code"].to_list() == [1, 2, 0]
