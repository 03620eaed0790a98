"""Watchlist entries: everyone authenticated may list them; only admins create and expire them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from serve.deps import AuditWriterDep, DatabaseDep, PageDep, WatchlistReader, WatchlistWriter
from serve.schemas.common import PageInfo
from serve.seals import SealMismatchError, seal_detail, watchlist_seal_problems
from serve.schemas.watchlist import AlertId, WatchlistEntryCreate, WatchlistEntryPublic, WatchlistPage
from serve.store.watchlist import (
    NewEntry,
    WatchlistConflictError,
    WatchlistNotFoundError,
    add_entry,
    count_entries,
    expire_entry,
    list_entries,
)
from serve.tables import WatchlistEntry

router = APIRouter(prefix="/v1", tags=["watchlist"])


def entry_public(row: WatchlistEntry) -> WatchlistEntryPublic:
    """Response body of a stored entry."""
    return WatchlistEntryPublic(
        alert_id=row.alert_id,
        kind=row.kind,
        value=row.value,
        reason=row.reason,
        issuing_unit=row.issuing_unit,
        severity=row.severity,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        created_at=row.created_at,
        created_by=row.created_by,
        expired_at=row.expired_at,
        expired_by=row.expired_by,
        in_force=row.expired_at is None,
    )


@router.get("/watchlist", response_model=WatchlistPage)
def get_watchlist(
    caller: WatchlistReader,
    database: DatabaseDep,
    writer: AuditWriterDep,
    page: PageDep,
    include_expired: Annotated[bool, Query()] = False,
) -> WatchlistPage:
    """A page of watchlist entries ordered by alert id (in force only, unless ``include_expired``), each checked against its seal.

    An entry edited in the store or inserted there behind the service answers 500 and the audit event names it.
    """
    with database.read() as session:
        rows = list_entries(session, include_expired=include_expired, limit=page.limit, offset=page.offset)
        total = count_entries(session, include_expired=include_expired)
        problems = watchlist_seal_problems(session, rows)
    if problems:
        caller.audit_read(writer, action="watchlist.read", object_type="watchlist_entry", result="error", status_code=500,
                          detail={"bad_records": [p.record for p in problems[:20]]})
        raise SealMismatchError("watchlist_entry", problems)
    return WatchlistPage(items=[entry_public(r) for r in rows], page=PageInfo(total=total, limit=page.limit, offset=page.offset))


@router.post("/watchlist", status_code=201, response_model=WatchlistEntryPublic)
def create_watchlist_entry(body: WatchlistEntryCreate, caller: WatchlistWriter, database: DatabaseDep) -> WatchlistEntryPublic:
    """Create an entry (ALERTS contract; the value is checked against its kind)."""
    entry = NewEntry(**body.model_dump())
    error: tuple[int, str] | None = None
    public = None
    with database.write() as session:
        try:
            row = add_entry(session, entry, actor=caller.key_id)
        except WatchlistConflictError as exc:
            error = (409, str(exc))
        except ValueError as exc:
            error = (422, str(exc))
        if error is None:
            public = entry_public(row)
        caller.audit(
            session,
            action="watchlist.create",
            object_type="watchlist_entry",
            object_id=body.alert_id if public is None else public.alert_id,
            result="ok" if error is None else "conflict" if error[0] == 409 else "invalid",
            status_code=201 if error is None else error[0],
            detail=None if public is None else {"kind": public.kind, "severity": public.severity, **seal_detail(row)},
        )
    if error is not None:
        raise HTTPException(status_code=error[0], detail=error[1])
    return public


@router.post("/watchlist/{alert_id}/expire", response_model=WatchlistEntryPublic)
def expire_watchlist_entry(
    alert_id: Annotated[AlertId, Path()], caller: WatchlistWriter, database: DatabaseDep
) -> WatchlistEntryPublic:
    """Take an entry out of force from now on (it stays listed with ``include_expired``)."""
    with database.write() as session:
        try:
            row = expire_entry(session, alert_id, actor=caller.key_id)
        except WatchlistNotFoundError:
            row = None
        caller.audit(
            session,
            action="watchlist.expire",
            object_type="watchlist_entry",
            object_id=alert_id,
            result="ok" if row is not None else "not_found",
            status_code=200 if row is not None else 404,
            detail=None if row is None else seal_detail(row),
        )
        public = None if row is None else entry_public(row)
    if public is None:
        raise HTTPException(status_code=404, detail="no watchlist entry in force with this id")
    return public
