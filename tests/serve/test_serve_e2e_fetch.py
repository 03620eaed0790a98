"""Fetching stored lists: verified on every fetch, answered from a bounded cache of built bodies, every fetch
audited through the group-committing audit writer (real engine lists, real SQLite store, HTTP via TestClient).
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import OperationalError

from fastapi.testclient import TestClient

from features import clock
from serve.app import create_app, open_store
from serve.audit import AuditWriter, verify_chain
from serve.security import Role
from serve.settings import Settings
from serve.store.keys import create_key
from serve.store.lists import ServedListCache, lists_for_port, record_is_verbatim, verify_stored_lists
from serve.tables import AuditEvent, StoredList
from serve_helpers import PORT, insert_list

pytestmark = pytest.mark.slow


def create(service, capacity: int = 8) -> dict:
    response = service.client.post(
        f"/v1/ports/{PORT}/inspection-lists",
        json={"date": clock.today().isoformat(), "capacity": capacity},
        headers=service.as_("officer_own"),
    )
    assert response.status_code == 201, response.text
    return response.json()


def sqlite_path(service) -> str:
    return service.settings.database_url.removeprefix("sqlite:///")


def events(service, action: str, object_id: str) -> list[AuditEvent]:
    with service.database.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.object_id == object_id).order_by(AuditEvent.seq)))


def test_stored_records_are_verbatim_canonical_json(e2e_service):
    body = create(e2e_service)
    with e2e_service.database.read() as session:
        row = session.get(StoredList, body["id"])
        assert record_is_verbatim(row)
        assert row.content_sha256 == body["content_sha256"]


def test_created_and_fetched_bodies_agree_with_and_without_deferred_candidates(e2e_service):
    body = create(e2e_service)
    officer = e2e_service.as_("officer_own")
    fetched = e2e_service.client.get(f"/v1/inspection-lists/{body['id']}", headers=officer).json()
    whole = e2e_service.client.get(f"/v1/inspection-lists/{body['id']}?include=deferred", headers=officer).json()
    assert fetched == body and body["deferred"] is None
    assert len(whole["deferred"]) == body["deferred_count"] == body["candidate_count"] - len(body["items"]) > 0
    with e2e_service.database.read() as session:
        stored = json.loads(session.get(StoredList, body["id"]).record_json)
    assert whole["deferred"] == stored["deferred"]
    paged = e2e_service.client.get(f"/v1/inspection-lists/{body['id']}/deferred?limit=5", headers=officer).json()
    assert paged["items"] == whole["deferred"][:5] and paged["page"]["total"] == body["deferred_count"]


def test_a_list_tampered_with_after_it_was_served_is_never_shown_and_is_named_by_verification(e2e_service):
    body = create(e2e_service)
    officer = e2e_service.as_("officer_own")
    assert e2e_service.client.get(f"/v1/inspection-lists/{body['id']}", headers=officer).json() == body  # cached
    exported = e2e_service.client.get(f"/v1/inspection-lists/{body['id']}.csv", headers=officer).text  # cached
    victim = body["items"][0]["container_number"]
    with sqlite3.connect(sqlite_path(e2e_service)) as raw:
        raw.execute("UPDATE inspection_lists SET record_json = replace(record_json, ?, 'MSKU6011672') WHERE id = ?", (victim, body["id"]))
    # the process that cached the verified bodies keeps serving the original, never the altered text
    assert e2e_service.client.get(f"/v1/inspection-lists/{body['id']}", headers=officer).json() == body
    assert e2e_service.client.get(f"/v1/inspection-lists/{body['id']}.csv", headers=officer).text == exported
    # what has to read the record refuses it, here and in a fresh process
    fresh = TestClient(create_app(e2e_service.settings, migrate=False), raise_server_exceptions=False)
    for client, suffix in ((e2e_service.client, "/deferred"), (e2e_service.client, "?include=deferred"), (fresh, ""), (fresh, ".csv")):
        response = client.get(f"/v1/inspection-lists/{body['id']}{suffix}", headers=officer)
        assert response.status_code == 500 and response.json()["detail"] == "internal server error", suffix
        assert victim not in response.text and "MSKU6011672" not in response.text
    assert [e.result for e in events(e2e_service, "list.fetch", body["id"])] == ["ok", "ok", "error", "error"]
    assert [e.result for e in events(e2e_service, "list.export_csv", body["id"])] == ["ok", "ok", "error"]
    with e2e_service.database.read() as session:
        checked, problems = verify_stored_lists(session)
    assert checked >= 1 and [(p.list_id, p.problem) for p in problems] == [(body["id"], f"stored list {body['id']} does not match its content hash")]

def test_a_valid_record_stored_in_another_json_layout_is_still_served(e2e_service):
    body = create(e2e_service)
    officer = e2e_service.as_("officer_own")
    exported = e2e_service.client.get(f"/v1/inspection-lists/{body['id']}.csv", headers=officer).text
    with sqlite3.connect(sqlite_path(e2e_service)) as raw:
        (text,) = raw.execute("SELECT record_json FROM inspection_lists WHERE id = ?", (body["id"],)).fetchone()
        raw.execute("UPDATE inspection_lists SET record_json = ? WHERE id = ?", (json.dumps(json.loads(text), indent=2), body["id"]))
    with e2e_service.database.read() as session:
        assert not record_is_verbatim(session.get(StoredList, body["id"]))
    again = e2e_service.client.get(f"/v1/inspection-lists/{body['id']}", headers=officer)
    assert again.status_code == 200 and again.json() == body  # verified by recomputing the canonical hash
    assert e2e_service.client.get(f"/v1/inspection-lists/{body['id']}/export.csv", headers=officer).text == exported
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["manifest_id"] for r in rows] == [i["manifest_id"] for i in body["items"]]


def test_concurrent_fetches_are_each_audited_once_in_one_chain(e2e_service):
    bodies = [create(e2e_service, capacity=c) for c in (5, 6, 7)]
    officer = e2e_service.as_("officer_own")
    for older, newer in zip(bodies, bodies[1:]):  # each list superseded the one before it: its body now says so
        older.update(current=False, superseded_by=newer["id"])

    def fetch(n: int) -> tuple[int, dict]:
        body = bodies[n % 3]
        response = e2e_service.client.get(f"/v1/inspection-lists/{body['id']}", headers=officer)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(fetch, range(120)))
    assert all(status == 200 and got == bodies[n % 3] for n, (status, got) in enumerate(results))
    with e2e_service.database.read() as session:
        fetched = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "list.fetch", AuditEvent.result == "ok"))
        assert fetched == 120
        assert verify_chain(session).ok


def test_port_listing_does_not_load_list_records(e2e_service):
    body = create(e2e_service)
    with e2e_service.database.read() as session:
        rows, total = lists_for_port(session, PORT, limit=10)
        assert total == 1 and rows[0].id == body["id"]
        assert "record_json" in inspect(rows[0]).unloaded
    listing = e2e_service.client.get(f"/v1/ports/{PORT}/inspection-lists", headers=e2e_service.as_("auditor"))
    assert listing.json()["items"][0]["item_count"] == len(body["items"])


# --------------------------------------------------------------------------- the pieces on their own


def test_audit_writer_appends_every_event_of_concurrent_callers(tmp_path):
    database = open_store(Settings(database_url=f"sqlite:///{tmp_path / 'ccp.db'}"))
    writer = AuditWriter(database, max_batch=7)
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(lambda n: writer.record(action="list.fetch", actor=f"k{n % 4}", object_id=f"L-{n}", status_code=200), range(200)))
        with database.read() as session:
            ids = session.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "list.fetch")).all()
            assert sorted(ids) == sorted(f"L-{n}" for n in range(200))
            assert verify_chain(session).ok
    finally:
        database.dispose()


def test_audit_writer_fails_every_caller_of_a_batch_that_cannot_commit(tmp_path):
    url = f"sqlite:///{tmp_path / 'ccp.db'}"
    database = open_store(Settings(database_url=url, sqlite_busy_timeout_ms=100))
    writer = AuditWriter(database)
    blocker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    errors: list[BaseException] = []

    def record(n: int) -> None:
        try:
            writer.record(action="list.fetch", object_id=f"L-{n}")
        except BaseException as exc:  # noqa: BLE001 - collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(5)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    try:
        assert len(errors) == 5 and all(isinstance(e, OperationalError) for e in errors)
        with database.read() as session:
            assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "list.fetch")) == 0
        writer.record(action="list.fetch", object_id="after")
        with database.read() as session:
            assert session.scalars(select(AuditEvent.object_id).where(AuditEvent.action == "list.fetch")).all() == ["after"]
    finally:
        database.dispose()


def test_fetch_is_503_and_shows_nothing_when_its_audit_event_cannot_be_written(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ccp.db'}", sqlite_busy_timeout_ms=100)
    app = create_app(settings)
    list_id = insert_list(app.state.database)
    with app.state.database.write() as session:
        headers = {"Authorization": f"Bearer {create_key(session, role=Role.AUDITOR, created_by='test').key}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        blocker = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            refused = client.get(f"/v1/inspection-lists/{list_id}", headers=headers)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "CSQU" not in refused.text and "M-1" not in refused.text
        with app.state.database.read() as session:
            assert session.scalars(select(AuditEvent).where(AuditEvent.action == "list.fetch")).all() == []
        assert client.get(f"/v1/inspection-lists/{list_id}", headers=headers).status_code == 200


def test_served_list_cache_is_a_bounded_lru_per_list_and_kind():
    def row(list_id: str) -> StoredList:
        return StoredList(id=list_id, port=PORT, model_version="3", content_sha256="a" * 64)

    cache = ServedListCache(max_bytes=10)
    for list_id in "AB":
        cache.put(row(list_id), "json", list_id.lower().encode() * 4)
    assert cache.get("A", "json").body == b"aaaa"  # A is now the most recent
    assert cache.get("A", "csv") is None  # another kind
    cache.put(row("C"), "json", b"cccc")  # evicts B, the least recently used
    assert cache.get("B", "json") is None
    hit = cache.get("C", "json")
    assert (hit.list_id, hit.port, hit.model_version, hit.content_sha256, hit.body) == ("C", PORT, "3", "a" * 64, b"cccc")
    cache.put(row("D"), "json", b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get("D", "json") is None and cache.get("A", "json") is not None

