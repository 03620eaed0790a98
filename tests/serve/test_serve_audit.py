"""The audit trail is hash-chained: verification passes, then names the first tampered or missing row."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
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
        assert row.hash == chain_hash(row.prev_hash, event_fields(row), database.audit_key.key())


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
    forged = chain_hash(row.prev_hash, fields, database.audit_key.key())
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
        body = outcome_body()
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


# --------------------------------------------------------------------------- the chain is keyed


def _rewrite_chain_from(settings, seq: int, change: dict, hasher) -> None:  # noqa: ANN001
    """What an intruder with write access to the database file does: edit row ``seq`` and re-hash every row after it."""
    from serve.audit import event_fields

    raw = _raw(settings)
    raw.row_factory = sqlite3.Row
    raw.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    columns = [r[1] for r in raw.execute("PRAGMA table_info(audit_events)")]
    rows = [dict(r) for r in raw.execute("SELECT * FROM audit_events WHERE seq >= ? ORDER BY seq", (seq,))]
    prev = raw.execute("SELECT hash FROM audit_events WHERE seq = ?", (seq - 1,)).fetchone()[0]
    rows[0].update(change)
    for row in rows:
        event = AuditEvent(**{c: row[c] for c in columns})
        event.occurred_at = datetime.fromisoformat(row["occurred_at"]).replace(tzinfo=timezone.utc)
        new_hash = hasher(prev, event_fields(event))
        raw.execute("UPDATE audit_events SET actor = ?, detail = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                    (row["actor"], row["detail"], prev, new_hash, row["seq"]))
        prev = new_hash
    raw.commit()
    raw.close()


def test_rewriting_a_row_and_recomputing_the_chain_without_the_key_is_detected(database, settings):
    """The chain is HMAC-SHA256 keyed by a secret outside the database: re-hashing the rest of the chain after an
    edit (plain sha256, or HMAC with any other key) still fails at the edited row."""
    import hashlib

    from targeting.lists import canonical_json

    _fill(database)
    _rewrite_chain_from(settings, 3, {"actor": "intruder"}, lambda prev, fields: hashlib.sha256((prev + canonical_json(fields)).encode()).hexdigest())
    with database.read() as session:
        assert verify_chain(session).first_bad_seq == 3
    _rewrite_chain_from(settings, 3, {"actor": "intruder"}, lambda prev, fields: chain_hash(prev, fields, b"guessed key".ljust(32)))
    with database.read() as session:
        assert verify_chain(session).first_bad_seq == 3
    _rewrite_chain_from(settings, 3, {"actor": "intruder"}, lambda prev, fields: chain_hash(prev, fields, database.audit_key.key()))
    with database.read() as session:  # only the holder of the key file can rewrite history undetected
        assert verify_chain(session).ok


def test_audit_key_file_is_created_private_beside_the_database(database, settings):
    import stat

    from serve.audit_key import default_key_path

    path = default_key_path(settings.database_url)
    assert database.audit_key.path == path and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(path.read_text().strip())) == 32


def test_store_with_a_chain_but_no_key_file_refuses_to_start(database, settings):
    from serve.app import create_app
    from serve.audit_key import AuditKeyError

    _fill(database, 1)
    database.dispose()
    database.audit_key.path.rename(database.audit_key.path.with_suffix(".moved"))
    with pytest.raises(AuditKeyError, match="audit key file .* is missing but the store's audit chain has rows"):
        create_app(settings)
    assert not database.audit_key.path.exists()  # no new key was made up


def test_a_key_file_readable_by_others_is_refused(database, settings):
    from serve.audit_key import AuditKeyError, AuditKeyFile

    database.audit_key.path.chmod(0o644)
    with pytest.raises(AuditKeyError, match="readable by other users"):
        AuditKeyFile(database.audit_key.path).key()
