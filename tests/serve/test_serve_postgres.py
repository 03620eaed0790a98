"""The store on a real PostgreSQL server: migrations, schema, keys, lists over HTTP, outcomes, audit chain under concurrency.

The server is ``CCP_TEST_POSTGRES_URL`` when set (``postgresql+psycopg://user@127.0.0.1:5432/postgres``);
otherwise a throwaway one is started from the machine's PostgreSQL binaries (``initdb``/``pg_ctl``, run as
``nobody`` when the tests run as root) in a temporary directory. Each test gets a database of its own.
The tests are skipped, saying why, when neither is possible or the ``psycopg`` driver is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def admin_url() -> Iterator[str]:
    """URL of a PostgreSQL server to create test databases on."""
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    if os.environ.get("CCP_TEST_POSTGRES_URL"):
        yield os.environ["CCP_TEST_POSTGRES_URL"]
        return
    yield from throwaway_server("-c fsync=off", skip_reason="no PostgreSQL server binaries (initdb, pg_ctl) and no CCP_TEST_POSTGRES_URL")


def throwaway_server(settings: str, *, skip_reason: str) -> Iterator[str]:
    """Start a throwaway PostgreSQL server from the machine's binaries with ``settings`` (``-c name=value ...``),
    yield its admin URL and remove it; skips the test, saying why, when it cannot be started."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip(skip_reason)
    root = Path(tempfile.mkdtemp(prefix="ccp-pg-"))
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "nobody")
    port = _free_port()
    data, log = root / "data", root / "server.log"
    started = False
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "ccp", "--auth=trust"], check=True, capture_output=True, timeout=120)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 {settings}"
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], check=True, capture_output=True, timeout=90)
        started = True
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL server: {exc}")
    try:
        yield f"postgresql+psycopg://ccp@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(admin_url) -> Iterator[str]:
    name = f"ccp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
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


def test_audit_trail_is_append_only_and_chained_under_concurrent_writers(pg_url, tmp_path):
    upgrade_to_head(pg_url)
    database = Database.from_url(pg_url, audit_key_file=tmp_path / "audit.key")
    database.audit_key.ensure(chain_has_rows=False)
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


def test_service_on_postgresql_serves_lists_outcomes_and_amendments(pg_url, monkeypatch, tmp_path, service_lake_dir):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    app = create_app(Settings(database_url=pg_url, audit_key_file=tmp_path / "audit.key", lake_dir=service_lake_dir))
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
            outcome, key = outcome_body(selection_source="OFFICER"), idem()
            first = client.post("/v1/inspection-outcomes", json=outcome, headers={**officer, **key})
            again = client.post("/v1/inspection-outcomes", json=outcome, headers={**officer, **key})
            assert first.status_code == 201 and (again.status_code, again.content) == (201, first.content)
            rates = client.get(f"/v1/ports/{PORT}/hit-rates", params={"since": "2025-02-01", "until": "2025-04-01"}, headers=officer).json()
            assert [(r["selection_source"], r["inspections"], r["seizures"]) for r in rates["sources"]] == [("OFFICER", 1, 1)]
            verified = client.get("/v1/audit/verify", headers=auditor).json()
            assert verified["ok"] and verified["rows_checked"] >= 5, verified["bad_records"]
    finally:
        database.dispose()


def test_tampered_records_are_named_on_postgresql_too(pg_url, monkeypatch, tmp_path, service_lake_dir):
    """The same seals and keyed chain on PostgreSQL: an outcome flipped to SEIZURE and a key turned admin are named by
    GET /v1/audit/verify and by `targeting audit verify`; a database that was never initialised is refused."""
    from typer.testing import CliRunner

    import targeting.cli.service  # noqa: F401  (registers the commands)
    from targeting.cli import app as cli_app

    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    key_file = tmp_path / "audit.key"
    app = create_app(Settings(database_url=pg_url, audit_key_file=key_file, lake_dir=service_lake_dir))
    database = app.state.database
    with database.write() as session:
        created = create_key(session, role=Role.OFFICER, ports=(PORT,), created_by="test")
        auditor = {"Authorization": f"Bearer {create_key(session, role=Role.AUDITOR, ports=(), created_by='test').key}"}
    officer = {"Authorization": f"Bearer {created.key}"}
    monkeypatch.setenv("CCP_DATABASE_URL", pg_url)
    monkeypatch.setenv("CCP_AUDIT_KEY_FILE", str(key_file))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            posted = client.post("/v1/inspection-outcomes", json=outcome_body(result="NO_FINDING", seizure_category=None, quantity_kg=None), headers={**officer, **idem()})
            assert posted.status_code == 201, posted.text
            assert client.get("/v1/audit/verify", headers=auditor).json()["ok"] is True
            assert runner_output(CliRunner().invoke(cli_app, ["audit", "verify"]))[0] == 0
            with database.engine.begin() as connection:
                connection.execute(text("UPDATE outcomes SET result = 'SEIZURE', seizure_category = 'COCAINE' WHERE id = :id"), {"id": posted.json()["id"]})
                connection.execute(text("UPDATE api_keys SET role = 'admin', ports = '[]' WHERE id = :id"), {"id": created.key_id})
            report = client.get("/v1/audit/verify", headers=auditor).json()
            assert report["ok"] is False
            assert sorted(p["record"] for p in report["bad_records"]) == sorted([f"outcome:{posted.json()['id']}", f"api_key:{created.key_id}"])
            code, said = runner_output(CliRunner().invoke(cli_app, ["audit", "verify"]))
            assert code == 1 and f"outcome:{posted.json()['id']} was modified" in said and f"api_key:{created.key_id} was modified" in said
    finally:
        database.dispose()
    blank = make_url(pg_url).set(database="postgres").render_as_string(hide_password=False)  # exists, never initialised
    monkeypatch.setenv("CCP_DATABASE_URL", blank)
    code, said = runner_output(CliRunner().invoke(cli_app, ["audit", "verify"]))
    assert code == 2 and "never initialised" in said


def runner_output(result) -> tuple[int, str]:  # noqa: ANN001
    return result.exit_code, " ".join(result.output.split())
