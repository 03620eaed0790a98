"""The exchange format, its signatures, party-name matching, drafts and configuration, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from features.data.contracts import ALERTS
from features.intel import match_alerts, party_name_value
from targeting.exchange.drafts import draft_pre_arrival_notice, draft_seizure_messages, feedback_for, watchlist_entries_for
from targeting.exchange.messages import json_schema_text, parse_message
from targeting.exchange.network import ExchangeConfigError, load_network
from targeting.exchange.signing import generate_private_key, public_key_from_text, public_key_text, sign, verify, write_private_key

DOCS = Path(__file__).resolve().parents[2] / "docs" / "exchange"
EXAMPLE_PUBLIC_KEY = "/JnWcq3DyujREI1X8tkXjAHb8cekyZH1+MIaVIfEgJk="
"""The key that signed docs/exchange/examples/signed-notice.json (printed in docs/exchange.md)."""
AT = datetime(2025, 8, 28, tzinfo=UTC)


def example(name: str) -> dict:
    return json.loads((DOCS / "examples" / name).read_text())


def test_committed_schema_equals_the_schema_generated_from_the_models():
    assert (DOCS / "schema-v1.json").read_text(encoding="utf-8") == json_schema_text()


@pytest.mark.parametrize("name", ["alert-party.json", "alert-red-bl.json", "pre-arrival-notice.json", "seizure-report.json", "feedback.json"])
def test_every_documented_example_is_a_valid_message(name):
    message = parse_message(example(name))
    assert message.type in name.upper().replace("-", "_") or message.type == "ALERT"


def test_documented_signed_example_verifies_and_any_change_breaks_it():
    signed = example("signed-notice.json")
    key = public_key_from_text(EXAMPLE_PUBLIC_KEY)
    assert verify(signed["message"], signed["signature"], key)
    tampered = {**signed["message"], "body": {**signed["message"]["body"], "container_number": "CSQU3054383"}}
    assert not verify(tampered, signed["signature"], key)
    assert not verify(signed["message"], signed["signature"], generate_private_key().public_key())


def test_signature_does_not_depend_on_key_order_or_whitespace():
    key = generate_private_key()
    message = example("alert-party.json")
    reordered = json.loads(json.dumps(dict(reversed(list(message.items()))), indent=4))
    assert verify(reordered, sign(message, key), key.public_key())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tlp": "RED", "recipients": ["NETWORK"]}, "RED message must name exactly one recipient"),
        ({"recipients": ["PCU-NLRTM", "NETWORK"]}, "NETWORK must be the only recipient"),
        ({"valid_to": "2025-08-01T00:00:00Z"}, "valid_to must be after valid_from"),
        ({"created_at": "2025-08-20T14:05:00"}, "created_at"),
        ({"surprise": 1}, "surprise"),
        ({"body": {"kind": "CONTAINER", "severity": 3, "reason": "x"}}, "needs a value"),
    ],
)
def test_a_message_breaking_the_format_is_refused_naming_the_rule(change, field):
    with pytest.raises(ValidationError, match=field):
        parse_message({**example("alert-party.json"), **change})


def _candidates(names: list[str]) -> pl.LazyFrame:
    n = len(names)
    text = lambda prefix: [f"{prefix}{i}" for i in range(n)]  # noqa: E731
    return pl.DataFrame({
        "manifest_id": text("M"), "container_number": ["CSQU3054383"] * n, "shipper_id": text("S"), "shipper_name": ["Frutas SA"] * n,
        "consignee_id": text("C"), "consignee_name": names, "notify_id": text("N"), "notify_name": ["-"] * n, "master_bl": text("B"),
        "house_bl": text("H"), "vessel_imo": ["9074729"] * n, "hs_code": ["080390"] * n, "place_of_receipt": ["ECGYE"] * n,
        "port_of_loading": ["ECGYE"] * n, "transshipment_ports": [["PAMIT"]] * n, "port_of_discharge": ["NLRTM"] * n,
        "place_of_delivery": ["NLRTM"] * n, "decision_at": [AT] * n,
    }).lazy()


def _name_alert(name: str) -> pl.LazyFrame:
    return pl.DataFrame({"alert_id": ["X1"], "kind": ["PARTY"], "value": [party_name_value(name)], "reason": ["Front company"],
                         "issuing_unit": ["PCU-ECGYE"], "severity": [5], "valid_from": [AT - timedelta(days=1)], "valid_to": [None]},
                        schema=ALERTS.schema).lazy()


@pytest.mark.parametrize(
    ("alerted", "declared"),
    [
        ("Acme Trading Limited", "ACME TRADING LTD"),
        ("Café Andino S.A.", "CAFE ANDINO SA"),
        ("Cafe Andino Sociedad Anonima", "Café Andino, S.A."),
        ("Hua-Xin Logistics Co., Ltd.", "HUAXIN LOGISTICS CO LTD"),
        ("Global Fruit Export Ltd", "Export Global Fruit Limited"),
        ("Northern Star Shipping B.V.", "Nothern Star Shipping BV"),
    ],
)
def test_party_name_alert_matches_real_spelling_variants_with_similarity_in_the_reason(alerted, declared):
    out = match_alerts(_candidates([declared, "Unrelated Bananas Inc"]), _name_alert(alerted)).collect()
    assert out["alert_count"].to_list() == [1, 0]
    reason = out["alert_reasons"][0][0]
    assert f"consignee name '{declared}' matches" in reason and "similarity" in reason and "PCU-ECGYE" in reason


def test_party_name_alert_does_not_match_a_different_company():
    out = match_alerts(_candidates(["Acme Tooling Limited", "Pacific Fruit Trading Ltd"]), _name_alert("Acme Trading Limited")).collect()
    assert out["alert_count"].to_list() == [0, 0]


def test_accepted_alert_with_id_and_name_becomes_two_watchlist_entries_naming_the_sender():
    entries = watchlist_entries_for(parse_message(example("alert-party.json")))
    assert [(e.kind, e.value) for e in entries] == [("PARTY", "NL00812345"), ("PARTY", "NAME:ACME-TRADING-LTD")]
    assert all("PCU-ECGYE" in e.reason and e.issuing_unit == "PCU-ECGYE" for e in entries)


def test_accepted_notice_is_a_container_entry_in_force_on_its_arrival_day_only():
    (entry,) = watchlist_entries_for(parse_message(example("pre-arrival-notice.json")))
    assert (entry.kind, entry.value) == ("CONTAINER", "TEXU3070079")
    assert (entry.valid_from, entry.valid_to) == (datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 9, 2, tzinfo=UTC))


MANIFEST = {
    "manifest_id": "M9", "container_number": "CSQU3054383", "master_bl": "MAEU1", "vessel_imo": "9074729", "voyage": "12E", "hs_code": "080390",
    "port_of_loading": "ECGYE", "transshipment_ports": ["PAMIT"], "port_of_discharge": "NLRTM", "eta": datetime(2025, 9, 10, 6, tzinfo=UTC),
    "shipper_id": "EC1", "shipper_name": "Frutas SA", "shipper_country": "EC", "consignee_id": "NL1", "consignee_name": "Acme BV", "consignee_country": "NL",
}
SEIZURE = {"manifest_id": "M9", "container_number": "CSQU3054383", "port": "ECGYE", "inspected_at": AT, "exam_type": "PHYSICAL",
           "result": "SEIZURE", "seizure_category": "COCAINE", "quantity_kg": 98.5, "concealment_method": "In the reefer unit"}


def test_seizure_drafts_a_report_and_container_and_party_alerts_with_stable_ids():
    drafts = draft_seizure_messages(unit="PCU-ECGYE", outcome=SEIZURE, manifest=MANIFEST, now=AT)
    assert [m.type for m in drafts] == ["SEIZURE_REPORT", "ALERT", "ALERT", "ALERT"]
    assert drafts[0].body.route == ["ECGYE", "PAMIT", "NLRTM"] and drafts[0].body.quantity_kg == 98.5
    assert {m.body.kind for m in drafts[1:]} == {"CONTAINER", "PARTY"}
    again = draft_seizure_messages(unit="PCU-ECGYE", outcome=SEIZURE, manifest=MANIFEST, now=AT + timedelta(hours=1))
    assert [m.message_id for m in again] == [m.message_id for m in drafts]


def test_notice_draft_and_feedback_answer_the_right_units():
    notice = draft_pre_arrival_notice(unit="PCU-ECGYE", destination_unit="PCU-NLRTM", manifest=MANIFEST, action="DEFERRED", score=0.91,
                                      reasons=["Seal changed"], now=AT)
    assert notice.recipients == ["PCU-NLRTM"] and notice.body.severity == 5 and notice.valid_to > MANIFEST["eta"]
    answer = feedback_for(notice, unit="PCU-NLRTM", outcome={**SEIZURE, "port": "NLRTM"}, now=AT + timedelta(days=13))
    assert answer.recipients == ["PCU-ECGYE"] and answer.body.in_reply_to == notice.message_id and answer.body.result == "SEIZURE"


def test_exchange_configuration_refuses_bad_files_naming_the_field(tmp_path):
    key = generate_private_key()
    write_private_key(key, tmp_path / "unit.pem")
    good = f'[[units]]\nid = "PCU-ECGYE"\nport = "ECGYE"\nrole = "EXPORT"\nkey_file = "unit.pem"\n\n[[peers]]\nid = "PCU-NLRTM"\nport = "NLRTM"\nrole = "IMPORT"\npublic_key = "{public_key_text(key)}"\n'
    (tmp_path / "ok.toml").write_text(good)
    assert set(load_network(tmp_path / "ok.toml").peers) == {"PCU-NLRTM"}
    cases = {
        "bad-key.toml": (good.replace(public_key_text(key), "bm90IGEga2V5"), "peers.0.public_key"),
        "dup.toml": (good.replace('id = "PCU-NLRTM"', 'id = "PCU-ECGYE"'), "distinct"),
        "extra.toml": (good + 'colour = "red"\n', "colour"),
        "role.toml": (good.replace('"EXPORT"', '"CUSTOMS"'), "units.0.role"),
    }
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ExchangeConfigError, match=expected):
            load_network(tmp_path / name)
    with pytest.raises(ExchangeConfigError, match="No such file"):
        load_network(tmp_path / "missing.toml")
