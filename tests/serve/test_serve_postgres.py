"""The store on a real PostgreSQL server: migrations, schema, keys, lists over HTTP, outcomes, audit chain under concurrency.

Runs when ``CCP_TEST_POSTGRES_URL`` names a server (``postgresql+psycopg://user@127.0.0.1:5432/postgres``,
with the ``postgres`` extra installed); each test gets a database of its own, dropped afterwards.
Skipped otherwise: the embedded default (SQLite) is what every other test uses.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from serve.app import create_app
from serve.audit import record_event, verify_chain
from serve.db import Database, upgrade_to_head
from serve.security import Role
from serve.settings import Settings
from serve.store.keys import create_key
from serve.tables import AuditEvent, Base
from serve_helpers import PORT, idem, insert_list, outcome_body

ADMIN_URL = os.environ.get("CCP_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason="set CCP_TEST_POSTGRES_URL to run the store tests on PostgreSQL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"ccp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migrations_build_the_orm_schema_and_are_idempotent(pg_url):
    upgrade_to_head(pg_url)
    upgrade_to_head(pg_url)
    database = Database.from_url(pg_url)
    try:
        assert {"api_keys", "audit_events", "inspection_lists", "list_amendments", "outcomes"} <= set(inspect(database.engine).get_table_names())
        with database.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata) == []
    finally:
        database.dispose()


def test_audit_trail_is_append_only_and_chained_under_concurrent_writers(pg_url):
    upgrade_to_head(pg_url)
    database = Database.from_url(pg_url)
    try:
        def write(n: int) -> None:
            with database.write() as session:
                record_event(session, action="test.write", actor=f"k{n % 4}", object_id=str(n))

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, range(80)))
        with database.read() as session:
            result = verify_chain(session)
            assert result.ok and result.rows_checked == 80
            assert session.scalar(select(func.count()).select_from(AuditEvent)) == 80
        for statement in ("UPDATE audit_events SET actor = 'x' WHERE seq = 1", "DELETE FROM audit_events WHERE seq = 2", "TRUNCATE audit_events"):
            with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as connection:
                connection.execute(text(statement))
    finally:
        database.dispose()


def test_service_on_postgresql_serves_lists_outcomes_and_amendments(pg_url, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    app = create_app(Settings(database_url=pg_url))
    database = app.state.database
    with database.write() as session:
        officer = {"Authorization": f"Bearer {create_key(session, role=Role.OFFICER, ports=(PORT,), created_by='test').key}"}
        auditor = {"Authorization": f"Bearer {create_key(session, role=Role.AUDITOR, ports=(), created_by='test').key}"}
    list_id = insert_list(database)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            body = client.get(f"/v1/inspection-lists/{list_id}", headers=officer).json()
            assert [i["manifest_id"] for i in body["items"]] == ["M-1", "M-2", "M-3"] and body["deferred_count"] == 1
            amendment = {"action": "ADD", "manifest_id": "M-4", "reason": "Seal mismatch seen at the gate"}
            assert client.post(f"/v1/inspection-lists/{list_id}/amendments", json=amendment, headers=officer).status_code == 201
            assert client.post(f"/v1/inspection-lists/{list_id}/amendments", json=amendment, headers=officer).status_code == 409
            outcome, key = outcome_body(selection_source="OFFICER", manifest_id="M-4"), idem()
            first = client.post("/v1/inspection-outcomes", json=outcome, headers={**officer, **key})
            again = client.post("/v1/inspection-outcomes", json=outcome, headers={**officer, **key})
            assert first.status_code == 201 and (again.status_code, again.content) == (201, first.content)
            rates = client.get(f"/v1/ports/{PORT}/hit-rates", params={"since": "2025-02-01", "until": "2025-04-01"}, headers=officer).json()
            assert [(r["selection_source"], r["inspections"], r["seizures"]) for r in rates["sources"]] == [("OFFICER", 1, 1)]
            verified = client.get("/v1/audit/verify", headers=auditor).json()
            assert verified["ok"] and verified["rows_checked"] >= 5
    finally:
        database.dispose()
