"""Officer amendments of served lists: additions and removals with a reason.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from serve.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "list_amendments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("list_id", sa.String(36), sa.ForeignKey("inspection_lists.id"), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("manifest_id", sa.String(64), nullable=False),
        sa.Column("container_number", sa.String(11), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("exam_type", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("list_id", "manifest_id", "action", name="uq_list_amendments_once"),
    )
    op.create_index("ix_list_amendments_list", "list_amendments", ["list_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_list_amendments_list", table_name="list_amendments")
    op.drop_table("list_amendments")
