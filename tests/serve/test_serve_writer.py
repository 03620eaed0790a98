"""The group writer: concurrent writes share one transaction, a failing write fails alone, nothing is acknowledged before its commit."""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from serve.app import open_store
from serve.audit import verify_chain
from serve.settings import Settings
from serve.tables import AuditEvent
from serve.writer import GroupWriter, WriterClosedError, audit_event


@pytest.fixture
def store(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ccp.db'}", sqlite_busy_timeout_ms=200)
    database = open_store(settings)
    yield settings, database
    database.dispose()


def _event_count(database, action: str) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


def _hold(writer: GroupWriter) -> tuple[threading.Event, object]:
    """Occupy the writer thread with a batch of one operation that waits for the returned gate."""
    started, gate = threading.Event(), threading.Event()

    def hold(session):
        started.set()
        return gate.wait(5)

    future = writer.submit_async(hold)
    assert started.wait(5)
    return gate, future


def _record(n: int):
    def operation(session):
        audit_event(session, action="test.write", object_id=str(n))
        return n

    return operation


def test_queued_writes_are_committed_together_in_arrival_order(store):
    _, database = store
    writer = GroupWriter(database)
    gate, blocker = _hold(writer)  # the writer thread is inside a batch
    futures = [writer.submit_async(_record(n)) for n in range(50)]
    gate.set()
    assert blocker.result(5) is True
    assert [f.result(5) for f in futures] == list(range(50))
    assert writer.batches == 2  # the blocker's batch, then all 50 queued writes in one transaction
    with database.read() as session:
        ids = session.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "test.write").order_by(AuditEvent.seq)).all()
        assert verify_chain(session).ok
    assert ids == [str(n) for n in range(50)]


def test_a_failing_write_fails_alone_and_leaves_nothing(store):
    _, database = store
    writer = GroupWriter(database)
    gate, _ = _hold(writer)

    def broken(session):
        audit_event(session, action="test.broken")
        session.execute(text("INSERT INTO audit_events (seq) VALUES (NULL)"))  # violates NOT NULL: rolled back alone

    before = writer.submit_async(_record(1))
    failing = writer.submit_async(broken)
    after = writer.submit_async(_record(2))
    gate.set()
    assert (before.result(5), after.result(5)) == (1, 2)
    with pytest.raises(Exception, match="NOT NULL"):
        failing.result(5)
    assert writer.batches == 2
    assert _event_count(database, "test.write") == 2
    assert _event_count(database, "test.broken") == 0


def test_no_write_is_acknowledged_when_the_commit_cannot_happen(store):
    settings, database = store
    writer = GroupWriter(database)
    blocker = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock beyond the busy timeout
    try:
        futures = [writer.submit_async(_record(n)) for n in range(3)]
        for future in futures:
            with pytest.raises(OperationalError):
                future.result(5)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert _event_count(database, "test.write") == 0
    assert writer.submit(_record(7)) == 7  # the writer keeps working once the lock is free


def test_concurrent_callers_all_get_their_own_result(store):
    _, database = store
    writer = GroupWriter(database)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda n: writer.submit(_record(n)), range(400)))
    assert results == list(range(400))
    assert writer.batches < 400  # grouped
    assert _event_count(database, "test.write") == 400


def test_a_closed_writer_applies_what_was_queued_and_refuses_more(store):
    _, database = store
    writer = GroupWriter(database)
    futures = [writer.submit_async(_record(n)) for n in range(5)]
    writer.close()
    assert [f.result(5) for f in futures] == list(range(5))
    with pytest.raises(WriterClosedError):
        writer.submit(_record(9))


def test_batches_are_bounded_by_max_batch(store):
    _, database = store
    writer = GroupWriter(database, max_batch=10)
    gate, _ = _hold(writer)
    futures = [writer.submit_async(_record(n)) for n in range(35)]
    gate.set()
    [f.result(5) for f in futures]
    assert writer.batches == 1 + 4


def test_rows_a_unique_constraint_refuses_within_one_batch_are_reported_to_their_own_operation(store):
    from datetime import datetime, timezone

    from serve.security import Role
    from serve.store.keys import create_key
    from serve.store.outcomes import insert_outcome_unless_taken
    from serve.tables import OutcomeRow

    _, database = store
    with database.write() as session:
        key_id = create_key(session, role=Role.OFFICER, ports=("NLRTM",), label="t", created_by="test").key_id
    fields = {"manifest_id": "M-1", "container_number": "CSQU3054383", "port": "NLRTM", "exam_type": "PHYSICAL", "result": "NO_FINDING",
              "seal_status": "INTACT", "examiner": "EX-1", "selection_source": "MODEL", "direction": "IMPORT"}

    def insert(idempotency_key: str, second: int):
        def operation(session):
            row = insert_outcome_unless_taken(
                session, outcome_id=f"{idempotency_key}-{second}", fields={**fields, "inspected_at": datetime(2025, 3, 1, 0, 0, second, tzinfo=timezone.utc)},
                api_key_id=key_id, idempotency_key=idempotency_key, request_hash="a" * 64, response_status=201, response_json="{}",
            )
            if row is not None:
                audit_event(session, action="test.inserted", object_id=row["id"])
            return None if row is None else row["id"]

        return operation

    writer = GroupWriter(database)
    gate, _ = _hold(writer)
    futures = [writer.submit_async(insert(k, s)) for k, s in (("a", 1), ("b", 2), ("a", 3), ("c", 2))]  # "a" twice; (M-1, 2 s) twice
    gate.set()
    assert [f.result(5) for f in futures] == ["a-1", "b-2", None, None]
    assert writer.batches == 2  # the refused rows cost a second run of the batch, not a batch of their own
    with database.read() as session:
        assert sorted(session.scalars(select(OutcomeRow.id))) == ["a-1", "b-2"]
        assert session.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "test.inserted").order_by(AuditEvent.seq)).all() == ["a-1", "b-2"]
