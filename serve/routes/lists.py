"""Inspection lists: create for a port, fetch, page its deferred candidates, amend (officer), page a port's lists, export CSV.

An officer asking for another port's list, by any of these routes, gets the
same 404 as for a list that does not exist.

A response body is only ever built from a record verified against its content
hash. Bodies of stored lists (which never change) are built once and kept in
the app's :class:`~serve.store.lists.ServedListCache`; a fetch served from it
does not read the record again, so a record altered in the store afterwards
is never shown (the cached body is the verified original), is refused with a
500 by any process that has not cached it, and is named by
``targeting audit verify``. Every fetch is audited (the audit event commits
before anything is returned). A fetch served from the cache is one operation
of the group writer (:func:`check_cached_fetch`: a primary-key read of the
row's sealed columns, compared with the body's seal, and the audit event, in
the batch's transaction; no thread is held). Any other fetch reads and
verifies the record (possibly megabytes) in a read-only unit of work, never
under the store's write lock, and its audit event then goes through the group
writer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Path, Query
from fastapi.responses import Response
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from serve.db import utcnow
from serve.deps import AuditWriterDep, Caller, DatabaseDep, EngineHolderDep, ListBodiesDep, ListCreator, ListReader, PageDep, PortPath, WriterDep
from serve.schemas.common import PageInfo
from serve.schemas.lists import (
    AmendmentCreate,
    AmendmentList,
    AmendmentPublic,
    DeferredItemPublic,
    DeferredPage,
    InspectionListPublic,
    ListCreate,
    ListPage,
    ListSummary,
)
from serve.routes.outcomes import check_idempotency_key
from serve.store.outcomes import request_sha256
from serve.store.lists import (
    ServedBody,
    StoredListCorruptError,
    current_list,
    find_by_list_idempotency_key,
    successors_of,
    get_list,
    items_csv,
    lists_for_port,
    load_record,
    record_is_verbatim,
    store_list,
)
from serve.store.amendments import AmendmentRefusedError, AmendmentRequest, amend_list, amendments_of
from serve.seals import (
    SEALED_COLUMNS,
    SealMismatchError,
    amendment_seal_problems,
    list_creation_seals,
    list_seal_problem,
    record_digest,
    seal_detail,
    values_digest,
)
from serve.tables import ListAmendment, StoredList
from serve.store.rulesets import verified_current_ruleset
from serve.store.watchlist import verified_watchlist_frame_at
from targeting.engine import ModelUnavailableError, UnknownPortError
from targeting.lists import InspectionList, ListRequest, canonical_json, list_from_dict, list_to_dict

router = APIRouter(prefix="/v1", tags=["inspection-lists"])

IDEMPOTENCY_CLASH = "Idempotency-Key was already used with a different request body"
ListIdempotencyKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Optional, 1-128 of A-Za-z0-9._:- ; reuse it when retrying the same list request"),
]

ListIdPath = Annotated[uuid.UUID, Path()]
NOT_FOUND = "inspection list not found"


Include = Annotated[
    Literal["deferred"] | None,
    Query(description="`deferred` embeds every deferred candidate in the body (else `deferred` is null; see `.../deferred`)"),
]


def _succession(row: StoredList, superseded_by: str | None) -> dict[str, object]:
    """The direction and current/superseded fields of a list's bodies."""
    return {
        "direction": row.direction,
        "current": superseded_by is None,
        "superseded_by": superseded_by,
        "supersedes": row.supersedes,
        "supersede_reason": row.supersede_reason,
    }


def list_public(
    row: StoredList, record: InspectionList | dict, *, with_deferred: bool = False, superseded_by: str | None = None
) -> InspectionListPublic:
    """Response body of a stored list (``record`` as an :class:`InspectionList` or its :func:`list_to_dict`).

    The deferred candidates are embedded only ``with_deferred``; their count always is.
    """
    fields = dict(record if isinstance(record, dict) else list_to_dict(record))
    deferred = fields.pop("deferred")
    return InspectionListPublic(
        **{
            **fields,
            "id": row.id,
            "created_at": row.created_at,
            "created_by": row.created_by,
            "content_sha256": row.content_sha256,
            "deferred_count": len(deferred),
            "deferred": deferred if with_deferred else None,
            **_succession(row, superseded_by),
        }
    )


def _body_kind(include: str | None) -> str:
    """Key of a JSON body in the :class:`~serve.store.lists.ServedListCache`."""
    return "json+deferred" if include == "deferred" else "json"


def _json_body(row: StoredList, record: InspectionList | dict, kind: str, superseded_by: str | None = None) -> bytes:
    return list_public(row, record, with_deferred=kind == "json+deferred", superseded_by=superseded_by).model_dump_json().encode()


_JSON = "application/json"


def list_summary(row: StoredList, superseded_by: str | None = None) -> ListSummary:
    """Response body of a stored list without items."""
    return ListSummary(
        **_succession(row, superseded_by),
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
    port: PortPath,
    body: ListCreate,
    caller: ListCreator,
    database: DatabaseDep,
    holder: EngineHolderDep,
    bodies: ListBodiesDep,
    include: Include = None,
    idempotency_key: ListIdempotencyKeyHeader = None,
) -> Response:
    """Build ``date``'s list for ``port`` with the current rule set and watchlist, store it, return it.

    The body is the one ``GET /v1/inspection-lists/{id}`` returns (deferred
    candidates embedded only with ``?include=deferred``). The new list becomes
    the *current* list of its port, date and direction; the previous current
    one stays readable and names it in ``superseded_by`` (``supersede_reason``
    records why). With an ``Idempotency-Key`` (scoped to the API key), a retry
    with the same body returns the list created the first time (201, same id)
    and the same key with another body is 422.
    """
    audit = {"action": "list.create", "object_type": "inspection_list", "port": port}
    if not caller.can_access_port(port):
        raise _refuse(database, caller, status=404, result="not_found", detail=NOT_FOUND, **audit)
    key = None if idempotency_key is None else check_idempotency_key(idempotency_key)
    request_hash = request_sha256({"port": port, **body.model_dump(mode="json")})
    if key is not None:
        replayed = _replay_list(database, caller, key, request_hash, _body_kind(include), audit)
        if replayed is not None:
            return replayed
    engine = holder.require()
    try:  # the rule-set version and each watchlist entry in force are checked against their seals
        with database.write() as session:
            ruleset = verified_current_ruleset(session)
            watchlist_as_of = utcnow()
            watchlist = verified_watchlist_frame_at(session, watchlist_as_of)
    except SealMismatchError as exc:  # edited in the store or written behind the service: 500, the audit names each
        with database.write() as session:
            caller.audit(session, **audit, result="error", status_code=500, detail={"bad_records": [p.record for p in exc.problems[:20]]})
        raise
    request = ListRequest(port=port, list_date=body.date, capacity=body.capacity, exploration_share=body.exploration_share,
                          nii_capacity=body.nii_capacity, physical_capacity=body.physical_capacity, seed=body.seed, direction=body.direction,
                          integrity_share=body.integrity_share)
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
        if key is not None and find_by_list_idempotency_key(session, caller.key_id, key) is not None:
            raced = True  # a concurrent retry with the same key stored its list first: answer as a replay
        else:
            raced = False
            previous = current_list(session, port, body.date, body.direction)
            row = store_list(
                session, record, created_by=caller.key_id, watchlist_as_of=watchlist_as_of, record_json=record_json,
                direction=body.direction, supersedes=None if previous is None else previous.id,
                supersede_reason=None if previous is None else body.supersede_reason,
                idempotency_key=key, request_sha256=None if key is None else request_hash,
            )
            caller.audit(
                session,
                **{**audit, "object_id": row.id},
                model_version=record.model_version,
                status_code=201,
                detail={"content_sha256": row.content_sha256, "items": row.item_count, "ruleset_version": row.ruleset_version,
                        "mandatory_exceeds_capacity": row.mandatory_exceeds_capacity, "supersedes": row.supersedes,
                        **({} if key is None else {"idempotency_key": key}), **seal_detail(row)},
            )
    if raced:
        return _replay_list(database, caller, key, request_hash, _body_kind(include), audit)
    kind = _body_kind(include)
    content = _json_body(row, as_dict, kind)
    bodies.put(row, kind, content)
    return Response(content=content, status_code=201, media_type=_JSON)


def _replay_list(
    database: DatabaseDep, caller: Caller, key: str, request_hash: str, kind: str, audit: dict[str, str]
) -> Response | None:
    """The answer to a retried list creation with ``key``: the stored list (201), 422 for another body, ``None`` when the key is new."""
    with database.read() as session:
        row = find_by_list_idempotency_key(session, caller.key_id, key)
        if row is None:
            return None
        same = row.request_sha256 == request_hash
        if same:
            record = verified_record(session, row) or list_from_dict(json.loads(row.record_json))
            content = _json_body(row, record, kind, successors_of(session, [row.id]).get(row.id))
    if not same:
        raise _refuse(database, caller, status=422, result="invalid", detail=IDEMPOTENCY_CLASH, object_id=row.id, **audit)
    with database.write() as session:
        caller.audit(session, **{**audit, "action": "list.replay"}, object_id=row.id, status_code=201, detail={"idempotency_key": key})
    return Response(content=content, status_code=201, media_type=_JSON)


def _fetch(
    list_id: uuid.UUID,
    caller: Caller,
    database: DatabaseDep,
    writer: AuditWriterDep,
    action: str,
    cached: Callable[[str], ServedBody | None] = lambda list_id: None,
) -> tuple[StoredList | None, InspectionList | None, bytes | None, str | None]:
    """Find a list the caller may see, verify it and audit the fetch; 404 (audited) otherwise.

    The last element is the id of the list that superseded this one (``None`` while it is current);
    a cached body naming another successor is not used.

    Returns ``(None, None, body)`` when ``cached(list_id)`` has a body built
    earlier from this list's verified record and the stored row still has the
    digest of that record (one read of the row's metadata; the record text is
    not read). Every fetch thus checks the list, metadata included, against
    the seal of its creation audit event (:mod:`serve.seals`).
    Otherwise returns the row, the record when it had to be parsed to be
    verified (its stored text is not verbatim canonical JSON, see
    :func:`~serve.store.lists.record_is_verbatim`; ``None`` otherwise: callers
    parse it only when they need it), and ``None``. A record that fails its
    integrity check is audited as an error and raises
    :class:`~serve.store.lists.StoredListCorruptError` (a generic 500).

    The list is read and verified in a read-only unit of work (stored lists are
    never changed), so hashing a large record never holds the store's write
    lock; the audit event is then appended by the group-committing
    :class:`~serve.audit.AuditWriter`, and nothing is returned before it has
    committed.
    """
    object_id = str(list_id)
    corrupt: StoredListCorruptError | None = None
    row = record = None
    hit = cached(object_id)
    with database.read() as session:
        row = get_list(session, object_id, with_record=False)
        successor = successors_of(session, [object_id]).get(object_id)
        if hit is not None and hit.superseded_by != successor:
            hit = None  # the list was superseded since this body was built
        if hit is not None:
            port, model_version = hit.port, hit.model_version
            if caller.can_access_port(port) and (row is None or record_digest(row) != hit.seal):
                corrupt = StoredListCorruptError(f"stored list {object_id} no longer matches the record its creation audited")
        else:
            port, model_version = (row.port, row.model_version) if row is not None else (None, None)
            if row is not None and caller.can_access_port(row.port):
                try:
                    record = verified_record(session, row)
                except StoredListCorruptError as exc:
                    corrupt = exc
    visible = port is not None and caller.can_access_port(port)
    status = 500 if corrupt else 200 if visible else 404
    caller.audit_read(
        writer,
        action=action,
        object_type="inspection_list",
        object_id=object_id,
        port=port,
        model_version=model_version if visible else None,
        result="error" if corrupt else "ok" if visible else "not_found",
        status_code=status,
    )
    if corrupt is not None:
        raise corrupt
    if not visible:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return row, record, hit.body if hit is not None else None, successor


def verified_record(session, row: StoredList) -> InspectionList | None:  # noqa: ANN001 - Session
    """Check ``row`` against its creation seal and its content hash; the parsed record when it had to be parsed.

    Raises
    ------
    StoredListCorruptError
        When the metadata or the record differs from what its creation audited.
    """
    problem = list_seal_problem(session, row)
    if problem is not None:
        raise StoredListCorruptError(problem)
    return None if record_is_verbatim(row) else load_record(row)


def _cached_body(bodies: ListBodiesDep, kind: str) -> Callable[[str], ServedBody | None]:
    return lambda list_id: bodies.get(list_id, kind)


def _parsed(row: StoredList, record: InspectionList | None) -> InspectionList:
    """The record of a row :func:`_fetch` verified."""
    return record if record is not None else list_from_dict(json.loads(row.record_json))


def _csv_response(list_id: uuid.UUID, caller: Caller, database: DatabaseDep, writer: AuditWriterDep, bodies: ListBodiesDep) -> Response:
    row, record, content, successor = _fetch(list_id, caller, database, writer, "list.export_csv", _cached_body(bodies, "csv"))
    if content is None:
        content = items_csv(_parsed(row, record)).encode()
        bodies.put(row, "csv", content, successor)
    return Response(
        content=content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="inspection-list-{list_id}.csv"'},
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


@router.get("/inspection-lists/{list_id}", response_model=InspectionListPublic, name="get_inspection_list")
async def serve_inspection_list(
    list_id: ListIdPath, caller: ListReader, writer: WriterDep, bodies: ListBodiesDep, include: Include = None
) -> Response:
    """A stored list with its items and reasons; its deferred candidates with ``?include=deferred``."""
    kind = _body_kind(include)
    hit = bodies.get(str(list_id), kind)
    if hit is not None and caller.can_access_port(hit.port):
        # the common case, without a thread: one group-writer operation checks the row against the body's seal and audits
        verdict = await writer.run(lambda session: check_cached_fetch(session, caller, hit, "list.fetch"))
        if verdict == CACHED_BODY_SOUND:
            return Response(content=hit.body, media_type=_JSON)
        if verdict == CACHED_BODY_CORRUPT:
            raise StoredListCorruptError(f"stored list {hit.list_id} no longer matches the record its creation audited")
    return await run_in_threadpool(get_inspection_list, list_id, caller, writer.database, writer, bodies, include)


def get_inspection_list(
    list_id: uuid.UUID, caller: Caller, database: DatabaseDep, writer: AuditWriterDep, bodies: ListBodiesDep, include: str | None = None
) -> Response:
    """``GET /v1/inspection-lists/{list_id}`` read and verified in a read-only unit of work (blocking; also the pages' path)."""
    kind = _body_kind(include)
    row, record, content, successor = _fetch(list_id, caller, database, writer, "list.fetch", _cached_body(bodies, kind))
    if content is None:
        content = _json_body(row, _parsed(row, record), kind, successor)
        bodies.put(row, kind, content, successor)
    return Response(content=content, media_type=_JSON)


CACHED_BODY_SOUND = "sound"
CACHED_BODY_CORRUPT = "corrupt"
CACHED_BODY_STALE = "stale"


def check_cached_fetch(session: Session, caller: Caller, hit: ServedBody, action: str) -> str:
    """Check a cached body's list in ``session`` (a group-writer batch) and audit the fetch; a verdict, never an exception.

    :data:`CACHED_BODY_SOUND`: the stored row (every sealed column) still has
    the digest of the verified row the body was built from, and the list has
    the successor the body names; the fetch is audited as served (200).
    :data:`CACHED_BODY_CORRUPT`: the row was changed or deleted in the store;
    the fetch is audited as an error (500). :data:`CACHED_BODY_STALE`: the
    list was superseded since the body was built; nothing is audited (the
    caller serves the fetch the long way, which audits it). The check is one
    primary-key read of the row's sealed columns (not its record); it runs in
    the batch's write transaction, so the audit event and the answer commit
    together and no thread is held for the read. Fetches of the same list in
    one batch share that read (one transaction sees one row; no write
    operation changes a stored list).
    """
    checked = session.info.setdefault(_CHECKED_LISTS, {})
    state = checked.get(hit.list_id)
    if state is None:
        found = session.execute(_SEALED_LIST_ROW, {"list_id": hit.list_id}).first()
        state = checked[hit.list_id] = (
            (False, None, None) if found is None else (True, found.successor, values_digest("inspection_list", found._mapping))
        )
    exists, successor, digest = state
    if exists and successor != hit.superseded_by:
        return CACHED_BODY_STALE
    sound = exists and digest == hit.seal
    caller.audit(
        session,
        action=action,
        object_type="inspection_list",
        object_id=hit.list_id,
        port=hit.port,
        model_version=hit.model_version,
        result="ok" if sound else "error",
        status_code=200 if sound else 500,
    )
    return CACHED_BODY_SOUND if sound else CACHED_BODY_CORRUPT


def _sealed_list_row_statement() -> Select:
    """The sealed columns of one stored list (bound parameter ``list_id``) and the id of the list that superseded it."""
    lists = StoredList.__table__
    successors = lists.alias("successor")
    successor = select(func.max(successors.c.id)).where(successors.c.supersedes == lists.c.id).scalar_subquery()
    return select(*(lists.c[name] for name in SEALED_COLUMNS["inspection_list"]), successor.label("successor")).where(
        lists.c.id == bindparam("list_id")
    )


_SEALED_LIST_ROW = _sealed_list_row_statement()
_CHECKED_LISTS = "ccp.checked_lists"
"""Key of ``session.info``: ``{list id: (exists, successor, digest)}`` read by :func:`check_cached_fetch` in this batch."""


@router.get("/inspection-lists/{list_id}/deferred", response_model=DeferredPage)
def get_deferred_candidates(list_id: ListIdPath, caller: ListReader, database: DatabaseDep, writer: AuditWriterDep, page: PageDep) -> DeferredPage:
    """A page of a stored list's deferred candidates (cut by capacity), best score first, with their scores."""
    row, record, _, _ = _fetch(list_id, caller, database, writer, "list.fetch_deferred")
    deferred = _parsed(row, record).deferred
    chosen = deferred[page.offset : page.offset + page.limit]
    return DeferredPage(
        list_id=row.id,
        items=[DeferredItemPublic(**dataclasses.asdict(d)) for d in chosen],
        page=PageInfo(total=len(deferred), limit=page.limit, offset=page.offset),
    )


def amendment_public(row: ListAmendment) -> AmendmentPublic:
    """Response body of an amendment."""
    return AmendmentPublic(
        id=row.id, list_id=row.list_id, action=row.action, manifest_id=row.manifest_id, container_number=row.container_number,
        score=row.score, exam_type=row.exam_type, reason=row.reason, created_at=row.created_at, created_by=row.created_by,
        direction=row.direction,
    )


@router.post("/inspection-lists/{list_id}/amendments", status_code=201, response_model=AmendmentPublic)
def amend_inspection_list(list_id: ListIdPath, body: AmendmentCreate, caller: ListCreator, database: DatabaseDep) -> AmendmentPublic:
    """Add one of the list's deferred candidates (``ADD``) or remove a selected item (``REMOVE``), with a reason.

    The served list stays as it was generated; the amendment is recorded beside
    it with selection source ``OFFICER`` (record the exam's outcome with
    ``selection_source: OFFICER``). 422 when the manifest is not a deferred
    candidate (addition) or not selected (removal), 409 when it was already
    added or removed, 404 for another port's list.
    """
    audit = {"action": "list.amend", "object_type": "inspection_list", "object_id": str(list_id)}
    corrupt: StoredListCorruptError | None = None
    with database.read() as session:
        row = get_list(session, str(list_id))
        visible = row is not None and caller.can_access_port(row.port)
        if visible:
            try:
                record = verified_record(session, row) or load_record(row)
            except StoredListCorruptError as exc:
                corrupt = exc
    if not visible:
        raise _refuse(database, caller, status=404, result="not_found", detail=NOT_FOUND, **audit)
    audit["port"] = row.port
    if corrupt is not None:
        _refuse(database, caller, status=500, result="error", detail="stored list fails verification", **audit)
        raise corrupt
    request = AmendmentRequest(action=body.action, manifest_id=body.manifest_id, reason=body.reason, exam_type=body.exam_type)
    try:
        with database.write() as session:
            amendment = amend_list(session, row.id, record, request, actor=caller.key_id)
            caller.audit(
                session, **audit, model_version=row.model_version, status_code=201,
                detail={"amendment": amendment.action, "manifest_id": amendment.manifest_id, "reason": amendment.reason, **seal_detail(amendment)},
            )
            return amendment_public(amendment)
    except AmendmentRefusedError as exc:
        status, result = (409, "conflict") if exc.conflict else (422, "invalid")
        raise _refuse(database, caller, status=status, result=result, detail=str(exc), **audit) from None


@router.get("/inspection-lists/{list_id}/amendments", response_model=AmendmentList)
def get_amendments(list_id: ListIdPath, caller: ListReader, database: DatabaseDep, writer: AuditWriterDep) -> AmendmentList:
    """The officers' additions to and removals from a served list, oldest first."""
    problems = []
    with database.read() as session:
        row = get_list(session, str(list_id), with_record=False)
        visible = row is not None and caller.can_access_port(row.port)
        amendments = amendments_of(session, str(list_id)) if visible else []
        if amendments:  # each checked against its seal in the list's list.amend events, as outcome exports are
            problems = amendment_seal_problems(session, str(list_id), amendments)
    audit = {"action": "list.amendments", "object_type": "inspection_list", "object_id": str(list_id), "port": row.port if row is not None else None}
    if problems:  # an amendment edited in the store or written behind the service: 500, the audit names it
        caller.audit_read(writer, **audit, result="error", status_code=500, detail={"bad_records": [p.record for p in problems[:20]]})
        raise SealMismatchError("list_amendment", problems)
    caller.audit_read(writer, **audit, result="ok" if visible else "not_found", status_code=200 if visible else 404)
    if not visible:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return AmendmentList(list_id=str(list_id), items=[amendment_public(a) for a in amendments])



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
    rows, total, summaries, unverified = [], 0, [], []
    if visible:
        with database.read() as session:
            rows, total = lists_for_port(session, port, list_date=date, limit=page.limit, offset=page.offset)
            successors = successors_of(session, [r.id for r in rows])
            sealed = list_creation_seals(session, [r.id for r in rows])
            unverified = [r.id for r in rows if sealed.get(r.id) != record_digest(r)]  # never listed: audit verify names them
            summaries = [list_summary(r, successors.get(r.id)) for r in rows if r.id not in unverified]
    caller.audit_read(
        writer,
        action="list.search",
        object_type="inspection_list",
        port=port,
        result=("error" if unverified else "ok") if visible else "not_found",
        status_code=200 if visible else 404,
        detail={"date": None if date is None else date.isoformat(), "returned": len(summaries), "unverified": unverified},
    )
    if not visible:
        raise HTTPException(status_code=404, detail=NOT_FOUND)
    return ListPage(items=summaries, page=PageInfo(total=total, limit=page.limit, offset=page.offset))
