"""Rule profiles are versioned: every change writes a new immutable rule-set version with its hash."""

from __future__ import annotations

import json

import pytest

from features.rules.language import default_rule_profiles, ruleset_hash
from serve.store.rulesets import current_ruleset, rules_from_json, ruleset_snapshot
from serve.tables import RuleSetVersion

RULE = {
    "code": "TEA-SEA",
    "reason": "Tea loaded in South-East Asia",
    "expression": 'hs_heading == "0902" and origin_country in ["MM", "TH"]',
    "valid_from": "2025-01-01T00:00:00+07:00",
    "weight": 12.5,
}


@pytest.fixture
def scientist(make_key):
    return make_key("data_scientist")


def test_store_is_seeded_with_the_default_rules_as_version_1(client, database, make_key):
    body = client.get("/v1/rules", headers=make_key("officer", "NLRTM")).json()
    assert body["ruleset_version"] == 1
    assert sorted(r["code"] for r in body["items"]) == sorted(p.code for p in default_rule_profiles())
    with database.read() as session:
        snapshot = current_ruleset(session)
        row = session.get(RuleSetVersion, 1)
    assert snapshot.version == 1
    assert row.ruleset_hash == ruleset_hash(default_rule_profiles()) == ruleset_hash(snapshot.rules)


def test_add_and_expire_write_new_versions_and_keep_old_snapshots(client, database, scientist):
    added = client.post("/v1/rules", json=RULE, headers=scientist)
    assert added.status_code == 201, added.text
    assert added.json()["ruleset_version"]["version"] == 2
    assert added.json()["rule"]["valid_from"] == "2024-12-31T17:00:00Z"
    expired = client.post("/v1/rules/COC-COVER-LOAD/expire", headers=scientist)
    assert expired.status_code == 200
    assert expired.json()["ruleset_version"]["version"] == 3
    with database.read() as session:
        v1, v2, v3 = (ruleset_snapshot(session, v) for v in (1, 2, 3))
        assert current_ruleset(session) == v3
    codes = [{r.code for r in v.rules} for v in (v1, v2, v3)]
    assert codes[1] == codes[0] | {"TEA-SEA"}
    assert codes[2] == codes[1] - {"COC-COVER-LOAD"}
    versions = client.get("/v1/rules/versions", headers=scientist).json()
    assert [(v["version"], v["rule_count"]) for v in versions] == [(1, 13), (2, 14), (3, 13)]
    detail = client.get("/v1/rules/versions/2", headers=scientist).json()
    assert ruleset_hash(rules_from_json(json.dumps(detail["rules"]))) == detail["ruleset_hash"]
    listed = client.get("/v1/rules?include_expired=true", headers=scientist).json()["items"]
    assert any(r["code"] == "COC-COVER-LOAD" and r["expired_in_version"] == 3 for r in listed)


def test_invalid_expression_is_422_with_the_parser_message(client, scientist):
    response = client.post("/v1/rules", json={**RULE, "expression": "consigne_id == 'X'"}, headers=scientist)
    assert response.status_code == 422
    assert "unknown field 'consigne_id' at 0" in response.text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"level": "PORT"}, "port is required when level is PORT"),
        ({"port": "NLRTM"}, "port must be empty when level is NATIONAL"),
        ({"valid_to": "2024-01-01T00:00:00Z"}, "valid_to must be after valid_from"),
        ({"weight": 0}, "greater than 0"),
        ({"code": "lower"}, "pattern"),
        ({"extra": True}, "Extra inputs"),
    ],
)
def test_invalid_profiles_are_422(client, scientist, overrides, message):
    response = client.post("/v1/rules", json={**RULE, **overrides}, headers=scientist)
    assert response.status_code == 422
    assert message in response.text


def test_duplicate_active_code_is_409_and_unknown_expire_is_404(client, scientist):
    assert client.post("/v1/rules", json=RULE, headers=scientist).status_code == 201
    assert client.post("/v1/rules", json=RULE, headers=scientist).status_code == 409
    assert client.post("/v1/rules/NOPE/expire", headers=scientist).status_code == 404
    assert client.post("/v1/rules/TEA-SEA/expire", headers=scientist).status_code == 200
    assert client.post("/v1/rules", json=RULE, headers=scientist).status_code == 201


def test_port_level_rule(client, scientist):
    response = client.post("/v1/rules", json={**RULE, "level": "PORT", "port": "NLRTM"}, headers=scientist)
    assert response.status_code == 201
    assert response.json()["rule"]["port"] == "NLRTM"


def test_a_port_not_written_as_the_schema_says_is_refused_naming_the_field(client, scientist):
    response = client.post("/v1/rules", json={**RULE, "level": "PORT", "port": "nlrtm"}, headers=scientist)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "port"]]


def test_officers_see_national_rules_and_their_own_ports_rules_only(client, scientist, make_key):
    for code, port in (("NL-ONLY", "NLRTM"), ("BE-ONLY", "BEANR")):
        assert client.post("/v1/rules", json={**RULE, "code": code, "level": "PORT", "port": port}, headers=scientist).status_code == 201
    nlrtm, admin = make_key("officer", "NLRTM"), make_key("admin")
    listed = client.get("/v1/rules", headers=nlrtm)
    codes = {r["code"] for r in listed.json()["items"]}
    assert "NL-ONLY" in codes and "BE-ONLY" not in codes and "BEANR" not in listed.text
    assert codes - {"NL-ONLY"} == {r["code"] for r in listed.json()["items"] if r["port"] is None}
    assert {"NL-ONLY", "BE-ONLY"} <= {r["code"] for r in client.get("/v1/rules", headers=admin).json()["items"]}
    latest = client.get("/v1/rules/versions", headers=nlrtm).json()[-1]
    detail = client.get(f"/v1/rules/versions/{latest['version']}", headers=nlrtm)
    assert "BE-ONLY" not in detail.text and "BEANR" not in detail.text
    assert detail.json()["rule_count"] == latest["rule_count"] == len(detail.json()["rules"])
    everything = client.get(f"/v1/rules/versions/{latest['version']}", headers=admin).json()
    assert everything["rule_count"] == detail.json()["rule_count"] + 1


@pytest.mark.parametrize("character", ["\x00", "\u202e", "\r\n", "\u200b", "\x7f", "\x85", "\t"])
def test_control_and_invisible_characters_in_rule_text_are_422_naming_the_field(client, scientist, character):
    for field in ("reason", "expression"):
        body = {**RULE, field: RULE[field][:5] + character + RULE[field][5:]}
        response = client.post("/v1/rules", json=body, headers=scientist)
        assert response.status_code == 422, (field, response.text)
        assert ["body", field] in [e["loc"] for e in response.json()["detail"]]
