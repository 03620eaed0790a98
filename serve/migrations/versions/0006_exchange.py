"""Intelligence exchange between units: messages, peers, outbox, inbox.

``exchange_messages``: one row per message and direction (IN received, OUT sent or drafted) with the
signed JSON as it travelled, its status and the exam result it led to; ``exchange_deliveries``: the durable
queue of outgoing messages per peer (attempts, delivery, refusal). See :mod:`serve.store.exchange`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from serve.db import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_messages",
        sa.Column("message_id", sa.String(80), primary_key=True),
        sa.Column("direction", sa.String(3), primary_key=True),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("sender", sa.String(32), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("tlp", sa.String(5), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("valid_from", UTCDateTime(), nullable=False),
        sa.Column("valid_to", UTCDateTime(), nullable=False),
        sa.Column("message_json", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(100), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("in_reply_to", sa.String(80), nullable=True),
        sa.Column("container_number", sa.String(11), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("exam_result", sa.String(16), nullable=True),
    )
    for column in ("sender", "status", "in_reply_to", "container_number"):
        op.create_index(f"ix_exchange_messages_{column}", "exchange_messages", [column])
    op.create_table(
        "exchange_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(80), nullable=False),
        sa.Column("peer", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(300), nullable=True),
        sa.UniqueConstraint("message_id", "peer", name="uq_exchange_deliveries_message_peer"),
    )
    op.create_index("ix_exchange_deliveries_message_id", "exchange_deliveries", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_exchange_deliveries_message_id", table_name="exchange_deliveries")
    op.drop_table("exchange_deliveries")
    for column in ("sender", "status", "in_reply_to", "container_number"):
        op.drop_index(f"ix_exchange_messages_{column}", table_name="exchange_messages")
    op.drop_table("exchange_messages")
