"""The audit trail is hash-chained: verification passes, then names the first tampered or missing row."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from serve.audit import GENESIS_HASH, chain_hash, event_fields, record_event, verify_chain
from serve.store.outcomes import export_outcomes
from serve.tables import AuditEvent
from serve_helpers import PORT, outcome_body


def _fill(database, n: int = 5) -> None:
    with database.write() as session:
        for i in range(n):
            record_event(session, action="test.event", actor="k1", object_id=str(i), detail={"i": i})


def _raw(settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))


def _drop_triggers(raw: sqlite3.Connection) -> None:
    raw.execute("DROP TRIGGER audit_events_no_update")
    raw.execute("DROP TRIGGER audit_events_no_delete")


def test_record_event_links_rows(database):
    _fill(database, 3)
    with database.read() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert rows[0].seq == 1 and rows[0].prev_hash == GENESIS_HASH  # the seed event
    for previous, row in zip(rows, rows[1:]):
        assert row.seq == previous.seq + 1 and row.prev_hash == previous.hash
        assert row.hash == chain_hash(row.prev_hash, event_fields(row))


def test_verify_passes_then_names_the_tampered_row(database, settings):
    _fill(database)
    with database.read() as session:
        ok = verify_chain(session, batch_size=2)
    assert ok.ok and ok.rows_checked == 6 and ok.first_bad_seq is None
    with _raw(settings) as raw:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE audit_events SET actor = 'intruder' WHERE seq = 4")
    with _raw(settings) as raw:
        _drop_triggers(raw)
        raw.execute("UPDATE audit_events SET actor = 'intruder' WHERE seq = 4")
    with database.read() as session:
        broken = verify_chain(session, batch_size=2)
    assert (broken.ok, broken.first_bad_seq, broken.rows_checked) == (False, 4, 3)
    assert broken.problem == "row 4 was modified after it was written (hash mismatch)"


def test_verify_names_the_row_after_a_deleted_one(database, settings):
    _fill(database)
    with _raw(settings) as raw:
        _drop_triggers(raw)
        raw.execute("DELETE FROM audit_events WHERE seq = 3")
    with database.read() as session:
        broken = verify_chain(session)
    assert broken.first_bad_seq == 4 and "missing" in broken.problem


def test_rehashing_a_tampered_row_still_breaks_the_next_link(database, settings):
    _fill(database)
    with database.read() as session:
        row = session.get(AuditEvent, 3)
        fields = event_fields(row)
    fields["actor"] = "intruder"
    forged = chain_hash(row.prev_hash, fields)
    with _raw(settings) as raw:
        _drop_triggers(raw)
        raw.execute("UPDATE audit_events SET actor = 'intruder', hash = ? WHERE seq = 3", (forged,))
    with database.read() as session:
        assert verify_chain(session).first_bad_seq == 4


def test_audit_events_route_filters_and_pages(client, database, make_key):
    _fill(database, 5)
    auditor = make_key("auditor")
    first = client.get("/v1/audit/events?action=test.event&limit=2", headers=auditor).json()
    assert [e["object_id"] for e in first["items"]] == ["0", "1"]
    second = client.get(f"/v1/audit/events?action=test.event&limit=2&after={first['next_after']}", headers=auditor).json()
    assert [e["object_id"] for e in second["items"]] == ["2", "3"]
    assert client.get("/v1/audit/events?limit=100000", headers=auditor).status_code == 422
    verify = client.get("/v1/audit/verify", headers=auditor).json()
    assert verify["ok"] is True


def test_concurrent_writers_keep_the_chain_intact_and_outcomes_exactly_once(client, database, make_key):
    officer = make_key("officer", PORT)
    scientist = make_key("data_scientist")
    acknowledged: list[str] = []
    lock = threading.Lock()

    def post_outcome(i: int) -> None:
        body = outcome_body(manifest_id=f"M-CONC-{i}")
        response = client.post("/v1/inspection-outcomes", json=body, headers={**officer, "Idempotency-Key": f"conc-{i}"})
        if response.status_code == 201:
            with lock:
                acknowledged.append(body["manifest_id"])

    def add_rule(i: int) -> None:
        rule = {"code": f"CONC-{i}", "reason": "r", "expression": "reefer", "valid_from": "2025-01-01T00:00:00Z", "weight": 1}
        assert client.post("/v1/rules", json=rule, headers=scientist).status_code == 201

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(post_outcome, i) for i in range(60)] + [pool.submit(add_rule, i) for i in range(15)]
        for future in futures:
            future.result()
    assert len(acknowledged) == 60
    frame = export_outcomes(database)
    assert sorted(frame["manifest_id"].to_list()) == sorted(acknowledged)
    with database.read() as session:
        result = verify_chain(session)
        versions = session.scalar(select(func.max(AuditEvent.seq)))
    assert result.ok, result
    assert result.rows_checked == versions
    rules = client.get("/v1/rules", headers=scientist).json()
    assert rules["ruleset_version"] == 16
