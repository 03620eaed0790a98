"""Served inspection lists: store the full record, fetch it back (integrity-checked), page, export CSV.

A stored list keeps the canonical JSON of :func:`targeting.lists.list_to_dict`
and its ``content_sha256``; reading it back recomputes the hash and refuses a
record that no longer matches (:class:`StoredListCorruptError`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased, defer

from serve.db import utcnow
from serve.seals import record_digest
from serve.tables import AuditEvent, StoredList
from targeting.lists import InspectionList, canonical_json, list_from_dict, list_to_dict

CSV_COLUMNS = (
    "rank",
    "container_number",
    "manifest_id",
    "score",
    "source",
    "exam_type",
    "selection_probability",
    "reasons",
    "direction",
    "risk_band",
    "risk_probability",
    "integrity_surprisal",
    "integrity_p_value",
)
REASON_SEPARATOR = " | "
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
"""OWASP CSV injection: cells starting with these are prefixed with ``'`` (full-width forms included)."""


class StoredListCorruptError(RuntimeError):
    """A stored list's record no longer matches its content hash."""


def store_list(
    session: Session,
    record: InspectionList,
    *,
    created_by: str,
    watchlist_as_of: datetime,
    list_id: str | None = None,
    at: datetime | None = None,
    record_json: str | None = None,
    direction: str = "IMPORT",
    supersedes: str | None = None,
    supersede_reason: str | None = None,
    idempotency_key: str | None = None,
    request_sha256: str | None = None,
) -> StoredList:
    """Insert a generated list with its record JSON and ``content_sha256``.

    Parameters
    ----------
    record
        The list as returned by the engine; its ``ruleset_version`` must exist.
    created_by
        Key id of the caller.
    watchlist_as_of
        The store time whose watchlist entries were given to the engine
        (replays rebuild the watchlist from it).
    list_id
        UUID to use; a new uuid4 by default.
    record_json
        ``canonical_json(list_to_dict(record))`` when the caller already has
        it (so it can be computed before the write lock is taken).
    direction, supersedes, supersede_reason
        The list's direction, the current list it replaces (see
        :func:`current_list`) and why.
    idempotency_key, request_sha256
        The caller's ``Idempotency-Key`` and the hash of its request (unique per ``created_by``).
    """
    if record_json is None:
        record_json = canonical_json(list_to_dict(record))
    row = StoredList(
        id=list_id or str(uuid.uuid4()),
        port=record.port,
        list_date=record.list_date,
        created_at=at or utcnow(),
        created_by=created_by,
        ruleset_version=record.ruleset_version,
        watchlist_as_of=watchlist_as_of,
        model_name=record.model_name,
        model_version=record.model_version,
        content_sha256=hashlib.sha256(record_json.encode()).hexdigest(),  # = record.content_sha256()
        mandatory_exceeds_capacity=record.mandatory_exceeds_capacity,
        item_count=len(record.items),
        record_json=record_json,
        direction=direction,
        supersedes=supersedes,
        supersede_reason=supersede_reason,
        idempotency_key=idempotency_key,
        request_sha256=request_sha256,
    )
    session.add(row)
    session.flush()
    return row


def current_list(session: Session, port: str, list_date: date, direction: str) -> StoredList | None:
    """The current list of ``port``, ``list_date`` and ``direction``: the newest one no other list supersedes."""
    successor = aliased(StoredList)
    superseded = exists().where(successor.supersedes == StoredList.id)
    return session.scalars(
        select(StoredList)
        .options(defer(StoredList.record_json))
        .where(StoredList.port == port, StoredList.list_date == list_date, StoredList.direction == direction, ~superseded)
        .order_by(StoredList.created_at.desc(), StoredList.id)
        .limit(1)
    ).first()


def successors_of(session: Session, list_ids: list[str]) -> dict[str, str]:
    """``{list id: id of the list that superseded it}`` for those of ``list_ids`` that were superseded."""
    if not list_ids:
        return {}
    rows = session.execute(select(StoredList.supersedes, StoredList.id).where(StoredList.supersedes.in_(list_ids))).all()
    return {old: new for old, new in rows}


def find_by_list_idempotency_key(session: Session, created_by: str, idempotency_key: str) -> StoredList | None:
    """The list ``created_by`` created with ``idempotency_key`` (without its record), ``None`` when none."""
    return session.scalars(
        select(StoredList)
        .options(defer(StoredList.record_json))
        .where(StoredList.created_by == created_by, StoredList.idempotency_key == idempotency_key)
    ).first()


def get_list(session: Session, list_id: str, *, with_record: bool = True) -> StoredList | None:
    """The stored list ``list_id``, ``None`` when absent.

    Without ``with_record`` the (possibly megabytes long) ``record_json`` is
    not read until it is accessed, which must then happen inside ``session``.
    """
    if with_record:
        return session.get(StoredList, list_id)
    return session.scalars(select(StoredList).options(defer(StoredList.record_json)).where(StoredList.id == list_id)).one_or_none()


def record_is_verbatim(row: StoredList) -> bool:
    """Whether ``row.record_json`` is byte for byte the canonical JSON its ``content_sha256`` was computed from.

    That is the case for every list written by :func:`store_list`; it is a
    sha256 of the stored text, without parsing it.
    """
    return hashlib.sha256(row.record_json.encode()).hexdigest() == row.content_sha256


def load_record(row: StoredList) -> InspectionList:
    """The :class:`InspectionList` of ``row``, after checking it against ``content_sha256``.

    When the stored text is verbatim (:func:`record_is_verbatim`) it is only
    parsed; otherwise the record is parsed and its canonical hash recomputed.

    Raises
    ------
    StoredListCorruptError
        When the record does not parse or its hash differs from the stored one.
    """
    verbatim = record_is_verbatim(row)
    try:
        record = list_from_dict(json.loads(row.record_json))
    except (ValueError, TypeError, KeyError) as exc:
        raise StoredListCorruptError(f"stored list {row.id} does not parse") from exc
    if not verbatim and record.content_sha256() != row.content_sha256:
        raise StoredListCorruptError(f"stored list {row.id} does not match its content hash")
    return record


@dataclass(frozen=True)
class ListProblem:
    """A stored list that fails verification, and why."""

    list_id: str
    problem: str


def verify_stored_lists(session: Session) -> tuple[int, list[ListProblem]]:
    """Check every stored list, oldest first: (lists checked, problems found).

    A list is sound when its record matches its ``content_sha256`` (see
    :func:`load_record`) and that hash is the one its ``list.create`` audit
    event recorded (lists inserted without one, such as imports, are checked
    against their own hash only); a list whose creation was audited must still
    be there. Records are read one at a time.
    """
    created = {
        object_id: json.loads(detail or "{}").get("content_sha256")
        for object_id, detail in session.execute(
            select(AuditEvent.object_id, AuditEvent.detail).where(AuditEvent.action == "list.create", AuditEvent.result == "ok")
        )
    }
    ids = session.scalars(select(StoredList.id).order_by(StoredList.created_at, StoredList.id)).all()
    problems = [ListProblem(i, f"stored list {i} was created (audited) but is missing from the store") for i in sorted(set(created) - set(ids))]
    for list_id in ids:
        row = session.get(StoredList, list_id)
        try:
            load_record(row)
        except StoredListCorruptError as exc:
            problems.append(ListProblem(list_id, str(exc)))
        else:
            audited = created.get(list_id)
            if audited is not None and audited != row.content_sha256:
                problems.append(ListProblem(list_id, f"stored list {list_id} does not match the content hash its creation audited"))
        session.expunge(row)
    return len(ids), problems


@dataclass(frozen=True)
class ServedBody:
    """A response body of a stored list, with what a fetch needs to authorise and audit it."""

    list_id: str
    port: str
    model_version: str
    content_sha256: str
    body: bytes
    seal: str = ""
    """:func:`serve.seals.record_digest` of the verified row the body was built from."""
    superseded_by: str | None = None
    """The successor the body names (a body is rebuilt once its list is superseded)."""


class ServedListCache:
    """Response bodies of stored lists, built once per list and kind and kept in a bounded LRU. Thread-safe.

    Stored lists are immutable (the service never updates or deletes one), so
    a body built from a verified record (:func:`record_is_verbatim` or
    :func:`load_record`; the only way bodies are put here) can be served again
    without reading the store: a record altered in the store later is never
    shown by a process that cached it, and ``targeting audit verify`` names it
    (:func:`verify_stored_lists`).

    Parameters
    ----------
    max_bytes
        Total size of the bodies kept; least recently used ones are dropped.
    """

    def __init__(self, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[tuple[str, str], ServedBody] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, list_id: str, kind: str) -> ServedBody | None:
        """The cached body of kind ``kind`` (``"json"``, ``"json+deferred"``, ``"csv"``) of list ``list_id``."""
        key = (kind, list_id)
        with self._lock:
            served = self._bodies.get(key)
            if served is not None:
                self._bodies.move_to_end(key)
            return served

    def put(self, row: StoredList, kind: str, body: bytes, superseded_by: str | None = None) -> None:
        """Keep ``body``, built from ``row``'s verified record naming ``superseded_by`` (unless it alone exceeds ``max_bytes``)."""
        if len(body) > self.max_bytes:
            return
        served = ServedBody(row.id, row.port, row.model_version, row.content_sha256, body, record_digest(row), superseded_by)
        key = (kind, row.id)
        with self._lock:
            previous = self._bodies.pop(key, None)
            self._size -= len(previous.body) if previous is not None else 0
            self._bodies[key] = served
            self._size += len(body)
            while self._size > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._size -= len(dropped.body)


def lists_for_port(
    session: Session, port: str, *, list_date: date | None = None, limit: int, offset: int = 0
) -> tuple[list[StoredList], int]:
    """A page of a port's lists, newest first, and the total count matching the filter.

    The rows come without their ``record_json`` (a list's record can be
    megabytes; it is loaded only if accessed).
    """
    query = select(StoredList).where(StoredList.port == port)
    if list_date is not None:
        query = query.where(StoredList.list_date == list_date)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(defer(StoredList.record_json)).order_by(StoredList.created_at.desc(), StoredList.id).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)


def csv_safe(value: str) -> str:
    """Neutralise spreadsheet formulas (OWASP): prefix ``'`` to text starting with ``= + - @``, TAB, CR or LF.

    Examples
    --------
    >>> csv_safe("=HYPERLINK()"), csv_safe("Reefer")
    ("'=HYPERLINK()", 'Reefer')
    """
    return "'" + value if value.startswith(_FORMULA_PREFIXES) else value


def items_csv(record: InspectionList) -> str:
    """CSV of a list's selected items (header :data:`CSV_COLUMNS`; reasons joined by ``' | '``; integrity empty without norms)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in record.items:
        writer.writerow(
            [
                item.rank,
                csv_safe(item.container_number),
                csv_safe(item.manifest_id),
                repr(float(item.score)),
                item.source,
                item.exam_type or "",
                repr(float(item.selection_probability)),
                csv_safe(REASON_SEPARATOR.join(csv_safe(reason) for reason in item.reasons)),
                record.direction,
                item.risk_band or "NOT_RATED",
                "" if item.risk_probability is None else repr(float(item.risk_probability)),
                "" if item.integrity is None else repr(float(item.integrity["surprisal"])),
                "" if item.integrity is None else repr(float(item.integrity["p_value"])),
            ]
        )
    return buffer.getvalue()
