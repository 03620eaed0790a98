"""Calibrated risk bands on served lists.

No schema change: a list's calibrated probabilities, risk bands and calibrator hash
(``risk_probability``, ``risk_band`` per item and deferred candidate, ``calibrator_sha256``) live
inside the already-sealed record JSON (``stored_lists.record_json``, covered by ``content_sha256``
and its seal), so no column, seal-list entry or backfill is needed; lists stored before keep their
JSON and hash (the fields are omitted when unset, see ``targeting.lists.OMITTED_WHEN_NONE``). The
revision stays in the chain as a deliberate no-op.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
