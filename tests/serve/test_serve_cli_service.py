"""The service CLI: keys, audit verify, rules, watchlist, outcomes export (real store in tmp_path)."""

from __future__ import annotations

import sqlite3
from datetime import date

import polars as pl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import targeting.cli.service  # noqa: F401  (registers the commands)
from features.data.contracts import INSPECTION_OUTCOMES
from serve.audit import record_event
from serve.db import Database
from serve.security import hash_key
from serve.tables import ApiKey, AuditEvent, StoredList
from serve_helpers import insert_list, sample_list
from targeting.cli import app
from targeting.lists import canonical_json, list_to_dict

runner = CliRunner()


@pytest.fixture
def url(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CCP_DATABASE_URL", url)
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    from serve.app import open_store
    from serve.settings import Settings

    open_store(Settings()).dispose()  # as `targeting init` does: commands refuse a store that does not exist
    return url


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_keys_create_prints_the_key_once_and_stores_its_hash(url):
    result = _run("keys", "create", "--role", "officer", "--port", "nlrtm", "--port", "BEANR", "--label", "PCU Rotterdam")
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("ccp_")
    with Database.from_url(url).read() as session:
        row = session.scalars(select(ApiKey)).one()
        events = session.scalars(select(AuditEvent.action)).all()
    assert row.key_hash == hash_key(key) and row.ports == ["BEANR", "NLRTM"] and row.role == "officer"
    assert "key.create" in events
    listed = _run("keys", "list")
    assert key not in listed.output and row.id in listed.output


def test_keys_create_refuses_bad_roles_and_ports(url):
    assert _run("keys", "create", "--role", "superuser").exit_code == 2
    assert _run("keys", "create", "--role", "officer").exit_code == 2
    assert _run("keys", "create", "--role", "auditor", "--port", "NLRTM").exit_code == 2


def test_audit_verify_exits_1_naming_the_first_bad_row(url):
    assert _run("keys", "create", "--role", "admin").exit_code == 0
    assert _run("keys", "create", "--role", "auditor").exit_code == 0
    ok = _run("audit", "verify")
    assert ok.exit_code == 0 and "intact: 3 rows" in ok.output
    with sqlite3.connect(url.removeprefix("sqlite:///")) as raw:
        raw.execute("DROP TRIGGER audit_events_no_update")
        raw.execute("UPDATE audit_events SET detail = '{}' WHERE seq = 2")
    broken = _run("audit", "verify")
    assert broken.exit_code == 1
    assert "BROKEN at row 2" in broken.output


def test_audit_verify_names_stored_lists_altered_missing_or_unlike_their_audited_creation(url):
    database = Database.from_url(url)
    assert _run("keys", "create", "--role", "admin").exit_code == 0  # migrates the store
    sound, altered, deleted, swapped = (insert_list(database) for _ in range(4))
    with database.write() as session:
        for list_id in (sound, altered, deleted, swapped):
            row = session.get(StoredList, list_id)
            record_event(session, action="list.create", actor="k-test", object_type="inspection_list", object_id=list_id,
                         detail={"content_sha256": row.content_sha256})
    ok = _run("audit", "verify")
    assert ok.exit_code == 0 and "stored lists intact: 4 lists" in ok.output
    other = sample_list(list_date=date(2025, 3, 2))
    with sqlite3.connect(url.removeprefix("sqlite:///")) as raw:
        raw.execute("UPDATE inspection_lists SET record_json = replace(record_json, 'M-1', 'M-9') WHERE id = ?", (altered,))
        raw.execute("DELETE FROM inspection_lists WHERE id = ?", (deleted,))
        text = canonical_json(list_to_dict(other))  # a whole other, self-consistent record
        raw.execute("UPDATE inspection_lists SET record_json = ?, content_sha256 = ? WHERE id = ?", (text, other.content_sha256(), swapped))
    broken = _run("audit", "verify")
    said = " ".join(broken.output.split())  # undo the console's line wrapping
    assert broken.exit_code == 1 and "audit chain intact" in said
    assert f"stored list {altered} FAILS verification: stored list {altered} does not match its content hash" in said
    assert f"{deleted} was created (audited) but is missing from the store" in said
    assert f"{swapped} does not match the content hash its creation audited" in said
    assert sound not in said


def test_rules_add_list_expire(url):
    added = _run(
        "rules", "add", "--code", "TEA-SEA", "--reason", "Tea from SE Asia", "--expression", 'hs_heading == "0902"',
        "--weight", "5", "--valid-from", "2025-01-01T00:00:00+00:00",
    )
    assert added.exit_code == 0, added.output
    assert "rule-set version 2" in added.output
    bad = _run("rules", "add", "--code", "X", "--reason", "r", "--expression", "nope == 1", "--weight", "5",
               "--valid-from", "2025-01-01T00:00:00+00:00")
    assert bad.exit_code == 2 and "unknown field 'nope' at 0" in bad.output
    naive = _run("rules", "add", "--code", "X", "--reason", "r", "--expression", "reefer", "--weight", "5",
                 "--valid-from", "2025-01-01T00:00:00")
    assert naive.exit_code == 2
    assert "TEA-SEA" in _run("rules", "list").output
    assert _run("rules", "expire", "TEA-SEA").exit_code == 0
    assert _run("rules", "expire", "TEA-SEA").exit_code == 1


def test_watchlist_add_list_expire(url):
    added = _run(
        "watchlist", "add", "--kind", "container", "--value", "csqu3054383", "--reason", "tip-off",
        "--issuing-unit", "PCU-ECGYE", "--severity", "4", "--valid-from", "2025-01-01T00:00:00+00:00",
        "--alert-id", "WL-CLI-1",
    )
    assert added.exit_code == 0, added.output
    assert "WL-CLI-1" in _run("watchlist", "list").output
    assert _run("watchlist", "add", "--kind", "VESSEL", "--value", "9074728", "--reason", "r", "--issuing-unit", "u",
                "--severity", "1", "--valid-from", "2025-01-01T00:00:00+00:00").exit_code == 2
    assert _run("watchlist", "expire", "WL-CLI-1").exit_code == 0
    assert _run("watchlist", "expire", "WL-CLI-1").exit_code == 1


def test_outcomes_export_writes_the_contract_schema(url, tmp_path):
    out = tmp_path / "export" / "outcomes.parquet"
    result = _run("outcomes", "export", str(out))
    assert result.exit_code == 0, result.output
    assert pl.read_parquet(out).schema == INSPECTION_OUTCOMES.schema


def test_replay_of_an_unknown_list_names_it(url):
    result = _run("audit", "replay", "0b6b2a58-8a7c-4a43-9ad2-0cf3a7e0f1a1")
    assert result.exit_code == 2 and "no inspection list '0b6b2a58-8a7c-4a43-9ad2-0cf3a7e0f1a1'" in result.output


def test_unsafe_settings_are_refused(url, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    result = _run("audit", "verify")
    assert result.exit_code == 2 and "configuration refused" in result.output
