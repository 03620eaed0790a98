"""Initial schema: keys, audit trail, rule sets, rule profiles, watchlist, inspection lists, outcomes.

Revision ID: 0001
Revises:
Create Date: 2025-11-25

The audit trail is append-only: triggers abort UPDATE and DELETE on
``audit_events`` (SQLite and PostgreSQL). This migration cannot be reverted
(reverting would destroy the audit trail).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from serve.db import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
)
_POSTGRES_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("ports", sa.JSON(), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("port", sa.String(5), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=True),
        sa.Column("object_id", sa.String(128), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor"])
    op.create_index("ix_audit_events_action", "audit_events", ["action"])
    op.create_table(
        "ruleset_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("change", sa.String(200), nullable=False),
        sa.Column("ruleset_hash", sa.String(64), nullable=False),
        sa.Column("rules_json", sa.Text(), nullable=False),
    )
    op.create_table(
        "rule_profiles",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_to", UTCDateTime(), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("port", sa.String(5), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_in_version", sa.Integer(), sa.ForeignKey("ruleset_versions.version"), nullable=False),
        sa.Column("expired_at", UTCDateTime(), nullable=True),
        sa.Column("expired_by", sa.String(64), nullable=True),
        sa.Column("expired_in_version", sa.Integer(), sa.ForeignKey("ruleset_versions.version"), nullable=True),
    )
    op.create_index("ix_rule_profiles_code", "rule_profiles", ["code"])
    op.create_table(
        "watchlist_entries",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("issuing_unit", sa.String(100), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_to", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("expired_at", UTCDateTime(), nullable=True),
        sa.Column("expired_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_watchlist_entries_created_at", "watchlist_entries", ["created_at"])
    op.create_table(
        "inspection_lists",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("port", sa.String(5), nullable=False),
        sa.Column("list_date", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("ruleset_version", sa.Integer(), sa.ForeignKey("ruleset_versions.version"), nullable=False),
        sa.Column("watchlist_as_of", UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("mandatory_exceeds_capacity", sa.Boolean(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("record_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_inspection_lists_port_date", "inspection_lists", ["port", "list_date"])
    op.create_table(
        "outcomes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("api_key_id", sa.String(16), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_json", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("manifest_id", sa.String(64), nullable=False),
        sa.Column("container_number", sa.String(11), nullable=False),
        sa.Column("port", sa.String(5), nullable=False),
        sa.Column("inspected_at", UTCDateTime(), nullable=False),
        sa.Column("exam_type", sa.String(16), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("seizure_category", sa.String(32), nullable=True),
        sa.Column("quantity_kg", sa.Float(), nullable=True),
        sa.Column("concealment_method", sa.String(200), nullable=True),
        sa.Column("seal_status", sa.String(16), nullable=False),
        sa.Column("examiner", sa.String(64), nullable=False),
        sa.Column("selection_source", sa.String(16), nullable=False),
        sa.UniqueConstraint("api_key_id", "idempotency_key", name="uq_outcomes_idempotency"),
        sa.UniqueConstraint("manifest_id", "exam_type", "inspected_at", name="uq_outcomes_natural_key"),
    )
    op.create_index("ix_outcomes_port_inspected_at", "outcomes", ["port", "inspected_at"])

    dialect = op.get_bind().dialect.name
    triggers = _SQLITE_TRIGGERS if dialect == "sqlite" else _POSTGRES_TRIGGERS if dialect == "postgresql" else ()
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    raise RuntimeError("the initial migration cannot be reverted: it would destroy the audit trail")
