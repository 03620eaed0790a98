"""List directions on amendments and outcomes.

- ``list_amendments.direction``: the direction of the amended list; existing amendments take their list's
  (``IMPORT`` when the list has none).
- ``outcomes.direction``: the direction of the list or population the exam belongs to; existing outcomes are
  ``IMPORT`` (their seals still verify: :data:`serve.seals.SEALED_OMITTED_AT_DEFAULT`).

Each column is added only when missing, so the upgrade can run again over a database that has either
(SQLite and PostgreSQL alike).

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


def _has_column(table: str, column: str) -> bool:
    return column in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if not _has_column("list_amendments", "direction"):
        op.add_column("list_amendments", sa.Column("direction", sa.String(16), nullable=False, server_default="IMPORT"))
        op.execute(
            "UPDATE list_amendments SET direction = COALESCE("
            "(SELECT inspection_lists.direction FROM inspection_lists WHERE inspection_lists.id = list_amendments.list_id), 'IMPORT')"
        )
    if not _has_column("outcomes", "direction"):
        op.add_column("outcomes", sa.Column("direction", sa.String(16), nullable=False, server_default="IMPORT"))


def downgrade() -> None:
    for table in ("outcomes", "list_amendments"):
        if _has_column(table, "direction"):
            with op.batch_alter_table(table) as batch:
                batch.drop_column("direction")
