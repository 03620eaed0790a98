"""The audit trail for auditors and admins: filtered, cursor-paginated events and chain verification."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from serve.audit import verify_chain
from serve.deps import AuditReader, DatabaseDep, SettingsDep, IsoDateTimeQuery
from serve.schemas.audit import AuditEventPublic, AuditPage, ChainVerification, RecordProblemPublic
from serve.seals import verify_records
from serve.settings import MAX_PAGE_SIZE_CEILING
from serve.tables import AuditEvent

router = APIRouter(prefix="/v1/audit", tags=["audit"])

FilterText = Annotated[str | None, Query(min_length=1, max_length=128)]


def event_public(row: AuditEvent) -> AuditEventPublic:
    """Response body of an audit row."""
    return AuditEventPublic.model_validate({name: getattr(row, name) for name in AuditEventPublic.model_fields})


@router.get("/events", response_model=AuditPage)
def get_events(
    caller: AuditReader,
    database: DatabaseDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, description="Return events with seq greater than this cursor")] = 0,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE_SIZE_CEILING)] = None,
    action: FilterText = None,
    actor: FilterText = None,
    object_type: FilterText = None,
    object_id: FilterText = None,
    port: Annotated[str | None, Query(min_length=5, max_length=5)] = None,
    result: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    since: Annotated[IsoDateTimeQuery | None, Query(description="Only events at or after this instant (ISO 8601 with time zone).")] = None,
    until: Annotated[IsoDateTimeQuery | None, Query(description="Only events before this instant (ISO 8601 with time zone).")] = None,
) -> AuditPage:
    """Events in chain order after ``after``, filtered by the given fields (``since`` inclusive, ``until`` exclusive)."""
    if limit is not None and limit > settings.max_page_size:
        raise HTTPException(status_code=422, detail=f"limit must be at most {settings.max_page_size}")
    page_size = limit or settings.default_page_size
    query = select(AuditEvent).where(AuditEvent.seq > after)
    for column, value in (
        (AuditEvent.action, action),
        (AuditEvent.actor, actor),
        (AuditEvent.object_type, object_type),
        (AuditEvent.object_id, object_id),
        (AuditEvent.port, port),
        (AuditEvent.result, result),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(AuditEvent.occurred_at >= since)
    if until is not None:
        query = query.where(AuditEvent.occurred_at < until)
    with database.write() as session:
        rows = session.scalars(query.order_by(AuditEvent.seq).limit(page_size)).all()
        items = [event_public(r) for r in rows]
        caller.audit(
            session,
            action="audit.read",
            object_type="audit_events",
            status_code=200,
            detail={"after": after, "returned": len(items)},
        )
    next_after = items[-1].seq if len(items) == page_size else None
    return AuditPage(items=items, next_after=next_after)


@router.get("/verify", response_model=ChainVerification)
def verify(caller: AuditReader, database: DatabaseDep) -> ChainVerification:
    """Recompute the keyed hash chain and name the first broken row, then check every sealed record and name each bad one.

    ``ok`` is true only when the chain is intact and no sealed record (list, outcome, amendment, watchlist entry,
    rule profile, rule-set version, key) differs from, lacks or outlived its seal.
    """
    with database.read() as session:
        outcome = verify_chain(session)
        counts, bad = verify_records(session)
    with database.write() as session:
        caller.audit(
            session,
            action="audit.verify",
            object_type="audit_events",
            result="ok" if outcome.ok and not bad else "error",
            status_code=200,
            detail={"rows_checked": outcome.rows_checked, "first_bad_seq": outcome.first_bad_seq, "bad_records": len(bad)},
        )
    return ChainVerification(
        **{**outcome.__dict__, "ok": outcome.ok and not bad},
        records_checked=counts,
        bad_records=[RecordProblemPublic(record=p.record, problem=p.problem) for p in bad],
    )
