"""Inspection outcomes: idempotent, durable writes.

``POST /v1/inspection-outcomes`` needs an ``Idempotency-Key`` header (400
without one). The first request with a key stores the outcome and its exact
response; a retry with the same key and the same body gets that response
again (same status, same bytes); the same key with another body gets 422.
Keys are scoped to the API key that used them. The response is sent only
after the write has committed (SQLite ``synchronous=FULL``), so an
acknowledged outcome survives a crash.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated

import polars as pl
from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import Response
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from features.data.handling import DIRECTIONS, matching_outcomes
from serve.db import utcnow
from models.metrics import source_hit_rates
from serve.deps import AuditWriterDep, Caller, IsoDateQuery, DatabaseDep, ListReader, OutcomeWriter, PortPath, SettingsDep, WriterDep
from serve.schemas.common import ErrorBody, field_error
from serve.schemas.outcomes import DirectionHitRate, HitRateReport, OutcomeCreate, OutcomePublic, SourceHitRate
from serve.store.outcomes import (
    export_outcomes,
    find_by_idempotency_key,
    find_by_natural_key,
    insert_outcome_unless_taken,
    new_outcome_id,
    request_sha256,
)
from serve.seals import SealMismatchError, values_seal_detail
from serve.store.manifests import ManifestDirectory, manifest_directory
from targeting.lists import canonical_json

router = APIRouter(prefix="/v1", tags=["inspection-outcomes"])

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="1-128 of A-Za-z0-9._:- ; reuse it when retrying the same outcome"),
]


def check_idempotency_key(value: str | None) -> str:
    """The header value, or 400 when it is missing or malformed."""
    if value is None:
        raise HTTPException(status_code=400, detail="the Idempotency-Key header is required")
    if not IDEMPOTENCY_KEY_RE.match(value):
        raise HTTPException(status_code=400, detail="Idempotency-Key must be 1-128 of A-Za-z0-9._:-")
    return value


UNKNOWN_MANIFEST = "no manifest with this id is handled by the port"


def manifest_problem(directory: ManifestDirectory, body: OutcomeCreate) -> tuple[str, str] | None:
    """``(field, message)`` when the outcome does not name a manifest its port handles, in its direction, with that manifest's container.

    A manifest the port does not handle in the outcome's ``direction`` answers
    exactly like one that does not exist (no existence oracle, and the same
    answer for another direction of a manifest the port does handle); the
    container is compared only for a manifest the port handles that way.
    """
    manifest = directory.find(body.manifest_id)
    if manifest is None or body.direction not in manifest.handled_by(body.port):
        return "manifest_id", UNKNOWN_MANIFEST
    if manifest.container_number != body.container_number:
        return "container_number", "is not the container of this manifest"
    return None


def _hashed_request(payload: dict[str, object]) -> dict[str, object]:
    """The request (``body.model_dump(mode="json")``) as its idempotency hash covers it: ``direction`` only when not the default ``IMPORT``.

    Outcomes posted before they had a direction hash as they did then (a retry
    across the upgrade replays), and an explicit ``IMPORT`` is the same request
    as none.
    """
    if payload.get("direction") == "IMPORT":
        payload = {name: value for name, value in payload.items() if name != "direction"}
    return payload


_JSON_DATETIME = TypeAdapter(datetime)


def _outcome_response_json(payload: dict[str, object], outcome_id: str, created_at: datetime) -> str:
    """Canonical JSON of the :class:`OutcomePublic` of a stored outcome, from its request's JSON payload.

    Exactly ``canonical_json(OutcomePublic(id=..., created_at=..., **fields).model_dump(mode="json"))``
    (the response fields are the request's, plus ``id`` and ``created_at``), without building the model.
    """
    return canonical_json({**payload, "id": outcome_id, "created_at": _JSON_DATETIME.dump_python(created_at, mode="json")})


def _json_response(status: int, body: str) -> Response:
    return Response(content=body, status_code=status, media_type="application/json")


@router.post(
    "/inspection-outcomes",
    status_code=201,
    response_model=OutcomePublic,
    responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def create_outcome(
    body: OutcomeCreate,
    caller: OutcomeWriter,
    writer: WriterDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record an exam's outcome at one of the caller's ports.

    The outcome must name a manifest in the lake that ``port`` handles in the
    outcome's ``direction`` (default ``IMPORT``: port of discharge; ``EXPORT``:
    port of loading; ``TRANSSHIPMENT``: a transshipment port) with that manifest's container
    number: 422 naming ``manifest_id`` (another port's manifest answers like a
    missing one) or ``container_number``. 409 when the port already recorded
    this manifest, exam type and inspection time.
    """
    key = check_idempotency_key(idempotency_key)
    payload = body.model_dump(mode="json")
    request_hash = request_sha256(_hashed_request(payload))
    audit = {"action": "outcome.create", "object_type": "outcome", "port": body.port}
    if not caller.can_access_port(body.port):
        await caller.audit_async(writer, **audit, result="denied", status_code=403)
        raise HTTPException(status_code=403, detail="not permitted for this port")
    problem = manifest_problem(manifest_directory(settings.lake_dir), body)
    if problem is not None:
        await caller.audit_async(writer, **audit, result="invalid", status_code=422, detail={"field": problem[0]})
        raise field_error(*problem)
    status, response_json = await writer.run(  # async: no thread is held while the batch commits
        lambda session: _store_outcome(session, caller, body, payload, key=key, request_hash=request_hash, audit=audit)
    )
    if status == 422:
        raise HTTPException(status_code=422, detail="Idempotency-Key was already used with a different request body")
    if status == 409:
        raise HTTPException(
            status_code=409, detail="an outcome for this manifest, exam type and inspection time already exists"
        )
    return _json_response(status, response_json)


def _store_outcome(
    session: Session, caller: Caller, body: OutcomeCreate, payload: dict[str, object], *, key: str, request_hash: str, audit: dict[str, str]
) -> tuple[int, str]:
    """The write of :func:`create_outcome` (one operation of the group writer): ``(status, stored response or "")``.

    ``payload`` is ``body.model_dump(mode="json")``. 201 stores the outcome; a
    retry with the same key and body replays the stored response; 422 for the
    same key with another body; 409 for the port's existing record of the same
    exam. Every case is audited.
    """
    fields = body.contract_fields()
    outcome_id, now = new_outcome_id(), utcnow()
    response_json = _outcome_response_json(payload, outcome_id, now)
    row = insert_outcome_unless_taken(  # the common case first: one statement; the unique constraints refuse a repeat
        session,
        outcome_id=outcome_id,
        fields=fields,
        api_key_id=caller.key_id,
        idempotency_key=key,
        request_hash=request_hash,
        response_status=201,
        response_json=response_json,
        at=now,
    )
    if row is None:
        return _refused_outcome(session, caller, body, key=key, request_hash=request_hash, audit=audit)
    caller.audit(session, **audit, object_id=outcome_id, status_code=201, detail={"idempotency_key": key, **values_seal_detail("outcome", row)})
    return 201, response_json


def _refused_outcome(
    session: Session, caller: Caller, body: OutcomeCreate, *, key: str, request_hash: str, audit: dict[str, str]
) -> tuple[int, str]:
    """A repeated idempotency key (replay, or 422 with another body) or the port's existing exam (409), audited."""
    existing = find_by_idempotency_key(session, caller.key_id, key)
    if existing is not None:
        same = existing.request_sha256 == request_hash
        caller.audit(
            session,
            **{**audit, "action": "outcome.replay" if same else "outcome.create"},
            object_id=existing.id,
            result="ok" if same else "invalid",
            status_code=existing.response_status if same else 422,
            detail={"idempotency_key": key},
        )
        return (existing.response_status, existing.response_json) if same else (422, "")
    clash = find_by_natural_key(session, body.port, body.manifest_id, body.exam_type, body.inspected_at)
    if clash is None:  # not a constraint of ours: let the writer fail this operation alone
        raise RuntimeError("outcome insert refused by an unexpected constraint")
    caller.audit(session, **audit, object_id=clash.id, result="conflict", status_code=409)
    return 409, ""


MAX_REPORT_DAYS = 3660
DEFAULT_REPORT_DAYS = 90


@router.get("/ports/{port}/hit-rates", response_model=HitRateReport)
def get_hit_rates(
    port: PortPath,
    caller: ListReader,
    writer: AuditWriterDep,
    database: DatabaseDep,
    settings: SettingsDep,
    since: Annotated[IsoDateQuery | None, Query(description="First UTC day (default: 90 days before `until`)")] = None,
    until: Annotated[IsoDateQuery | None, Query(description="Day after the last UTC day (default: tomorrow)")] = None,
) -> HitRateReport:
    """Hit rate per selection source (watchlist, rule, model, random, officer) of the exams recorded for ``port``.

    ``directions`` gives the same figures per list direction (only directions
    with exams, in the order IMPORT, EXPORT, TRANSSHIPMENT), per source within
    each; ``sources`` counts every direction together. Outcomes that do not
    match their manifest (unknown manifest, another container, a port that
    does not handle it in the outcome's direction) are left out and counted in
    ``ignored_outcomes``.
    """
    until = until or utcnow().date() + timedelta(days=1)
    since = since or until - timedelta(days=DEFAULT_REPORT_DAYS)
    if not 0 < (until - since).days <= MAX_REPORT_DAYS:
        raise HTTPException(status_code=422, detail=f"since must be before until, at most {MAX_REPORT_DAYS} days apart")
    audit = {"action": "outcome.hit_rates", "object_type": "port", "object_id": port, "port": port}
    period = {"since": since.isoformat(), "until": until.isoformat()}
    if not caller.can_access_port(port):
        caller.audit_read(writer, **audit, result="not_found", status_code=404, detail=period)
        raise HTTPException(status_code=404, detail="port not found")
    start, end = (datetime.combine(d, time.min, tzinfo=timezone.utc) for d in (since, until))
    try:
        recorded = export_outcomes(database, port=port, inspected_from=start, inspected_before=end)  # each outcome checked against its seal
    except SealMismatchError as exc:  # an outcome edited in the store, or written behind the service's back: 500, the audit names it
        caller.audit_read(writer, **audit, result="error", status_code=500, detail={**period, "bad_records": [p.record for p in exc.problems[:20]]})
        raise
    caller.audit_read(writer, **audit, result="ok", status_code=200, detail=period)
    matching, ignored = matching_outcomes(recorded.lazy(), manifest_directory(settings.lake_dir).frame().lazy())
    matching = matching.collect()
    rates = source_hit_rates(matching)
    return HitRateReport(
        port=port, since=since, until=until, inspections=int(rates["inspections"].sum()), seizures=int(rates["seizures"].sum()),
        sources=[SourceHitRate(**row) for row in rates.to_dicts()], directions=_direction_hit_rates(matching),
        ignored_outcomes=ignored.select(pl.len()).collect().item(),
    )


def _direction_hit_rates(matching: pl.DataFrame) -> list[DirectionHitRate]:
    """Per direction with exams (order of :data:`DIRECTIONS`): totals and :func:`source_hit_rates` within it."""
    found = []
    for direction in DIRECTIONS:
        rates = source_hit_rates(matching.filter(pl.col("direction") == direction))
        if rates.height:
            found.append(
                DirectionHitRate(
                    direction=direction, inspections=int(rates["inspections"].sum()), seizures=int(rates["seizures"].sum()),
                    sources=[SourceHitRate(**row) for row in rates.to_dicts()],
                )
            )
    return found
