"""Schemas of audit events and chain verification."""

from __future__ import annotations

from datetime import datetime

from serve.schemas.common import OutputModel


class AuditEventPublic(OutputModel):
    """One audit event (``detail`` is the stored canonical JSON text)."""

    seq: int
    event_id: str
    occurred_at: datetime
    actor: str | None
    role: str | None
    port: str | None
    action: str
    object_type: str | None
    object_id: str | None
    model_version: str | None
    request_id: str | None
    result: str
    status_code: int | None
    detail: str | None
    prev_hash: str
    hash: str


class AuditPage(OutputModel):
    """Events in ``seq`` order after a cursor; ``next_after`` is the cursor of the next page (``None`` at the end)."""

    items: list[AuditEventPublic]
    next_after: int | None


class RecordProblemPublic(OutputModel):
    """A sealed record that fails verification (``record`` is ``<type>:<id>``)."""

    record: str
    problem: str


class ChainVerification(OutputModel):
    """Result of verifying the keyed audit chain and every sealed record."""

    ok: bool
    rows_checked: int
    head_hash: str
    first_bad_seq: int | None
    problem: str | None
    records_checked: dict[str, int] = {}
    bad_records: list[RecordProblemPublic] = []
