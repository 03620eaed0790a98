"""Inspection lists: create for a port, fetch, page a port's lists, export CSV.

An officer asking for another port's list, by any of these routes, gets the
same 404 as for a list that does not exist.

Every fetch verifies the stored record against its content hash, is audited
(the audit event commits before anything is returned) and never holds the
store's write lock while it reads: reads run in read-only units of work and
their audit events go through the group-committing
:class:`~serve.audit.AuditWriter`. Response bodies of stored lists (which
never change) are built once and kept in the app's
:class:`~serve.store.lists.ServedListCache`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import AfterValidator

from serve.db import utcnow
from serve.deps import AuditWriterDep, Caller, DatabaseDep, EngineHolderDep, ListBodiesDep, ListCreator, ListReader, PageDep
from serve.schemas.common import PageInfo
from serve.schemas.lists import InspectionListPublic, ListCreate, ListPage, ListSummary
from serve.store.lists import (
    StoredListCorruptError,
    get_list,
    items_csv,
    lists_for_port,
    load_record,
    record_is_verbatim,
    store_list,
)
from serve.tables import StoredList
from serve.store.rulesets import current_ruleset
from serve.store.watchlist import watchlist_frame_at
from serve.validators import normalize_locode
from targeting.engine import ModelUnavailableError, UnknownPortError
from targeting.lists import InspectionList, ListRequest, canonical_json, list_from_dict, list_to_dict

router = APIRouter(prefix="/v1", tags=["inspection-lists"])

PortPath = Annotated[str, Path(min_length=5, max_length=16), AfterValidator(normalize_locode)]
ListIdPath = Annotated[uuid.UUID, Path()]
NOT_FOUND = "inspection list not found"


def list_public(row: StoredList, record: InspectionList | dict) -> InspectionListPublic:
    """Response body of a stored list (``record`` as an :class:`InspectionList` or its :func:`list_to_dict`)."""
    return InspectionListPublic(
        id=row.id,
        created_at=row.created_at,
        created_by=row.created_by,
        content_sha256=row.content_sha256,
        **(record if isinstance(record, dict) else list_to_dict(record)),
    )


def _json_body(row: StoredList, record: InspectionList | dict) -> bytes:
    return list_public(row, record).model_dump_json().encode()


_JSON = "application/json"


def list_summary(row: StoredList) -> ListSummary:
    """Response body of a stored list without items."""
    return ListSummary(
        id=row.id,
        port=row.port,
        list_date=row.list_date,
        created_at=row.created_at,
        created_by=row.created_by,
        ruleset_version=row.ruleset_version,
        model_name=row.model_name,
        model_version=row.model_version,
        content_sha256=row.content_sha256,
        item_count=row.item_count,
        mandatory_exceeds_capacity=row.mandatory_exceeds_capacity,
    )


def _refuse(database: DatabaseDep, caller: Caller, *, action: str, status: int, result: str, detail: str, **fields: object) -> HTTPException:
    with database.write() as session:
        caller.audit(session, action=action, result=result, status_code=status, **fields)
    return HTTPException(status_code=status, detail=detail)


@router.post("/ports/{port}/inspection-lists", status_code=201, response_model=InspectionListPublic)
def create_list(
    port: PortPath, body: ListCreate, caller: ListCreator, database: DatabaseDep, holder: EngineHolderDep, bodies: ListBodiesDep
) -> Response:
    """Build today's (or ``date``'s) list for ``port`` with the current rule set and watchlist, store it, return it."""
    audit = {"action": "list.create", "object_type": "inspection_list", "port": port}
    if not caller.can_access_port(port):
        raise _refuse(database, caller, status=404, result="not_found", detail=NOT_FOUND, **audit)
    engine = holder.require()
    with database.write() as session:
        ruleset = current_ruleset(session)
        watchlist_as_of = utcnow()
        watchlist = watchlist_frame_at(session, watchlist_as_of)
    request = ListRequest(
        port=port,
        list_date=body.date,
        capacity=body.capacity,
        exploration_share=body.exploration_share,
        nii_capacity=body.nii_capacity,
        physical_capacity=body.physical_capacity,
        seed=body.seed,
    )
    try:
        record = engine.build_list(request, ruleset=ruleset, watchlist=watchlist)
    except UnknownPortError:
        raise _refuse(database, caller, status=404, result="not_found", detail="unknown port", **audit) from None
    except ModelUnavailableError:
        raise
    except ValueError as exc:
        raise _refuse(database, caller, status=422, result="invalid", detail=str(exc), **audit) from None
    if record.port != port or record.ruleset_version != ruleset.version:
        raise RuntimeError("the engine returned a list for another port or rule set")
    as_dict = list_to_dict(record)
    record_json = canonical_json(as_dict)  # serialised before the write lock is taken
    with database.write() as session:
        row = store_list(session, record, created_by=caller.key_id, watchlist_as_of=watchlist_as_of, record_json=record_json)
        caller.audit(
            session,
            **{**audit, "object_id": row.id},
            model_version=record.model_version,
            status_code=201,
            detail={
                "content_sha256": row.content_sha256,
                "items": row.item_count,
                "ruleset_version": row.ruleset_version,
                "mandatory_exceeds_capacity": row.mandatory_exceeds_capacity,
            },
        )
    content = _json_body(row, as_dict)
    bodies.put(row, "json", content)
    return Response(content=content, status_code=201, media_type=_JSON)


def _fetch(list_id: uuid.UUID, caller: Caller, database: DatabaseDep, writer: AuditWriterDep, action: str) -> tuple[StoredList, InspectionList | None]:
    """Read a list the caller may see, verify it and audit the fetch; 404 (audited) otherwise.

    Returns the row and, when its stored text is not verbatim canonical JSON
    (see :func:`~serve.store.lists.record_is_verbatim`), the record parsed and
    verified the slow way; ``None`` for a verbatim record (callers parse it
    only when they need it). A record that fails its integrity check is
    audited as an error and raises
    :class:`~serve.store.lists.StoredListCorruptError` (a generic 500).

    The list is read and verified in a read-only unit of work (stored lists are
    never changed), so hashing a large record never holds the store's write
    lock; the audit event is then appended by the group-committing
    :class:`~serve.audit.AuditWriter`, and nothing is returned before it has
    committed.
    """
    object_id = str(list_id)
    corrupt: StoredListCorruptError | None = None
    record = None
    with database.read() as session:
        row = get_list(session, object_id)
        visible = row is not None and caller.can_access_port(row.port)
        if visible and not record_is_verbatim(row):
            try:
                record = load_record(row)
            except StoredListCorruptError as exc:
                corrupt = exc
    status = 500 if corrupt else 200 if visible else 404
    caller.audit_read(
        writer,
        action=action,
        object_type="inspection_list",
        object_id=object_id,
        port=row.port if row is not None else None,
        model_version=row.model_version if visible else None,
        result="error" if corrupt else "ok" if visible else "not_found",
        status_code=status,
    )
    if corrupt is not None:
        raise corrupt
    if not visible:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return row, record


def _parsed(row: StoredList, record: InspectionList | None) -> InspectionList:
    """The record of a row :func:`_fetch` verified."""
    return record if record is not None else list_from_dict(json.loads(row.record_json))


def _csv_response(list_id: uuid.UUID, caller: Caller, database: DatabaseDep, writer: AuditWriterDep, bodies: ListBodiesDep) -> Response:
    row, record = _fetch(list_id, caller, database, writer, "list.export_csv")
    content = bodies.get_or_build(row, "csv", lambda: items_csv(_parsed(row, record)).encode())
    return Response(
        content=content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="inspection-list-{row.id}.csv"'},
    )


_CSV_RESPONSES = {200: {"content": {"text/csv": {}}, "description": "CSV of the selected items"}}


@router.get("/inspection-lists/{list_id}.csv", response_class=Response, responses=_CSV_RESPONSES)
def export_list_csv(list_id: ListIdPath, caller: ListReader, database: DatabaseDep, writer: AuditWriterDep, bodies: ListBodiesDep) -> Response:
    """CSV of a list's items: rank, container, manifest id, score, source, exam type, selection probability, reasons."""
    return _csv_response(list_id, caller, database, writer, bodies)


@router.get("/inspection-lists/{list_id}/export.csv", response_class=Response, responses=_CSV_RESPONSES)
def export_list_csv_path(list_id: ListIdPath, caller: ListReader, database: DatabaseDep, writer: AuditWriterDep, bodies: ListBodiesDep) -> Response:
    """Same as ``GET /v1/inspection-lists/{list_id}.csv``."""
    return _csv_response(list_id, caller, database, writer, bodies)


@router.get("/inspection-lists/{list_id}", response_model=InspectionListPublic)
def get_inspection_list(list_id: ListIdPath, caller: ListReader, database: DatabaseDep, writer: AuditWriterDep, bodies: ListBodiesDep) -> Response:
    """A stored list with its items, reasons and deferred candidates."""
    row, record = _fetch(list_id, caller, database, writer, "list.fetch")
    content = bodies.get_or_build(row, "json", lambda: _json_body(row, _parsed(row, record)))
    return Response(content=content, media_type=_JSON)


@router.get("/ports/{port}/inspection-lists", response_model=ListPage)
def list_port_lists(
    port: PortPath,
    caller: ListReader,
    database: DatabaseDep,
    writer: AuditWriterDep,
    page: PageDep,
    date: Annotated[dt.date | None, Query(description="Only lists for this date (YYYY-MM-DD)")] = None,
) -> ListPage:
    """A page of ``port``'s lists, newest first (404 for another port's officer)."""
    visible = caller.can_access_port(port)
    rows, total = [], 0
    if visible:
        with database.read() as session:
            rows, total = lists_for_port(session, port, list_date=date, limit=page.limit, offset=page.offset)
            summaries = [list_summary(r) for r in rows]
    caller.audit_read(
        writer,
        action="list.search",
        object_type="inspection_list",
        port=port,
        result="ok" if visible else "not_found",
        status_code=200 if visible else 404,
        detail={"date": None if date is None else date.isoformat(), "returned": len(rows)},
    )
    if not visible:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return ListPage(items=summaries, page=PageInfo(total=total, limit=page.limit, offset=page.offset))
