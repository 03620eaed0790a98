"""Specification of row validation (features.data.validation): every rule, its exact reason, canonical values."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timezone

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.data.contracts import CONTRACTS, MANIFESTS
from features.data.reference import known_locodes
from features.data.schemas import ContractViolation, validate_accepted
from features.data.validation import (
    FUTURE_TOLERANCE,
    SCHEDULE_FUTURE_TOLERANCE,
    rule_catalogue,
    validate,
)
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from ingest_samples import NOW, SAMPLES, manifest_rows, raw_frame, row

UTC = timezone.utc


def run(table: str, rows: list[dict], **kw):  # noqa: ANN003, ANN201
    return validate(table, raw_frame(rows), now=kw.pop("now", NOW), **kw)


def reasons_of(table: str, **overrides: str | None) -> list[str]:
    """Reasons of one row of ``table`` with ``overrides`` ([] when accepted)."""
    result = run(table, [row(table, **overrides)])
    assert result.accepted.height + result.rejected.height == 1
    return [] if result.rejected.height == 0 else result.rejected["reasons"][0].to_list()


# --------------------------------------------------------------------------- valid rows


@pytest.mark.parametrize("table", list(CONTRACTS))
def test_sample_row_of_every_table_is_accepted_on_contract(table: str) -> None:
    result = run(table, [row(table)])
    assert result.rejected.height == 0
    assert result.accepted.height == 1
    assert result.accepted.schema == CONTRACTS[table].schema
    validate_accepted(table, result.accepted)


def test_accepted_values_are_canonical() -> None:
    result = run(
        "manifests",
        [
            row(
                "manifests",
                container_number=" csqu3054383 ",
                container_type="45r1",
                reefer="YES",
                vessel_imo="IMO 9074729",
                transshipment_ports=" pamit ; cnsha ",
                shipper_name="  Frutas   del\tPacifico ",
                shipper_id=" s1 ",
                manifest_id=" m-lower ",
                filed_at="2024-01-04 09:30+01:00",
                etd="2024-01-05T18:00:00.5-0500",
                eta="2024-01-20T06:00:00z",
                amended_at="2024-01-06T00:00:00+00",
                amended_fields="consignee;goods_description",
                gross_mass_kg="2.1e4",
            )
        ],
    )
    assert result.rejected.height == 0, result.rejected["reasons"].to_list()
    got = result.accepted.row(0, named=True)
    assert got["container_number"] == "CSQU3054383"
    assert got["container_type"] == "45R1"
    assert got["reefer"] is True
    assert got["vessel_imo"] == "9074729"
    assert got["transshipment_ports"] == ["PAMIT", "CNSHA"]
    assert got["shipper_name"] == "Frutas del Pacifico"
    assert got["shipper_id"] == "S1"
    assert got["manifest_id"] == "m-lower"
    assert got["filed_at"] == datetime(2024, 1, 4, 8, 30, tzinfo=UTC)
    assert got["etd"] == datetime(2024, 1, 5, 23, 0, 0, 500000, tzinfo=UTC)
    assert got["eta"] == datetime(2024, 1, 20, 6, 0, tzinfo=UTC)
    assert got["amended_at"] == datetime(2024, 1, 6, tzinfo=UTC)
    assert got["amended_fields"] == ["consignee", "goods_description"]
    assert got["gross_mass_kg"] == 21000.0


def test_empty_list_field_is_an_empty_list_and_missing_optional_columns_are_allowed() -> None:
    r = row("manifests", transshipment_ports="  ")
    del r["verified_gross_mass_kg"], r["amended_fields"], r["notify_id"], r["notify_name"], r["notify_country"]
    result = run("manifests", [r])
    assert result.rejected.height == 0
    got = result.accepted.row(0, named=True)
    assert got["transshipment_ports"] == []
    assert got["amended_fields"] == []
    assert got["verified_gross_mass_kg"] is None
    assert result.accepted.schema == MANIFESTS.schema


@pytest.mark.parametrize("code", ["22G1", "22R1", "42G1", "45G1", "45R1", "22U1", "42U1", "22T1", "L5G1", "22P1", "42R1", "L5R1"])
def test_common_container_types_are_accepted(code: str) -> None:
    assert reasons_of("manifests", container_type=code, reefer="true" if code[2] == "R" else "false") == []


@pytest.mark.parametrize("value", ["1", "0", "TRUE", "False", "yes", "NO"])
def test_boolean_spellings(value: str) -> None:
    assert reasons_of("ports", is_transshipment_hub=value) == []


# --------------------------------------------------------------------------- rules and reasons

CASES: list[tuple[str, dict[str, str | None], str]] = [
    # required values and parsing
    ("manifests", {"manifest_id": None}, "manifest_id: required value missing"),
    ("manifests", {"consignee_id": "   "}, "consignee_id: required value missing"),
    ("manifests", {"packages": "1.5"}, "packages: not an integer"),
    ("manifests", {"packages": "0"}, "packages: less than 1"),
    ("manifests", {"gross_mass_kg": "21,000"}, "gross_mass_kg: not a number"),
    ("manifests", {"gross_mass_kg": "NaN"}, "gross_mass_kg: not finite"),
    ("manifests", {"gross_mass_kg": "inf"}, "gross_mass_kg: not finite"),
    ("manifests", {"gross_mass_kg": "0"}, "gross_mass_kg: not positive"),
    ("manifests", {"gross_mass_kg": "-5"}, "gross_mass_kg: not positive"),
    ("manifests", {"gross_mass_kg": "30481"}, "gross_mass_kg: above max gross 30480 kg for 20' container"),
    ("manifests", {"container_type": "45G1", "gross_mass_kg": "32501"}, "gross_mass_kg: above max gross 32500 kg for 40' container"),
    ("manifests", {"container_type": "L5G1", "gross_mass_kg": "40000"}, "gross_mass_kg: above max gross 32500 kg for 45' container"),
    ("manifests", {"verified_gross_mass_kg": "30500"}, "verified_gross_mass_kg: above max gross 30480 kg for 20' container"),
    ("manifests", {"verified_gross_mass_kg": "-1"}, "verified_gross_mass_kg: not positive"),
    ("manifests", {"declared_value": "-0.01"}, "declared_value: negative"),
    ("manifests", {"declared_value": "-inf"}, "declared_value: not finite"),
    ("manifests", {"reefer": "maybe"}, "reefer: not a boolean (true/false/1/0/yes/no)"),
    # codes
    ("manifests", {"container_number": "CSQU3054384"}, "container_number: ISO 6346 check digit mismatch"),
    ("manifests", {"container_number": "CSQU305438"}, "container_number: not an ISO 6346 container number"),
    ("manifests", {"container_number": "AB_U3054383"}, "container_number: not an ISO 6346 container number"),
    ("manifests", {"container_type": "XXXX"}, "container_type: not an ISO 6346 size-type code"),
    ("manifests", {"container_type": "22G"}, "container_type: not an ISO 6346 size-type code"),
    ("manifests", {"container_type": "92G1"}, "container_type: not an ISO 6346 size-type code"),
    ("manifests", {"reefer": "true"}, "reefer: set but container type is not a reefer (R) type"),
    ("manifests", {"vessel_imo": "9074728"}, "vessel_imo: IMO check digit mismatch"),
    ("manifests", {"vessel_imo": "907472"}, "vessel_imo: not a 7-digit IMO number"),
    ("manifests", {"port_of_loading": "XXXXX"}, "port_of_loading: unknown UN/LOCODE (not in the port reference)"),
    ("manifests", {"port_of_discharge": "NLRT1"}, "port_of_discharge: not a UN/LOCODE"),
    ("manifests", {"place_of_receipt": "QQQQQ"}, "place_of_receipt: unknown UN/LOCODE (not in the port reference)"),
    ("manifests", {"place_of_delivery": "nl"}, "place_of_delivery: not a UN/LOCODE"),
    ("manifests", {"transshipment_ports": "PAMIT;XXXXX"}, "transshipment_ports: unknown UN/LOCODE (not in the port reference)"),
    ("manifests", {"transshipment_ports": "PAMIT;SG"}, "transshipment_ports: not a UN/LOCODE"),
    ("manifests", {"transshipment_ports": "PAMIT;;SGSIN"}, "transshipment_ports: empty list element"),
    ("manifests", {"transshipment_ports": "PAMIT;PAMIT"}, "route: port repeated consecutively"),
    ("manifests", {"transshipment_ports": "COBUN"}, "route: port repeated consecutively"),
    ("manifests", {"transshipment_ports": "NLRTM"}, "route: port repeated consecutively"),
    ("manifests", {"hs_code": "0803"}, "hs_code: not 6, 8 or 10 digits"),
    ("manifests", {"hs_code": "0803.90"}, "hs_code: not 6, 8 or 10 digits"),
    ("manifests", {"hs_code": "770000"}, "hs_code: invalid HS chapter (01-97, not 77)"),
    ("manifests", {"hs_code": "980000"}, "hs_code: invalid HS chapter (01-97, not 77)"),
    ("manifests", {"currency": "US"}, "currency: not a 3-letter currency code"),
    ("manifests", {"freight_payment": "CASH"}, "freight_payment: not one of PP, CC, TP"),
    ("manifests", {"shipper_country": "COL"}, "shipper_country: not a 2-letter country code"),
    ("manifests", {"notify_country": "N1"}, "notify_country: not a 2-letter country code"),
    # timestamps
    ("manifests", {"eta": "2024-01-20T06:00:00"}, "eta: timezone missing"),
    ("manifests", {"eta": "2024-01-20"}, "eta: timezone missing"),
    ("manifests", {"booked_at": "2024-01-02 10:00"}, "booked_at: timezone missing"),
    ("manifests", {"eta": "20/01/2024 06:00"}, "eta: not an ISO 8601 timestamp"),
    ("manifests", {"eta": "2024-02-30T06:00:00Z"}, "eta: not an ISO 8601 timestamp"),
    ("manifests", {"eta": "2024-01-20T06:00:00+25:00"}, "eta: not an ISO 8601 timestamp"),
    ("manifests", {"booked_at": "1899-12-31T00:00:00Z"}, "booked_at: before 1900-01-01"),
    ("manifests", {"eta": "2024-01-05T00:00:00Z"}, "eta: earlier than etd"),
    ("manifests", {"booked_at": "2024-01-05T00:00:00Z"}, "filed_at: earlier than booked_at"),
    ("manifests", {"filed_at": "2024-01-21T00:00:00Z"}, "eta: earlier than filed_at"),
    ("manifests", {"amended_at": "2024-01-03T00:00:00Z"}, "amended_at: earlier than filed_at"),
    ("manifests", {"amended_fields": "consignee"}, "amended_fields: set but amended_at missing"),
    ("manifests", {"booking_amended_at": "2024-01-01T00:00:00Z"}, "booking_amended_at: earlier than booked_at"),
    ("manifests", {"booking_amended_fields": "vessel"}, "booking_amended_fields: set but booking_amended_at missing"),
    ("manifests", {"amended_at": "2024-01-06T00:00:00Z", "amended_fields": "consignee;"}, "amended_fields: empty list element"),
    ("manifests", {"eta": "2024-05-31T00:00:01Z", "etd": "2024-05-01T00:00:00Z"}, "eta: more than 120 days after now"),
    ("manifests", {"filed_at": "2024-02-02T00:00:01Z", "eta": "2024-02-20T00:00:00Z"}, "filed_at: more than 1 day after now"),
    ("events", {"event_time": "2024-02-02T01:00:00+00:00"}, "event_time: more than 1 day after now"),
    ("outcomes", {"inspected_at": "2024-03-01T00:00:00Z"}, "inspected_at: more than 1 day after now"),
    ("alerts", {"valid_from": "2024-02-03T00:00:00Z"}, "valid_from: more than 1 day after now"),
    # events
    ("events", {"event_type": "ARRIVAL"}, "event_type: not one of GATE_IN, LOAD, TS_DISCHARGE, TS_LOAD, DISCHARGE, GATE_OUT, EMPTY_RETURN"),
    ("events", {"locode": "ZZZZZ"}, "locode: unknown UN/LOCODE (not in the port reference)"),
    ("events", {"vessel_imo": "1234568"}, "vessel_imo: IMO check digit mismatch"),
    ("events", {"container_number": "TEXU3070070"}, "container_number: ISO 6346 check digit mismatch"),
    ("events", {"event_time": "2024-01-20T08:00:00"}, "event_time: timezone missing"),
    # outcomes
    ("outcomes", {"seizure_category": None}, "seizure_category: required when result is SEIZURE"),
    ("outcomes", {"result": "NO_FINDING"}, "seizure_category: set but result is not SEIZURE"),
    ("outcomes", {"seizure_category": "GOLD"}, "seizure_category: not one of COCAINE, HEROIN, METHAMPHETAMINE, PRECURSOR, NPS, CANNABIS, COUNTERFEIT, WILDLIFE, OTHER"),
    ("outcomes", {"quantity_kg": "-1"}, "quantity_kg: negative"),
    ("outcomes", {"quantity_kg": "nan"}, "quantity_kg: not finite"),
    ("outcomes", {"exam_type": "XRAY"}, "exam_type: not one of NII, PHYSICAL"),
    ("outcomes", {"result": "HIT"}, "result: not one of NO_FINDING, DISCREPANCY, SEIZURE"),
    ("outcomes", {"seal_status": "OK"}, "seal_status: not one of INTACT, BROKEN, MISMATCH, MISSING, NOT_CHECKED"),
    ("outcomes", {"selection_source": "TIP"}, "selection_source: not one of WATCHLIST, RULE, MODEL, INTEGRITY, RANDOM, OFFICER"),
    ("outcomes", {"direction": "INBOUND"}, "direction: not one of IMPORT, EXPORT, TRANSSHIPMENT"),
    ("outcomes", {"port": "XXXXX"}, "port: unknown UN/LOCODE (not in the port reference)"),
    # alerts
    ("alerts", {"severity": "0"}, "severity: not between 1 and 5"),
    ("alerts", {"severity": "6"}, "severity: not between 1 and 5"),
    ("alerts", {"severity": "high"}, "severity: not an integer"),
    ("alerts", {"valid_to": "2024-01-01T00:00:00Z"}, "valid_to: not after valid_from"),
    ("alerts", {"kind": "SHIP"}, "kind: not one of PARTY, CONTAINER, BL, VESSEL, HS_CODE, ROUTE"),
    ("alerts", {"kind": "CONTAINER", "value": "CSQU3054384"}, "value: not a valid ISO 6346 container number"),
    ("alerts", {"kind": "VESSEL", "value": "9074728"}, "value: not a valid IMO number"),
    ("alerts", {"kind": "HS_CODE", "value": "8"}, "value: not an HS prefix (2-10 digits)"),
    ("alerts", {"kind": "HS_CODE", "value": "08.03"}, "value: not an HS prefix (2-10 digits)"),
    ("alerts", {"value": "COBUN-NLRTM"}, "value: not a route FROM>TO (each side a UN/LOCODE, a 2-letter country code or *)"),
    ("alerts", {"value": "COBUN>NLRTM>DEHAM"}, "value: not a route FROM>TO (each side a UN/LOCODE, a 2-letter country code or *)"),
    ("alerts", {"value": "COBUN>XXXXX"}, "value: unknown UN/LOCODE in route"),
    # seaports: a port of loading, discharge or transshipment must be a seaport (Bogota and Prague are inland)
    ("manifests", {"port_of_loading": "COBOG"}, "port_of_loading: not a seaport (UN/LOCODE function 1) in the port reference"),
    ("manifests", {"port_of_discharge": "CZPRG"}, "port_of_discharge: not a seaport (UN/LOCODE function 1) in the port reference"),
    ("manifests", {"transshipment_ports": "PAMIT;CZPRG"}, "transshipment_ports: not a seaport (UN/LOCODE function 1) in the port reference"),
    # ports
    ("ports", {"latitude": "91"}, "latitude: outside -90..90"),
    ("ports", {"longitude": "-180.5"}, "longitude: outside -180..180"),
    ("ports", {"latitude": "inf"}, "latitude: not finite"),
    ("ports", {"country": "YY"}, "locode: country prefix differs from country"),
    ("ports", {"locode": "XX1BC"}, "locode: not a UN/LOCODE"),
    ("ports", {"is_transshipment_hub": "y"}, "is_transshipment_hub: not a boolean (true/false/1/0/yes/no)"),
    # pre-export notifications of precursor chemicals
    ("pre_export_notifications", {"exporting_country": "IND"}, "exporting_country: not a 2-letter country code"),
    ("pre_export_notifications", {"importing_country": "MEX"}, "importing_country: not a 2-letter country code"),
    ("pre_export_notifications", {"hs_code": "29394"}, "hs_code: not 6, 8 or 10 digits"),
    ("pre_export_notifications", {"quantity_kg": "0"}, "quantity_kg: not above 0"),
    ("pre_export_notifications", {"shipment_to": "2023-12-31T00:00:00Z"}, "shipment_to: not after shipment_from"),
]


@pytest.fixture(scope="module")
def case_reasons() -> dict[int, list[str]]:
    """Reasons of every CASES row, validated in one batch per table (each row breaks rules, so
    rows sharing a key cannot interact: duplicate detection only looks at valid rows)."""
    out: dict[int, list[str]] = {}
    for table in CONTRACTS:
        indices = [i for i, c in enumerate(CASES) if c[0] == table]
        result = run(table, [row(table, **CASES[i][1]) for i in indices])
        by_row = dict(zip(result.rejected["__row"].to_list(), result.rejected["reasons"].to_list()))
        out.update({i: by_row.get(pos, []) for pos, i in enumerate(indices)})
    return out


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[2] + " " + str(c[1]) for c in CASES])
def test_rule_rejects_with_exact_reason(case: int, case_reasons: dict[int, list[str]]) -> None:
    assert case_reasons[case] == [CASES[case][2]]


def test_every_catalogued_reason_is_exercised_or_templated() -> None:
    exercised = {c[2] for c in CASES} | {"etd: more than 120 days after now"}  # tested on its own below
    catalogue = {r for t in CONTRACTS for r in rule_catalogue(t)}
    untested = {
        r for r in catalogue - exercised
        if "{" not in r
        and not r.endswith(("duplicate row", "conflicting duplicate", "required value missing", "not a number", "not an integer", "not finite", "timezone missing", "not an ISO 8601 timestamp", "before 1900-01-01", "not a UN/LOCODE", "unknown UN/LOCODE (not in the port reference)", "not a 2-letter country code", "not an ISO 6346 container number", "ISO 6346 check digit mismatch", "not a 7-digit IMO number", "empty list element", "more than 1 day after now"))
    }
    assert untested == set()


def test_ports_are_not_checked_against_the_reference() -> None:
    assert "XXABC" not in known_locodes()
    assert reasons_of("ports") == []


def test_known_locodes_can_be_given() -> None:
    result = run("events", [row("events", locode="XXABC")], known_locodes={"XXABC"})
    assert result.rejected.height == 0


def test_within_schedule_tolerances_are_accepted() -> None:
    eta = (NOW + SCHEDULE_FUTURE_TOLERANCE).isoformat()
    filed = (NOW + FUTURE_TOLERANCE).isoformat()
    assert reasons_of("manifests", eta=eta, etd=eta, filed_at=filed, booked_at=filed) == []


def test_reefer_type_without_reefer_flag_is_accepted_as_non_operating_reefer() -> None:
    assert reasons_of("manifests", container_type="45R1", reefer="false") == []
    assert reasons_of("manifests", container_type="45R1", reefer="true") == []


def test_schedule_far_in_the_future_lists_both_timestamps() -> None:
    assert reasons_of("manifests", etd="2024-06-01T00:00:00Z", eta="2024-06-02T00:00:00Z") == [
        "etd: more than 120 days after now",
        "eta: more than 120 days after now",
    ]


def test_verified_gross_mass_may_differ_from_declared() -> None:
    assert reasons_of("manifests", gross_mass_kg="12000", verified_gross_mass_kg="24000") == []


def test_alert_values_are_canonicalised_per_kind() -> None:
    rows = [
        row("alerts", alert_id="A1", kind="vessel", value="IMO 9074729"),
        row("alerts", alert_id="A2", kind="ROUTE", value=" co > nlrtm "),
        row("alerts", alert_id="A3", kind="ROUTE", value="*>NL"),
        row("alerts", alert_id="A4", kind="HS_CODE", value="0803"),
        row("alerts", alert_id="A5", kind="PARTY", value="eori nl123"),
        row("alerts", alert_id="A6", kind="CONTAINER", value="texu3070079", valid_to=None),
        row("alerts", alert_id="A7", kind="ROUTE", value="COBUN>NLRTM", valid_to="2099-01-01T00:00:00Z"),
    ]
    result = run("alerts", rows)
    assert result.rejected.height == 0, result.rejected["reasons"].to_list()
    assert result.accepted["kind"].to_list()[0] == "VESSEL"
    assert result.accepted["value"].to_list() == ["9074729", "CO>NLRTM", "*>NL", "0803", "EORI NL123", "TEXU3070079", "COBUN>NLRTM"]


def test_a_row_lists_every_broken_rule() -> None:
    reasons = reasons_of(
        "manifests",
        container_number="CSQU3054384",
        hs_code="770000",
        eta="2024-01-20T06:00:00",
        packages="0",
        currency="dollars",
    )
    assert sorted(reasons) == sorted(
        [
            "container_number: ISO 6346 check digit mismatch",
            "hs_code: invalid HS chapter (01-97, not 77)",
            "eta: timezone missing",
            "packages: less than 1",
            "currency: not a 3-letter currency code",
        ]
    )


# --------------------------------------------------------------------------- duplicates


def test_identical_rows_keep_the_first_and_reject_later_copies() -> None:
    rows = [row("manifests"), row("manifests", manifest_id="M2"), row("manifests"), row("manifests")]
    result = run("manifests", rows)
    assert result.accepted["manifest_id"].to_list() == ["M1", "M2"]
    assert result.accepted_index.to_list() == [0, 1]
    assert result.rejected["__row"].to_list() == [2, 3]
    assert result.rejected["reasons"].to_list() == [["manifest_id: duplicate row"]] * 2


def test_rows_identical_after_canonicalisation_are_duplicates() -> None:
    rows = [
        row("manifests"),
        row("manifests", container_number="csqu3054383 ", eta="2024-01-20T08:00:00+02:00", reefer="0"),
    ]
    result = run("manifests", rows)
    assert result.accepted.height == 1
    assert result.rejected["reasons"].to_list() == [["manifest_id: duplicate row"]]


def test_same_key_with_different_content_rejects_every_row_of_the_key() -> None:
    rows = [row("manifests"), row("manifests", manifest_id="M2"), row("manifests", packages="99"), row("manifests")]
    result = run("manifests", rows)
    assert result.accepted["manifest_id"].to_list() == ["M2"]
    assert result.rejected["__row"].to_list() == [0, 2, 3]
    assert result.rejected["reasons"].to_list() == [["manifest_id: conflicting duplicate"]] * 3


def test_composite_key_reason_names_every_key_column() -> None:
    rows = [row("events"), row("events", voyage="002W")]
    result = run("events", rows)
    assert result.rejected["reasons"].to_list() == [
        ["container_number+event_time+locode+event_type: conflicting duplicate"]
    ] * 2


def test_duplicate_detection_ignores_rows_that_break_other_rules() -> None:
    rows = [row("manifests"), row("manifests", hs_code="770000")]
    result = run("manifests", rows)
    assert result.accepted.height == 1
    assert result.rejected["reasons"].to_list() == [["hs_code: invalid HS chapter (01-97, not 77)"]]


# --------------------------------------------------------------------------- rejected rows and errors


def test_rejected_rows_are_the_raw_rows_unchanged_with_extra_columns() -> None:
    rows = [
        {**row("manifests", manifest_id="M0"), "remarks": "ok"},
        {**row("manifests", container_number=" csqu3054384", manifest_id=" M1 "), "remarks": "  keep  me "},
    ]
    raw = raw_frame(rows)
    result = validate("manifests", raw, now=NOW)
    assert result.rejected.columns == [*raw.columns, "reasons"]
    assert result.rejected.drop("reasons").rows() == raw.filter(pl.col("__row") == 1).rows()
    assert "remarks" not in result.accepted.columns


def test_validate_refuses_bad_arguments() -> None:
    raw = raw_frame([row("manifests")])
    with pytest.raises(ValueError, match="missing required column.*hs_code"):
        validate("manifests", raw.drop("hs_code"), now=NOW)
    with pytest.raises(ValueError, match="not String"):
        validate("manifests", raw.with_columns(pl.lit(1).alias("packages")), now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        validate("manifests", raw, now=datetime(2024, 2, 1))
    with pytest.raises(ValueError, match="unknown table 'cargo'"):
        validate("cargo", raw, now=NOW)


def test_validate_adds_row_index_when_absent() -> None:
    raw = raw_frame([row("manifests"), row("manifests", hs_code="1")]).drop("__row")
    result = validate("manifests", raw, now=NOW)
    assert result.rejected["__row"].to_list() == [1]


def test_schema_gate_rejects_off_contract_frames() -> None:
    accepted = run("manifests", [row("manifests")]).accepted
    with pytest.raises(ContractViolation, match="(?s)off-contract.*currency"):
        validate_accepted("manifests", accepted.with_columns(pl.lit("usd").alias("currency")))
    with pytest.raises(ContractViolation, match="manifests"):
        validate_accepted("manifests", accepted.with_columns(pl.col("eta").dt.replace_time_zone(None)))
    with pytest.raises(ContractViolation):
        validate_accepted("manifests", accepted.with_columns(pl.lit("x").alias("extra")))
    with pytest.raises(ContractViolation):
        validate_accepted("manifests", pl.concat([accepted, accepted]))


def test_validation_is_fast_enough_for_large_inputs() -> None:
    rows = manifest_rows(2_000)
    raw = raw_frame(rows)
    big = pl.concat([raw] * 25).with_row_index("i").with_columns(
        pl.format("M{}", pl.col("i")).alias("manifest_id"), pl.col("i").cast(pl.Int64).alias("__row")
    ).drop("i")
    result = validate("manifests", big, now=NOW)
    assert result.accepted.height == 50_000


# --------------------------------------------------------------------------- properties

REASON_RE = re.compile(r"^[a-z_+]+: \S")


def _column_values(table: str, name: str) -> st.SearchStrategy[str | None]:
    sample = SAMPLES[table].get(name)
    interesting = [
        "", " ", "CSQU3054383", "CSQU3054384", "NLRTM", "PAMIT;NLRTM", "2024-01-10T00:00:00Z",
        "2024-01-10T00:00:00", "1", "0", "-1", "NaN", "true", "22R1", "SEIZURE", "COCAINE", "9074729", "a;;b",
    ]
    return st.one_of(
        st.none(),
        st.just(sample),
        st.sampled_from(interesting),
        st.text(max_size=12),
    )


def _rows(table: str) -> st.SearchStrategy[list[dict[str, str | None]]]:
    c = CONTRACTS[table]
    one = st.fixed_dictionaries({n: _column_values(table, n) for n in c.column_names})
    return st.lists(one, min_size=0, max_size=8)


@pytest.mark.parametrize("table", list(CONTRACTS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_arbitrary_rows_never_crash_and_every_row_is_accounted_for(table: str, data: st.DataObject) -> None:
    rows = data.draw(_rows(table))
    raw = raw_frame(rows) if rows else raw_frame([SAMPLES[table]]).clear()
    result = validate(table, raw, now=NOW)
    assert result.accepted.height + result.rejected.height == raw.height
    assert result.accepted.schema == CONTRACTS[table].schema
    validate_accepted(table, result.accepted)
    # rejected rows are the raw rows, unchanged
    rejected_raw = result.rejected.drop("reasons")
    assert rejected_raw.rows() == raw.filter(pl.col("__row").is_in(rejected_raw["__row"].implode())).rows()
    assert sorted(result.accepted_index.to_list() + rejected_raw["__row"].to_list()) == list(range(raw.height))
    for reasons in result.rejected["reasons"].to_list():
        assert reasons and all(REASON_RE.match(r) for r in reasons)


def test_inland_places_of_receipt_and_delivery_from_the_un_locode_list_are_accepted() -> None:
    # Bogota (COBOG) to Duisburg (DEDUI) via Buenaventura and Rotterdam: the inland places are real UN/LOCODEs
    assert reasons_of("manifests", place_of_receipt="COBOG", port_of_loading="COBUN", port_of_discharge="NLRTM", place_of_delivery="DEDUI") == []
    assert reasons_of("manifests", place_of_receipt="CHBSL", place_of_delivery="CZPRG") == []


def test_a_place_outside_the_un_locode_list_is_still_unknown() -> None:
    assert reasons_of("manifests", place_of_delivery="DEQQQ") == ["place_of_delivery: unknown UN/LOCODE (not in the port reference)"]
