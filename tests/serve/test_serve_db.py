"""The store: migrations from empty, SQLite pragmas, schema identical to the ORM tables."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from alembic.script import ScriptDirectory

from serve.db import Database, UTCDateTime, alembic_config, upgrade_to_head
from serve.store.rulesets import ensure_seeded, list_versions
from serve.tables import Base

TABLES = {
    "api_keys",
    "audit_events",
    "inspection_lists",
    "list_amendments",
    "outcomes",
    "watchlist_entries",
    "rule_profiles",
    "ruleset_versions",
}


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sub' / 'store.db'}"


def test_migrations_create_every_table_from_empty(url):
    upgrade_to_head(url)
    database = Database.from_url(url)
    names = set(inspect(database.engine).get_table_names())
    assert TABLES <= names
    assert "alembic_version" in names
    with database.read() as session:
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        assert session.execute(text("SELECT version_num FROM alembic_version")).scalar() == head


def test_migrations_are_idempotent(url):
    upgrade_to_head(url)
    upgrade_to_head(url)


def test_migrated_schema_matches_the_orm_tables(url):
    upgrade_to_head(url)
    database = Database.from_url(url)
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_with_full_sync_and_foreign_keys(url):
    upgrade_to_head(url)
    database = Database.from_url(url, busy_timeout_ms=1234)
    with database.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 1234


def test_audit_triggers_refuse_update_and_delete(url):
    upgrade_to_head(url)
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO audit_events (seq, event_id, occurred_at, action, result, prev_hash, hash) "
            "VALUES (1, 'e', '2025-01-01 00:00:00.000000', 'x', 'ok', 'p', 'h')"
        )
    for statement in ("UPDATE audit_events SET action = 'y'", "DELETE FROM audit_events"):
        with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(statement)


def test_seeding_is_idempotent(url):
    upgrade_to_head(url)
    database = Database.from_url(url)
    with database.write() as session:
        assert ensure_seeded(session) is not None
    with database.write() as session:
        assert ensure_seeded(session) is None
    with database.read() as session:
        assert [v.version for v in list_versions(session)] == [1]


def test_utc_datetime_round_trips_and_refuses_naive(url):
    upgrade_to_head(url)
    database = Database.from_url(url)
    column_type = UTCDateTime()
    aware = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    bound = column_type.process_bind_param(aware, database.engine.dialect)
    back = column_type.process_result_value(bound, database.engine.dialect)
    assert back == aware and back.tzinfo == timezone.utc
    with pytest.raises(ValueError, match="naive"):
        column_type.process_bind_param(datetime(2025, 1, 1), database.engine.dialect)
