"""List directions on amendments: ``list_amendments.direction`` (the direction of the amended list).

Existing amendments take their list's direction (``IMPORT`` when the list has none).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("list_amendments", sa.Column("direction", sa.String(16), nullable=False, server_default="IMPORT"))
    op.execute(
        "UPDATE list_amendments SET direction = COALESCE("
        "(SELECT inspection_lists.direction FROM inspection_lists WHERE inspection_lists.id = list_amendments.list_id), 'IMPORT')"
    )


def downgrade() -> None:
    with op.batch_alter_table("list_amendments") as batch:
        batch.drop_column("direction")
