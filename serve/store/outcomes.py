"""Inspection outcomes: idempotent inserts and the export that feeds the next training run.

Each outcome row keeps the idempotency key it was posted with (unique per API
key), the sha256 of the canonical request and the exact response that was
returned, so a retried POST replays the stored response.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from features.data.contracts import INSPECTION_OUTCOMES
from serve.db import Database, utcnow
from serve.seals import SEALED_COLUMNS, SealMismatchError, records_seal_problems
from serve.tables import OutcomeRow
from serve.writer import insert_unless_taken
from targeting.lists import canonical_json

CONTRACT_FIELDS: tuple[str, ...] = tuple(INSPECTION_OUTCOMES.column_names)


def request_sha256(payload: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a validated request payload.

    Examples
    --------
    >>> request_sha256({"b": 1, "a": 2}) == request_sha256({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(canonical_json(dict(payload)).encode()).hexdigest()


def find_by_idempotency_key(session: Session, api_key_id: str, idempotency_key: str) -> OutcomeRow | None:
    """The outcome posted by ``api_key_id`` with ``idempotency_key``, ``None`` when none."""
    return session.scalar(
        select(OutcomeRow).where(OutcomeRow.api_key_id == api_key_id, OutcomeRow.idempotency_key == idempotency_key)
    )


def find_by_natural_key(session: Session, port: str, manifest_id: str, exam_type: str, inspected_at: datetime) -> OutcomeRow | None:
    """``port``'s outcome with this contract key (manifest, exam type, inspection time), ``None`` when none.

    Scoped to the port: another port's record of the same exam is neither
    revealed nor blocking.
    """
    return session.scalar(
        select(OutcomeRow).where(
            OutcomeRow.port == port,
            OutcomeRow.manifest_id == manifest_id,
            OutcomeRow.exam_type == exam_type,
            OutcomeRow.inspected_at == inspected_at,
        )
    )


def new_outcome_id() -> str:
    """A fresh outcome id (uuid4)."""
    return str(uuid.uuid4())


def _outcome_row(
    outcome_id: str,
    fields: Mapping[str, Any],
    api_key_id: str,
    idempotency_key: str,
    request_hash: str,
    response_status: int,
    response_json: str,
    at: datetime | None,
) -> OutcomeRow:
    """The row of one outcome (not yet added); ``ValueError`` for fields outside the outcome contract."""
    unknown = set(fields) - set(CONTRACT_FIELDS)
    if unknown:
        raise ValueError(f"not outcome contract fields: {', '.join(sorted(unknown))}")
    row = OutcomeRow(
        id=outcome_id,
        api_key_id=api_key_id,
        idempotency_key=idempotency_key,
        request_sha256=request_hash,
        response_status=response_status,
        response_json=response_json,
        created_at=at or utcnow(),
        **{name: fields.get(name) for name in CONTRACT_FIELDS},
    )
    return row


def insert_outcome(
    session: Session,
    *,
    outcome_id: str,
    fields: Mapping[str, Any],
    api_key_id: str,
    idempotency_key: str,
    request_hash: str,
    response_status: int,
    response_json: str,
    at: datetime | None = None,
) -> OutcomeRow:
    """Insert one outcome with its idempotency record.

    ``fields`` holds exactly the INSPECTION_OUTCOMES contract columns, already
    validated. Call inside a write unit of work; the outcome is durable when
    it commits.
    """
    row = _outcome_row(outcome_id, fields, api_key_id, idempotency_key, request_hash, response_status, response_json, at)
    session.add(row)
    session.flush()
    return row


def insert_outcome_unless_taken(
    session: Session,
    *,
    outcome_id: str,
    fields: Mapping[str, Any],
    api_key_id: str,
    idempotency_key: str,
    request_hash: str,
    response_status: int,
    response_json: str,
    at: datetime | None = None,
) -> dict[str, Any] | None:
    """:func:`insert_outcome` unless a unique constraint refuses it (:func:`serve.writer.insert_unless_taken`).

    Returns the stored row's column values (for its seal,
    :func:`serve.seals.values_digest`), or ``None`` when a unique constraint
    refused it: this API key already used ``idempotency_key``, or the port
    already recorded this manifest, exam type and inspection time. Nothing
    else happens in that case, so no savepoint is needed around it. In a
    group-writer batch the row is inserted with the batch's other outcomes in
    one statement (no ORM object, no statement built per outcome: the writer
    inserts thousands a second).
    """
    unknown = set(fields) - _CONTRACT_FIELD_SET
    if unknown:
        raise ValueError(f"not outcome contract fields: {', '.join(sorted(unknown))}")
    values = {
        "id": outcome_id,
        "api_key_id": api_key_id,
        "idempotency_key": idempotency_key,
        "request_sha256": request_hash,
        "response_status": response_status,
        "response_json": response_json,
        "created_at": at or utcnow(),
        **{name: fields.get(name) for name in CONTRACT_FIELDS},
    }
    return values if insert_unless_taken(session, OutcomeRow.__table__, values) else None


_CONTRACT_FIELD_SET = frozenset(CONTRACT_FIELDS)


def export_outcomes(
    source: Session | Database,
    *,
    port: str | None = None,
    inspected_from: datetime | None = None,
    inspected_before: datetime | None = None,
    verify: bool = True,
) -> pl.DataFrame:
    """Every stored outcome as a frame typed exactly like ``INSPECTION_OUTCOMES.schema``, each checked against its seal.

    Parameters
    ----------
    source
        An open session, or a :class:`~serve.db.Database` (a read unit of work is used).
    port
        Only this port's outcomes.
    inspected_from
        Only outcomes with ``inspected_at`` at or after this (timezone-aware) time.
    inspected_before
        Only outcomes with ``inspected_at`` strictly before this (timezone-aware) time.
    verify
        Check every exported outcome (all its sealed columns) against its latest
        seal in the keyed audit trail, as list fetches do; only tests of the
        export itself turn this off.

    Returns
    -------
    pl.DataFrame
        Sorted by ``inspected_at``, ``manifest_id``, ``exam_type``; timestamps
        ``Datetime("us", "UTC")``.

    Raises
    ------
    serve.seals.SealMismatchError
        When ``verify`` and an outcome was edited in the store or written there
        outside the service; it names each such outcome and nothing is exported.
    """
    if isinstance(source, Database):
        with source.read() as session:
            return export_outcomes(session, port=port, inspected_from=inspected_from, inspected_before=inspected_before, verify=verify)
    columns = _EXPORT_COLUMNS if verify else CONTRACT_FIELDS
    query = select(*(getattr(OutcomeRow, name) for name in columns)).order_by(
        OutcomeRow.inspected_at, OutcomeRow.manifest_id, OutcomeRow.exam_type
    )
    if port is not None:
        query = query.where(OutcomeRow.port == port)
    if inspected_from is not None:
        query = query.where(OutcomeRow.inspected_at >= inspected_from)
    if inspected_before is not None:
        query = query.where(OutcomeRow.inspected_at < inspected_before)
    rows = source.execute(query).all()
    if verify:
        problems = records_seal_problems(source, "outcome", [row._mapping for row in rows])
        if problems:
            raise SealMismatchError("outcome", problems)
    data = {name: [row._mapping[name] for row in rows] for name in CONTRACT_FIELDS}
    return pl.DataFrame(data, schema=INSPECTION_OUTCOMES.schema)


_EXPORT_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys((*SEALED_COLUMNS["outcome"], *CONTRACT_FIELDS)))
"""What a verified export reads: every sealed column (for the seal check) and the contract's."""
