"""Three real instances on loopback exchange signed intelligence: A (export unit, Guayaquil), B (import units,
Rotterdam and Antwerp) and C (transshipment unit, Manzanillo PA), each with its own store, lake and keys."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import polars as pl
import pytest
from ingest_samples import row

from exchange_helpers import NOW, Instance, build_network, ingest_manifests, wait_for
from features.data.lake import Lake
from features.intel import match_alerts
from features.data.contracts import ALERTS
from targeting.exchange.messages import SCHEMA_VERSION
from targeting.exchange.signing import generate_private_key, load_private_key, sign
from targeting.lists import ListRequest
from targeting.policy import PolicyConfig, candidates_for, select

ARRIVAL = date(2025, 8, 28)
NOTICE_CONTAINER = "TEXU3070079"
VARIANT_CONSIGNEE = "Trading, ACME Ltd."


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    specs = {
        "A": [("PCU-ECGYE", "ECGYE", "EXPORT")],
        "B": [("PCU-NLRTM", "NLRTM", "IMPORT"), ("PCU-BEANR", "BEANR", "IMPORT")],
        "C": [("PCU-PAMIT", "PAMIT", "TRANSSHIPMENT")],
    }
    auto = {("B", "PCU-ECGYE"): ["PRE_ARRIVAL_NOTICE"], ("C", "PCU-ECGYE"): ["ALERT"]}
    instances = build_network(tmp_path_factory.mktemp("exchange"), specs, auto)
    eta = "2025-08-28T06:00:00Z"
    common = dict(place_of_receipt="ECGYE", port_of_loading="ECGYE", transshipment_ports=None, port_of_discharge="NLRTM", place_of_delivery="NLRTM",
                  booked_at="2025-08-01T10:00:00Z", filed_at="2025-08-02T10:00:00Z", etd="2025-08-10T10:00:00Z", eta=eta)
    ingest_manifests(instances["B"], [
        row("manifests", manifest_id="M-NOTICE", container_number=NOTICE_CONTAINER, **common),
        row("manifests", manifest_id="M-ACME", container_number="MSKU6011672", consignee_id="C-77", consignee_name=VARIANT_CONSIGNEE, **common),
        row("manifests", manifest_id="M-PLAIN", container_number="CSQU3054383", **common),
    ])
    try:
        for instance in instances.values():
            instance.start()
        yield instances
    finally:
        for instance in instances.values():
            instance.stop()


def send(instance: Instance, who: str, **fields) -> dict:
    body = {"valid_to": (NOW + timedelta(days=30)).isoformat(), "message_id": f"{fields['sender']}:{uuid.uuid4().hex[:16].upper()}", **fields}
    response = instance.post("/v1/exchange/sent", who, json=body)
    assert response.status_code == 201, response.text
    return response.json()["message"]


def received(instance: Instance, who: str, message_id: str) -> dict | None:
    response = instance.get(f"/v1/exchange/received/{message_id}", who)
    return response.json() if response.status_code == 200 else None


def sent(instance: Instance, who: str, message_id: str) -> dict:
    return instance.get(f"/v1/exchange/sent/{message_id}", who).json()


def watchlist_of(instance: Instance) -> pl.DataFrame:
    items = instance.get("/v1/watchlist?limit=200", "admin").json()["items"]
    frame = pl.DataFrame([{k: item[k] for k in ALERTS.column_names} for item in items], schema={k: pl.String for k in ALERTS.column_names})
    return frame.with_columns(
        pl.col("severity").cast(pl.Int64), *(pl.col(c).str.to_datetime(time_zone="UTC", time_unit="us") for c in ("valid_from", "valid_to"))
    )


def day_candidates(instance: Instance, day: date) -> pl.DataFrame:
    from datetime import UTC, datetime, time

    manifests = Lake(instance.home / "lake").scan("manifests")
    decision = datetime.combine(day, time(0), tzinfo=UTC)
    return candidates_for(manifests, "NLRTM", day).with_columns(pl.lit(decision).alias("decision_at")).collect()


def test_alert_sent_from_one_unit_is_received_verified_accepted_and_matched_by_name_at_the_other(network):
    a, b = network["A"], network["B"]
    party = {"role": "CONSIGNEE", "name": "ACME TRADING LIMITED", "country": "NL"}
    message = send(a, "officer:ECGYE", type="ALERT", sender="PCU-ECGYE", recipients=["PCU-NLRTM"], tlp="AMBER",
                   valid_from="2025-08-01T00:00:00Z", body={"kind": "PARTY", "party": party, "severity": 5, "reason": "Front company behind a cocaine seizure"})
    got = wait_for(lambda: received(b, "officer:NLRTM", message["message_id"]))
    assert got["status"] == "RECEIVED" and got["signed"] and got["message"]["sender"] == "PCU-ECGYE"
    accepted = b.post(f"/v1/exchange/received/{message['message_id']}/accept", "officer:NLRTM")
    assert accepted.status_code == 200 and accepted.json()["status"] == "ACCEPTED"
    entries = watchlist_of(b).filter(pl.col("issuing_unit") == "PCU-ECGYE", pl.col("kind") == "PARTY")
    assert entries["value"].to_list() == ["NAME:ACME-TRADING-LTD"]

    hits = match_alerts(day_candidates(b, ARRIVAL).lazy(), watchlist_of(b).lazy()).collect().filter(pl.col("alert_count") > 0)
    reasons = dict(zip(hits["manifest_id"], hits["alert_reasons"]))
    assert "M-ACME" in reasons and "M-PLAIN" not in reasons
    text = " ".join(reasons["M-ACME"])
    assert f"consignee name '{VARIANT_CONSIGNEE}' matches 'ACME TRADING LTD', similarity 100" in text
    assert "PCU-ECGYE" in text
    assert wait_for(lambda: sent(a, "officer:ECGYE", message["message_id"])["status"] == "SENT")
    verified = b.get("/v1/audit/verify", "auditor").json()  # the accepted entries are sealed like any watchlist entry
    assert verified["ok"] and not verified["bad_records"], verified


def test_pre_arrival_notice_puts_its_container_on_the_destination_list_of_its_day_and_feedback_returns(network):
    a, b = network["A"], network["B"]
    body = {"container_number": NOTICE_CONTAINER, "master_bl": "MAEU123", "vessel_imo": "9074729", "voyage": "001E",
            "eta": "2025-08-28T06:00:00Z", "port_of_loading": "ECGYE", "port_of_discharge": "NLRTM",
            "reasons": ["Gate-in 40 minutes before loading, seal changed"], "severity": 5, "action_at_origin": "SCANNED"}
    notice = send(a, "officer:ECGYE", type="PRE_ARRIVAL_NOTICE", sender="PCU-ECGYE", recipients=["PCU-NLRTM"], tlp="AMBER", body=body)
    got = wait_for(lambda: received(b, "officer:NLRTM", notice["message_id"]))
    assert got["status"] == "ACCEPTED" and got["decided_by"] == "policy:PCU-ECGYE"  # B's policy for A's notices

    watchlist = watchlist_of(b)
    candidates = day_candidates(b, ARRIVAL)
    hits = match_alerts(candidates.lazy(), watchlist.lazy()).collect()
    no_rules = pl.DataFrame(schema={"manifest_id": pl.String, "rule_codes": pl.List(pl.String), "rule_reasons": pl.List(pl.String), "rule_score": pl.Float64})
    chosen = select(candidates, None, alert_hits=hits, rule_hits=no_rules, request=ListRequest(port="NLRTM", list_date=ARRIVAL, capacity=2, exploration_share=0.0),
                    config=PolicyConfig()).selected
    item = chosen.filter(pl.col("container_number") == NOTICE_CONTAINER)
    assert item.height == 1 and item["source"][0] == "WATCHLIST"
    next_day = match_alerts(day_candidates(b, ARRIVAL).with_columns(pl.col("decision_at") + timedelta(days=1)).lazy(), watchlist.lazy()).collect()
    assert next_day.filter(pl.col("container_number") == NOTICE_CONTAINER, pl.col("alert_count_container") > 0).height == 0

    outcome = {"manifest_id": "M-NOTICE", "container_number": NOTICE_CONTAINER, "port": "NLRTM", "inspected_at": "2025-08-28T08:00:00+00:00",
               "exam_type": "PHYSICAL", "result": "SEIZURE", "seizure_category": "COCAINE", "quantity_kg": 310.0,
               "concealment_method": "bags behind the doors", "seal_status": "MISMATCH", "examiner": "EX-1", "selection_source": "WATCHLIST"}
    posted = b.post("/v1/inspection-outcomes", "officer:NLRTM", json=outcome, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert posted.status_code in (200, 201), posted.text
    answered = wait_for(lambda: sent(a, "officer:ECGYE", notice["message_id"])["exam_result"])
    assert answered == "SEIZURE"
    rates = {(r["sender"], r["type"]): r for r in b.get("/v1/exchange/hit-rates", "auditor").json()["items"]}
    assert rates[("PCU-ECGYE", "PRE_ARRIVAL_NOTICE")]["seizures"] >= 1 and rates[("PCU-ECGYE", "PRE_ARRIVAL_NOTICE")]["hit_rate"] > 0
    drafts = wait_for(lambda: b.get("/v1/exchange/sent?status=DRAFT", "officer:NLRTM").json()["items"])
    assert {d["message"]["type"] for d in drafts} >= {"SEIZURE_REPORT", "ALERT"}  # drafted after the seizure, for approval


def _raw(sender: str, **overrides) -> dict:
    message = {"schema_version": SCHEMA_VERSION, "message_id": f"{sender}:{uuid.uuid4().hex[:16].upper()}", "type": "ALERT", "sender": sender,
               "recipients": ["PCU-NLRTM"], "created_at": NOW.isoformat(), "valid_from": NOW.isoformat(),
               "valid_to": (NOW + timedelta(days=10)).isoformat(), "tlp": "AMBER",
               "body": {"kind": "CONTAINER", "value": "CSQU3054383", "severity": 3, "reason": "Tip-off"}}
    return {**message, **overrides}


def test_bad_messages_are_refused_with_a_reason_and_audited(network):
    a, b = network["A"], network["B"]
    key = load_private_key(a.keys["PCU-ECGYE"])

    def post(message: dict, signing_key=key) -> dict:  # noqa: ANN001
        response = b.post("/v1/exchange/inbox", None, json={"message": message, "signature": sign(message, signing_key)})
        return {**response.json().get("detail", response.json()), "http": response.status_code}

    good = _raw("PCU-ECGYE")
    assert post(good)["http"] == 202
    cases = {
        "bad_signature": (post(_raw("PCU-ECGYE"), generate_private_key()), 403),
        "unknown_sender": (post(_raw("PCU-XXGHOST")), 403),
        "replay": (post(good), 409),
        "expired": (post(_raw("PCU-ECGYE", valid_from=(NOW - timedelta(days=5)).isoformat(), valid_to=(NOW - timedelta(hours=1)).isoformat())), 422),
        "schema": (post(_raw("PCU-ECGYE", body={"kind": "CONTAINER", "value": "CSQU3054383", "severity": 9, "reason": "x"})), 422),
    }
    for code, (answer, status) in cases.items():
        assert (answer["http"], answer["code"]) == (status, code), answer
        assert answer["reason"]
    assert "severity" in cases["schema"][0]["reason"]
    events = b.get("/v1/audit/events?action=exchange.refuse&limit=200", "auditor").json()["items"]
    audited = {json.loads(e["detail"])["code"] for e in events}
    assert audited >= set(cases)


def test_a_peer_that_is_down_receives_its_queue_when_it_is_back(network):
    a, b, c = network["A"], network["B"], network["C"]
    c.stop()
    try:
        message = send(a, "officer:ECGYE", type="ALERT", sender="PCU-ECGYE", recipients=["NETWORK"], tlp="GREEN",
                       body={"kind": "VESSEL", "value": "9074729", "severity": 3, "reason": "Vessel used for rip-on loads"})
        wait_for(lambda: received(b, "admin", message["message_id"]))
        wait_for(lambda: a.get("/v1/audit/events?action=exchange.retry&limit=50", "auditor").json()["items"])
        assert sent(a, "officer:ECGYE", message["message_id"])["status"] == "QUEUED"
    finally:
        c.start()
    got = wait_for(lambda: received(c, "officer:PAMIT", message["message_id"]))
    assert got["status"] == "ACCEPTED"  # C's policy accepts A's alerts
    assert wait_for(lambda: sent(a, "officer:ECGYE", message["message_id"])["status"] == "SENT")


def test_a_red_message_is_seen_only_by_the_named_unit(network):
    a, b, c = network["A"], network["B"], network["C"]
    message = send(a, "officer:ECGYE", type="ALERT", sender="PCU-ECGYE", recipients=["PCU-NLRTM"], tlp="RED",
                   body={"kind": "BL", "value": "MAEU999", "severity": 5, "reason": "Informant: cocaine in this B/L"})
    assert wait_for(lambda: received(b, "officer:NLRTM", message["message_id"]))
    for who in ("officer:BEANR", "admin", "auditor"):
        assert b.get(f"/v1/exchange/received/{message['message_id']}", who).status_code == 404
        listed = [m["message"]["message_id"] for m in b.get("/v1/exchange/received?limit=200", who).json()["items"]]
        assert message["message_id"] not in listed
    assert wait_for(lambda: sent(a, "officer:ECGYE", message["message_id"])["status"] == "SENT")
    assert c.get(f"/v1/exchange/received/{message['message_id']}", "admin").status_code == 404
    assert c.get(f"/v1/exchange/received/{message['message_id']}", "officer:PAMIT").status_code == 404
