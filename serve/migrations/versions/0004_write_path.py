"""Write path: aggregated authentication failures (one row per client address and UTC minute).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from serve.db import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_failure_counts",
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("minute", UTCDateTime(), primary_key=True),
        sa.Column("missing", sa.BigInteger(), nullable=False),
        sa.Column("invalid", sa.BigInteger(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("auth_failure_counts")
