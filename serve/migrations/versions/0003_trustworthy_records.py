"""Issue-10 trust: list direction, current/superseded lists, list idempotency, port-scoped outcome duplicates, audit lookups.

- ``inspection_lists``: ``direction`` (``IMPORT`` for existing lists), ``supersedes`` (the list this one
  replaced as the current list of its port, date and direction; each list is superseded at most once),
  ``supersede_reason``, ``idempotency_key`` + ``request_sha256`` (unique per creating key).
- ``outcomes``: the duplicate check (manifest, exam type, inspection time) is per port.
- ``audit_events``: index on (object_type, object_id) so a fetch finds a record's creation seal.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("inspection_lists", sa.Column("direction", sa.String(16), nullable=False, server_default="IMPORT"))
    op.add_column("inspection_lists", sa.Column("supersedes", sa.String(36), nullable=True))
    op.add_column("inspection_lists", sa.Column("supersede_reason", sa.String(300), nullable=True))
    op.add_column("inspection_lists", sa.Column("idempotency_key", sa.String(128), nullable=True))
    op.add_column("inspection_lists", sa.Column("request_sha256", sa.String(64), nullable=True))
    op.create_index("ix_inspection_lists_current", "inspection_lists", ["port", "list_date", "direction"])
    op.create_index("uq_inspection_lists_supersedes", "inspection_lists", ["supersedes"], unique=True)
    op.create_index("uq_inspection_lists_idempotency", "inspection_lists", ["created_by", "idempotency_key"], unique=True)
    with op.batch_alter_table("outcomes", recreate="auto") as batch:
        batch.drop_constraint("uq_outcomes_natural_key", type_="unique")
        batch.create_unique_constraint("uq_outcomes_natural_key", ["port", "manifest_id", "exam_type", "inspected_at"])
    op.create_index("ix_audit_events_object", "audit_events", ["object_type", "object_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_object", table_name="audit_events")
    with op.batch_alter_table("outcomes", recreate="auto") as batch:
        batch.drop_constraint("uq_outcomes_natural_key", type_="unique")
        batch.create_unique_constraint("uq_outcomes_natural_key", ["manifest_id", "exam_type", "inspected_at"])
    op.drop_index("uq_inspection_lists_idempotency", table_name="inspection_lists")
    op.drop_index("uq_inspection_lists_supersedes", table_name="inspection_lists")
    op.drop_index("ix_inspection_lists_current", table_name="inspection_lists")
    with op.batch_alter_table("inspection_lists") as batch:
        for column in ("request_sha256", "idempotency_key", "supersede_reason", "supersedes", "direction"):
            batch.drop_column(column)
