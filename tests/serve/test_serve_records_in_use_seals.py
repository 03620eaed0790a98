"""Records are checked against their seals when they are used, not only by ``targeting audit verify``.

An API key is checked when it enters the key cache (a key turned admin in the
database is refused like an unknown key, and the refusal is audited naming
it); watchlist entries and rule profiles are checked when read through the API
and when a list is built from them (500, the audit event names the record).
Every tamper here is an SQL edit of the real SQLite store, as an intruder
owning the file would make it.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from serve.store.keys import create_key
from serve.security import Role
from serve.tables import AuditEvent
from serve_helpers import PORT, TODAY

ENTRY = {
    "kind": "CONTAINER",
    "value": "CSQU3054383",
    "reason": "Intelligence from PCU Guayaquil",
    "issuing_unit": "PCU-ECGYE",
    "severity": 3,
    "valid_from": "2025-01-01T00:00:00Z",
    "valid_to": "2099-01-01T00:00:00Z",
}


def _sql(database, statement: str, **params) -> None:  # noqa: ANN001 - an edit made directly in the database
    with database.engine.begin() as connection:
        connection.execute(text(statement), params)


def _new_key(database, role: Role, *ports: str) -> tuple[str, dict[str, str]]:  # noqa: ANN001
    with database.write() as session:
        created = create_key(session, role=role, ports=ports, created_by="test")
    return created.key_id, {"Authorization": f"Bearer {created.key}"}


def _events(database, action: str) -> list[AuditEvent]:  # noqa: ANN001
    with database.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)))


# --------------------------------------------------------------------------- API keys


def test_an_officer_key_turned_admin_in_the_database_is_refused_like_an_unknown_key_and_audited(client, database):
    key_id, headers = _new_key(database, Role.OFFICER, PORT)
    _sql(database, "UPDATE api_keys SET role = 'admin', ports = '[]' WHERE id = :id", id=key_id)
    refused = client.get("/v1/audit/events", headers=headers)
    unknown = client.get("/v1/audit/events", headers={"Authorization": "Bearer ccp_0123456789ab_" + "A" * 43})
    assert refused.status_code == unknown.status_code == 401
    assert refused.json() == unknown.json() and refused.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")
    assert client.get(f"/v1/ports/{PORT}/inspection-lists", headers=headers).status_code == 401  # not even as the officer it was
    events = _events(database, "auth.key_seal_mismatch")
    assert events and all((e.object_type, e.object_id, e.status_code) == ("api_key", key_id, 401) for e in events)
    assert f"api_key:{key_id} was modified after it was recorded" in json.loads(events[0].detail)["problem"]


def test_an_untouched_key_still_works_beside_a_tampered_one(client, database):
    _, sound = _new_key(database, Role.OFFICER, PORT)
    tampered_id, tampered = _new_key(database, Role.OFFICER, PORT)
    _sql(database, "UPDATE api_keys SET ports = :ports WHERE id = :id", ports='["BEANR", "NLRTM"]', id=tampered_id)
    assert client.get(f"/v1/ports/{PORT}/inspection-lists", headers=sound).status_code == 200
    assert client.get(f"/v1/ports/{PORT}/inspection-lists", headers=tampered).status_code == 401


def test_a_revoked_key_revived_in_the_database_stays_refused(client, database):
    key_id, headers = _new_key(database, Role.AUDITOR)
    with database.write() as session:
        from serve.store.keys import revoke_key

        assert revoke_key(session, key_id, actor="test")
    _sql(database, "UPDATE api_keys SET revoked_at = NULL WHERE id = :id", id=key_id)
    assert client.get("/v1/audit/events", headers=headers).status_code == 401
    assert [e.object_id for e in _events(database, "auth.key_seal_mismatch")][:1] == [key_id]


def test_a_key_inserted_behind_the_service_is_refused(client, database):
    key_id, headers = _new_key(database, Role.OFFICER, PORT)
    _sql(database, "DROP TRIGGER IF EXISTS audit_events_no_delete")  # the intruder owns the database file
    _sql(database, "DELETE FROM audit_events WHERE object_type = 'api_key' AND object_id = :id", id=key_id)
    assert client.get(f"/v1/ports/{PORT}/inspection-lists", headers=headers).status_code == 401
    problem = json.loads(_events(database, "auth.key_seal_mismatch")[0].detail)["problem"]
    assert f"api_key:{key_id} has no valid seal" in problem


def test_a_key_is_checked_once_per_cache_fill_not_per_request(client, database):
    _, headers = _new_key(database, Role.OFFICER, PORT)
    for _ in range(3):
        assert client.get(f"/v1/ports/{PORT}/inspection-lists", headers=headers).status_code == 200
    key_id = headers["Authorization"].split("_")[1]
    _sql(database, "UPDATE api_keys SET role = 'admin', ports = '[]' WHERE id = :id", id=key_id)
    client.app.state.principals._entries.clear()  # the cache expires (CCP_KEY_CACHE_SECONDS): the next request reads the row again
    assert client.get(f"/v1/ports/{PORT}/inspection-lists", headers=headers).status_code == 401


# --------------------------------------------------------------------------- watchlist entries and rule profiles


@pytest.fixture
def admin(make_key):  # noqa: ANN001, ANN201
    return make_key("admin")


def test_a_watchlist_entry_edited_in_the_database_answers_500_naming_it(client, database, admin, make_key):
    created = client.post("/v1/watchlist", json=ENTRY, headers=admin)
    assert created.status_code == 201, created.text
    alert_id = created.json()["alert_id"]
    officer = make_key("officer", PORT)
    assert client.get("/v1/watchlist", headers=officer).status_code == 200
    _sql(database, "UPDATE watchlist_entries SET severity = 1 WHERE alert_id = :id", id=alert_id)
    response = client.get("/v1/watchlist", headers=officer)
    assert response.status_code == 500 and "CSQU3054383" not in response.text
    event = _events(database, "watchlist.read")[-1]
    assert (event.result, event.status_code) == ("error", 500)
    assert json.loads(event.detail)["bad_records"] == [f"watchlist_entry:{alert_id}"]


def test_a_rule_profile_edited_in_the_database_answers_500_naming_it(client, database, make_key):
    officer = make_key("officer", PORT)
    rules = client.get("/v1/rules", headers=officer)
    assert rules.status_code == 200 and rules.json()["items"]  # the seeded national profiles, sealed by ruleset.seed
    with database.read() as session:
        profile_id = session.execute(text("SELECT id FROM rule_profiles WHERE level = 'NATIONAL' ORDER BY id LIMIT 1")).scalar_one()
    _sql(database, "UPDATE rule_profiles SET weight = weight + 5 WHERE id = :id", id=profile_id)
    response = client.get("/v1/rules", headers=officer)
    assert response.status_code == 500
    event = _events(database, "rule.read")[-1]
    assert (event.result, event.status_code) == ("error", 500)
    assert json.loads(event.detail)["bad_records"] == [f"rule_profile:{profile_id}"]


@pytest.mark.slow
def test_a_list_is_not_built_from_a_tampered_watchlist_entry_or_rule_set(e2e_service):
    service, database = e2e_service, e2e_service.database
    body = {"date": TODAY.isoformat(), "capacity": 6}
    created = service.client.post("/v1/watchlist", json=ENTRY, headers=service.as_("admin"))
    assert created.status_code == 201, created.text
    alert_id = created.json()["alert_id"]
    officer = service.as_("officer_own")
    assert service.client.post(f"/v1/ports/{PORT}/inspection-lists", json=body, headers=officer).status_code == 201
    _sql(database, "UPDATE watchlist_entries SET severity = 5 WHERE alert_id = :id", id=alert_id)
    refused = service.client.post(f"/v1/ports/{PORT}/inspection-lists", json=body, headers=officer)
    assert refused.status_code == 500
    event = _events(database, "list.create")[-1]
    assert (event.result, event.status_code, json.loads(event.detail)["bad_records"]) == ("error", 500, [f"watchlist_entry:{alert_id}"])
    _sql(database, "UPDATE watchlist_entries SET severity = 3 WHERE alert_id = :id", id=alert_id)  # put back: sound again
    _sql(database, "UPDATE ruleset_versions SET rules_json = '[]' WHERE version = (SELECT max(version) FROM ruleset_versions)")
    refused = service.client.post(f"/v1/ports/{PORT}/inspection-lists", json=body, headers=officer)
    assert refused.status_code == 500
    assert json.loads(_events(database, "list.create")[-1].detail)["bad_records"][0].startswith("ruleset_version:")
