"""Database plumbing of the operational store: engine, units of work, UTC timestamps, migrations.

Every write runs in a *unit of work* that takes the store's single write lock
when it begins, so writes are serialised and the audit hash chain never forks:

* SQLite: the driver's own transaction handling is switched off and every
  write transaction starts with ``BEGIN IMMEDIATE``; the file runs in WAL mode
  with ``synchronous=FULL`` (a committed write survives ``kill -9`` and power
  loss), ``foreign_keys=ON`` and a busy timeout.
* PostgreSQL: every write transaction first takes a transaction-scoped
  advisory lock (``pg_advisory_xact_lock``).

Read-only units of work (``Database.read``) take no write lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from features import clock
from serve.audit_key import AuditKeyFile, default_key_path

WRITE_LOCK_KEY = 0x43435054  # "CCPT": PostgreSQL advisory lock id of the store's write lock
_READ_ONLY_OPTION = "ccp_read_only"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_POOL_SIZE = 40
"""Kept SQLite connections: one per worker thread of the service's thread pool (40), so that concurrent
requests reuse connections instead of opening (and setting the pragmas of) new ones."""
SQLITE_POOL_OVERFLOW = 10


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC, from the engine's one clock (:mod:`features.clock`)."""
    return clock.now()


def to_utc(value: datetime | None) -> datetime | None:
    """``value`` converted to UTC (``None`` stays ``None``); ``ValueError`` for a naive value."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime where a timezone-aware one is required")
    return value.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    Values must be timezone-aware (naive values raise ``ValueError``); they are
    stored in UTC and always read back timezone-aware in UTC, with microseconds.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def is_sqlite(url: str) -> bool:
    """Whether ``url`` is an SQLite URL."""
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(database_url: str, *, busy_timeout_ms: int = 5000) -> Engine:
    """Create the SQLAlchemy engine of the store, with the pragmas and locking described in the module.

    For SQLite the database file's directory is created when missing.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": busy_timeout_ms / 1000}, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_OVERFLOW
    )

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


class Database:
    """The store's engine and its units of work.

    Parameters
    ----------
    engine
        An engine made by :func:`make_engine`.
    audit_key
        The file of the key of the audit chain (read when first needed); every
        session carries it as ``session.info["audit_key"]``. Default: the
        :func:`serve.audit_key.default_key_path` of the engine's URL.
    """

    def __init__(self, engine: Engine, *, audit_key: AuditKeyFile | None = None) -> None:
        self.engine = engine
        self.audit_key = audit_key or AuditKeyFile(default_key_path(engine.url.render_as_string(hide_password=False)))
        info = {"audit_key": self.audit_key}
        self._write_sessions = sessionmaker(engine, expire_on_commit=False, info=info)
        self._read_sessions = sessionmaker(
            engine.execution_options(**{_READ_ONLY_OPTION: True}), expire_on_commit=False, info=info
        )

    @classmethod
    def from_url(cls, database_url: str, *, busy_timeout_ms: int = 5000, audit_key_file: Path | None = None) -> Database:
        """Open the store at ``database_url`` (no migration is run); ``audit_key_file`` as in the class."""
        key = AuditKeyFile(audit_key_file or default_key_path(database_url))
        return cls(make_engine(database_url, busy_timeout_ms=busy_timeout_ms), audit_key=key)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write unit of work: holds the store's write lock from its start; commits on success.

        The transaction (and the lock) begins before the body runs, so any
        timestamp taken inside the body is later than every committed write.
        The body's changes are durable once the ``with`` block exits normally.
        """
        with self._write_sessions() as session, session.begin():
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK_KEY})
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (no write lock); rolled back at the end."""
        with self._read_sessions() as session:
            yield session

    def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            with self.read() as session:
                session.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - readiness is a boolean, the cause is logged by the caller
            return False

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def alembic_config(database_url: str | None = None, *, connection: Any = None) -> Any:
    """An ``alembic.config.Config`` for the shipped migrations; no ``alembic.ini`` is read.

    The URL (or an open connection) is handed to ``env.py`` through
    ``config.attributes``, never through the ini parser (no ``%`` escaping).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(database_url: str, *, busy_timeout_ms: int = 5000) -> None:
    """Migrate the store at ``database_url`` to the newest schema (idempotent)."""
    from alembic import command

    engine = make_engine(database_url, busy_timeout_ms=busy_timeout_ms)
    try:
        with engine.connect() as connection:
            command.upgrade(alembic_config(database_url, connection=connection), "head")
            connection.commit()
    finally:
        engine.dispose()
