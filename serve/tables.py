"""Tables of the operational store (SQLAlchemy 2 declarative mapping).

The schema is created by the Alembic migrations in ``serve/migrations``; these
classes must stay identical to it (a test compares them). Timestamps are
timezone-aware UTC (:class:`serve.db.UTCDateTime`). Nothing here uses
SQLite-only SQL: the same queries run on PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from serve.db import UTCDateTime

ID_LEN = 36
KEY_ID_LEN = 16
ACTOR_LEN = 64
HASH_LEN = 64
LOCODE_LEN = 5


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class ApiKey(Base):
    """A bearer API key: only its sha256 is stored; ``id`` is the non-secret prefix shown to people."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(KEY_ID_LEN), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(HASH_LEN), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    ports: Mapped[list[str]] = mapped_column(JSON)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LEN))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEvent(Base):
    """One row of the append-only, hash-chained audit trail.

    ``hash = sha256(prev_hash + canonical JSON of the other fields)``; ``seq``
    numbers rows 1, 2, ... in chain order. UPDATE and DELETE are refused by
    database triggers.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str | None] = mapped_column(String(ACTOR_LEN), index=True)
    role: Mapped[str | None] = mapped_column(String(32))
    port: Mapped[str | None] = mapped_column(String(LOCODE_LEN))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(128))
    model_version: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    hash: Mapped[str] = mapped_column(String(HASH_LEN), unique=True)

    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id"),)


class RuleSetVersion(Base):
    """An immutable numbered snapshot of the active rule profiles."""

    __tablename__ = "ruleset_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LEN))
    change: Mapped[str] = mapped_column(String(200))
    ruleset_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    rules_json: Mapped[str] = mapped_column(Text)


class RuleProfileRow(Base):
    """A rule profile as created through the store; expiring it sets ``expired_at`` (rows are never deleted)."""

    __tablename__ = "rule_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    expression: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    level: Mapped[str] = mapped_column(String(16))
    port: Mapped[str | None] = mapped_column(String(LOCODE_LEN))
    weight: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LEN))
    created_in_version: Mapped[int] = mapped_column(ForeignKey("ruleset_versions.version"))
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expired_by: Mapped[str | None] = mapped_column(String(ACTOR_LEN))
    expired_in_version: Mapped[int | None] = mapped_column(ForeignKey("ruleset_versions.version"))


class WatchlistEntry(Base):
    """A watchlist entry (ALERTS contract columns) plus its store history."""

    __tablename__ = "watchlist_entries"

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(500))
    issuing_unit: Mapped[str] = mapped_column(String(100))
    severity: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_by: Mapped[str] = mapped_column(String(ACTOR_LEN))
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expired_by: Mapped[str | None] = mapped_column(String(ACTOR_LEN))


class StoredList(Base):
    """A served inspection list: its full record as canonical JSON, and what it was built from."""

    __tablename__ = "inspection_lists"
    __table_args__ = (
        Index("ix_inspection_lists_port_date", "port", "list_date"),
        Index("ix_inspection_lists_current", "port", "list_date", "direction"),
        Index("uq_inspection_lists_supersedes", "supersedes", unique=True),
        Index("uq_inspection_lists_idempotency", "created_by", "idempotency_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    port: Mapped[str] = mapped_column(String(LOCODE_LEN))
    list_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LEN))
    ruleset_version: Mapped[int] = mapped_column(ForeignKey("ruleset_versions.version"))
    watchlist_as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(64))
    content_sha256: Mapped[str] = mapped_column(String(HASH_LEN))
    mandatory_exceeds_capacity: Mapped[bool] = mapped_column(Boolean)
    item_count: Mapped[int] = mapped_column(Integer)
    record_json: Mapped[str] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(String(16), server_default="IMPORT")
    supersedes: Mapped[str | None] = mapped_column(String(ID_LEN))
    """The list this one replaced as the current list of its port, date and direction."""
    supersede_reason: Mapped[str | None] = mapped_column(String(300))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_sha256: Mapped[str | None] = mapped_column(String(HASH_LEN))


class ListAmendment(Base):
    """An officer's addition to or removal from a served list, with the reason (selection source ``OFFICER``).

    The served list itself never changes (its record is content-hashed and
    replayable); amendments are recorded beside it, at most one addition and
    one removal per manifest and list.
    """

    __tablename__ = "list_amendments"
    __table_args__ = (
        UniqueConstraint("list_id", "manifest_id", "action", name="uq_list_amendments_once"),
        Index("ix_list_amendments_list", "list_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    list_id: Mapped[str] = mapped_column(ForeignKey("inspection_lists.id"))
    action: Mapped[str] = mapped_column(String(8))
    manifest_id: Mapped[str] = mapped_column(String(64))
    container_number: Mapped[str] = mapped_column(String(11))
    score: Mapped[float] = mapped_column(Float)
    exam_type: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ACTOR_LEN))
    direction: Mapped[str] = mapped_column(String(16), server_default="IMPORT")
    """The direction of the amended list (IMPORT, TRANSSHIPMENT or EXPORT)."""


class OutcomeRow(Base):
    """An inspection outcome (INSPECTION_OUTCOMES contract columns) with its idempotency record."""

    __tablename__ = "outcomes"
    __table_args__ = (
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_outcomes_idempotency"),
        UniqueConstraint("port", "manifest_id", "exam_type", "inspected_at", name="uq_outcomes_natural_key"),
        Index("ix_outcomes_port_inspected_at", "port", "inspected_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_sha256: Mapped[str] = mapped_column(String(HASH_LEN))
    response_status: Mapped[int] = mapped_column(Integer)
    response_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    manifest_id: Mapped[str] = mapped_column(String(64))
    container_number: Mapped[str] = mapped_column(String(11))
    port: Mapped[str] = mapped_column(String(LOCODE_LEN))
    inspected_at: Mapped[datetime] = mapped_column(UTCDateTime())
    exam_type: Mapped[str] = mapped_column(String(16))
    result: Mapped[str] = mapped_column(String(16))
    seizure_category: Mapped[str | None] = mapped_column(String(32))
    quantity_kg: Mapped[float | None] = mapped_column(Float)
    concealment_method: Mapped[str | None] = mapped_column(String(200))
    seal_status: Mapped[str] = mapped_column(String(16))
    examiner: Mapped[str] = mapped_column(String(64))
    selection_source: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16), default="IMPORT", server_default="IMPORT")
    """The direction of the list or population the exam belongs to (IMPORT, TRANSSHIPMENT or EXPORT)."""


class AuthFailureCount(Base):
    """Failed authentications of one client address in one UTC minute (one row, updated as failures arrive).

    Written by :class:`serve.authfailures.AuthFailureCounter` (aggregated in
    memory, flushed through the group writer): a flood of 401s costs one
    row update per flush, not one fsynced audit row per request.
    """

    __tablename__ = "auth_failure_counts"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    missing: Mapped[int] = mapped_column(BigInteger)
    invalid: Mapped[int] = mapped_column(BigInteger)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebUser(Base):
    """A person who signs in to the web application (migration 0005); ``key_id`` is the API-key row their writes are recorded under."""

    __tablename__ = "web_users"

    username: Mapped[str] = mapped_column(String(14), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    ports: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(2))
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    disabled: Mapped[bool] = mapped_column(Boolean)
    failed_logins: Mapped[int] = mapped_column(Integer)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A signed-in session, by the sha256 of its token, with its CSRF token (migration 0005)."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_username", "username"),)

    token_sha256: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("web_users.username"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebSecret(Base):
    """A secret of the web application (the session-cookie signing key), created at first use (migration 0005)."""

    __tablename__ = "web_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
