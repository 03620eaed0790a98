"""`targeting audit verify` and GET /v1/audit/verify check every sealed record, name each bad one, and refuse
stores that do not exist or were never initialised."""

from __future__ import annotations

import sqlite3

import pytest
from typer.testing import CliRunner

import targeting.cli.service  # noqa: F401  (registers the commands)
from serve_helpers import OTHER_PORT, PORT, idem, insert_list, outcome_body, sample_list
from targeting.cli import app as cli_app

runner = CliRunner()


def _verify(settings, monkeypatch):  # noqa: ANN001, ANN202
    monkeypatch.setenv("CCP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CCP_LAKE_DIR", str(settings.lake_dir))
    result = runner.invoke(cli_app, ["audit", "verify"])
    return result, " ".join(result.output.split())


def test_audit_verify_refuses_a_store_that_does_not_exist_and_creates_nothing(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "ccp.db"
    monkeypatch.setenv("CCP_DATABASE_URL", f"sqlite:///{missing}")
    result = runner.invoke(cli_app, ["audit", "verify"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "audit verify refused" in said and "does not exist" in said
    assert not missing.exists() and not missing.parent.exists()


def test_audit_verify_refuses_a_store_that_was_never_initialised(tmp_path, monkeypatch):
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    monkeypatch.setenv("CCP_DATABASE_URL", f"sqlite:///{empty}")
    result = runner.invoke(cli_app, ["audit", "verify"])
    assert result.exit_code == 2 and "never initialised" in " ".join(result.output.split())


def test_audit_verify_refuses_a_store_whose_key_file_is_missing(client, database, settings, monkeypatch):
    database.audit_key.path.unlink()
    result, said = _verify(settings, monkeypatch)
    assert result.exit_code == 2 and "audit key file" in said and "missing" in said


def _world(client, database, make_key) -> dict[str, str]:
    """A store with one record of every sealed kind, written through the service."""
    officer, admin = make_key("officer", PORT), make_key("admin")
    ids = {"officer_key": officer["Authorization"].split("_")[1]}
    ids["list"] = insert_list(database)
    ids["other_list"] = insert_list(database, sample_list(port=OTHER_PORT))
    for name in ("outcome", "deleted_outcome"):
        response = client.post("/v1/inspection-outcomes", json=outcome_body(result="NO_FINDING", seizure_category=None, quantity_kg=None), headers={**officer, **idem()})
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    amendment = {"action": "REMOVE", "manifest_id": "M-2", "reason": "Examined by the port authority"}
    response = client.post(f"/v1/inspection-lists/{ids['list']}/amendments", json=amendment, headers=officer)
    assert response.status_code == 201, response.text
    ids["amendment"] = response.json()["id"]
    entry = {"kind": "CONTAINER", "value": "TEXU3070079", "reason": "Intelligence", "issuing_unit": "PCU", "severity": 2, "valid_from": "2025-01-01T00:00:00Z"}
    response = client.post("/v1/watchlist", json=entry, headers=admin)
    assert response.status_code == 201, response.text
    ids["watchlist"] = response.json()["alert_id"]
    rule = {"code": "TEA", "reason": "Tea", "expression": 'hs_heading == "0902"', "valid_from": "2025-01-01T00:00:00Z", "weight": 5}
    response = client.post("/v1/rules", json=rule, headers=admin)
    assert response.status_code == 201, response.text
    ids["rule"], ids["version"] = str(response.json()["rule"]["id"]), str(response.json()["ruleset_version"]["version"])
    return ids


def test_audit_verify_names_each_record_edited_or_deleted_in_the_database(client, database, settings, make_key, monkeypatch):
    ids = _world(client, database, make_key)
    ok, said = _verify(settings, monkeypatch)
    assert ok.exit_code == 0, said
    assert "sealed records intact" in said
    assert client.get("/v1/audit/verify", headers=make_key("auditor")).json()["ok"] is True
    raw = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    with raw:
        raw.execute("UPDATE outcomes SET result = 'SEIZURE', seizure_category = 'COCAINE' WHERE id = ?", (ids["outcome"],))
        raw.execute("DELETE FROM outcomes WHERE id = ?", (ids["deleted_outcome"],))
        raw.execute("UPDATE list_amendments SET reason = 'Nothing to see' WHERE id = ?", (ids["amendment"],))
        raw.execute("UPDATE watchlist_entries SET severity = 5 WHERE alert_id = ?", (ids["watchlist"],))
        raw.execute("UPDATE api_keys SET role = 'admin', ports = '[]' WHERE id = ?", (ids["officer_key"],))
        raw.execute("UPDATE inspection_lists SET port = ? WHERE id = ?", (PORT, ids["other_list"]))
        raw.execute("UPDATE rule_profiles SET weight = 100 WHERE id = ?", (int(ids["rule"]),))
        raw.execute("UPDATE ruleset_versions SET rules_json = '[]' WHERE version = ?", (int(ids["version"]),))
    raw.close()
    broken, said = _verify(settings, monkeypatch)
    assert broken.exit_code == 1
    assert "audit chain intact" in said  # the chain itself was not touched: the records were
    for record in (
        f"outcome:{ids['outcome']} was modified",
        f"outcome:{ids['deleted_outcome']} was recorded in the audit trail but is missing",
        f"list_amendment:{ids['amendment']} was modified",
        f"watchlist_entry:{ids['watchlist']} was modified",
        f"api_key:{ids['officer_key']} was modified",
        f"inspection_list:{ids['other_list']} was modified",
        f"rule_profile:{ids['rule']} was modified",
        f"ruleset_version:{ids['version']} was modified",
    ):
        assert record in said, record
    assert f"inspection_list:{ids['list']}" not in said
    report = client.get("/v1/audit/verify", headers=make_key("auditor")).json()
    assert report["ok"] is False and len(report["bad_records"]) == 8


def test_a_record_inserted_behind_the_services_back_is_named(client, database, settings, make_key, monkeypatch):
    make_key("auditor")
    raw = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    with raw:
        raw.execute(
            "INSERT INTO api_keys (id, key_hash, role, ports, label, created_at, created_by) "
            "VALUES ('feedfeedfeed', ?, 'admin', '[]', 'backdoor', '2025-08-28 09:00:00.000000', 'nobody')",
            ("0" * 64,),
        )
    raw.close()
    broken, said = _verify(settings, monkeypatch)
    assert broken.exit_code == 1 and "api_key:feedfeedfeed has no seal in the audit trail" in said


@pytest.mark.parametrize("kind", ["revoked", "expired"])
def test_later_changes_made_through_the_service_are_sealed_too(client, database, settings, make_key, monkeypatch, kind):
    admin = make_key("admin")
    if kind == "revoked":
        from serve.store.keys import revoke_key

        key_id = make_key("auditor")["Authorization"].split("_")[1]
        with database.write() as session:
            assert revoke_key(session, key_id, actor="test")
    else:
        entry = {"kind": "CONTAINER", "value": "TEXU3070079", "reason": "Intelligence", "issuing_unit": "PCU", "severity": 2, "valid_from": "2025-01-01T00:00:00Z"}
        alert_id = client.post("/v1/watchlist", json=entry, headers=admin).json()["alert_id"]
        assert client.post(f"/v1/watchlist/{alert_id}/expire", headers=admin).status_code == 200
    ok, said = _verify(settings, monkeypatch)
    assert ok.exit_code == 0, said


def test_every_column_of_a_sealed_table_is_sealed_or_deliberately_left_out():
    """A new column of a sealed table must be named in SEALED_COLUMNS (or here, with the reason it is not sealed)."""
    from serve.seals import SEALED, SEALED_COLUMNS

    not_sealed = {
        ("inspection_list", "record_json"),  # covered through content_sha256
        # a web user's sign-in counters change on every attempt and the language is a display choice: neither shapes access
        ("web_user", "failed_logins"),
        ("web_user", "locked_until"),
        ("web_user", "language"),
    }
    for name, table in SEALED.items():
        columns = {c.key for c in table.__mapper__.column_attrs}
        assert columns - set(SEALED_COLUMNS[name]) == {c for t, c in not_sealed if t == name}, name
        assert set(SEALED_COLUMNS[name]) <= columns, name
