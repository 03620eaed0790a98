"""The append-only, keyed hash chain of the audit trail.

Each row stores ``prev_hash`` (the previous row's ``hash``; 64 zeros for the
first row) and ``hash = HMAC-SHA256(key, prev_hash + canonical_json(fields))``
where ``fields`` are every other column of the row, ``seq`` included, and
``key`` is the store's audit key, kept in a file outside the database
(:mod:`serve.audit_key`; sessions carry it as ``session.info["audit_key"]``):
whoever rewrites rows cannot recompute the chain. Rows are only
ever inserted by :func:`record_event` (or :func:`record_events`, several in
order) inside a write unit of work (:meth:`serve.db.Database.write`), which
holds the store's write lock, so two writers never read the same chain head
and the chain cannot fork. :class:`AuditWriter` group-commits the events of
requests whose only write is their audit event (reads).

Tampering with any field, deleting a row or inserting one in the middle breaks
the chain at the first affected row, which :func:`verify_chain` names.
Truncating the newest rows is only detectable against an externally kept head
hash (``targeting audit verify`` prints it).
"""

from __future__ import annotations

import hmac
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serve.db import Database, utcnow
from serve.tables import AuditEvent
from targeting.lists import canonical_json

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "event_id",
    "occurred_at",
    "actor",
    "role",
    "port",
    "action",
    "object_type",
    "object_id",
    "model_version",
    "request_id",
    "result",
    "status_code",
    "detail",
)
"""The columns covered by a row's hash (every column but ``prev_hash`` and ``hash``)."""


def event_fields(row: AuditEvent) -> dict[str, Any]:
    """The hashed fields of ``row`` as JSON-ready values (timestamps as ISO 8601 UTC)."""
    values = {name: getattr(row, name) for name in HASHED_FIELDS}
    occurred_at: datetime = values["occurred_at"]
    values["occurred_at"] = occurred_at.isoformat(timespec="microseconds")
    return values


def chain_hash(prev_hash: str, fields: dict[str, Any], key: bytes) -> str:
    """``HMAC-SHA256(key, prev_hash + canonical_json(fields))`` as hex.

    Examples
    --------
    >>> len(chain_hash(GENESIS_HASH, {"seq": 1}, b"k" * 32))
    64
    """
    return hmac.digest(key, (prev_hash + canonical_json(fields)).encode(), "sha256").hex()


def session_audit_key(session: Session) -> bytes:
    """The audit key of the store ``session`` belongs to (:class:`serve.audit_key.AuditKeyError` when unavailable)."""
    holder = session.info.get("audit_key")
    if holder is None:
        raise RuntimeError("this session has no audit key (open the store with serve.db.Database)")
    return holder.key()


def event_hash_is_valid(row: AuditEvent, key: bytes) -> bool:
    """Whether ``row.hash`` is the keyed hash of its fields after ``row.prev_hash`` (the row alone, not its links)."""
    return hmac.compare_digest(row.hash, chain_hash(row.prev_hash, event_fields(row), key))


def _truncate(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


def record_event(
    session: Session,
    *,
    action: str,
    actor: str | None = None,
    role: str | None = None,
    port: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    model_version: str | None = None,
    request_id: str | None = None,
    result: str = "ok",
    status_code: int | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to the audit trail within the caller's write unit of work.

    Parameters
    ----------
    session
        A session of :meth:`serve.db.Database.write` (it holds the write lock;
        calling this from any other session may fork the chain). The event is
        durable when that unit of work commits, together with the change it
        describes.
    action
        What happened, dotted lower case (``list.create``, ``outcome.create``,
        ``auth.failure``, ``model.promote`` ...).
    actor
        Who: an API key id, or ``cli:<user>`` for command-line actions.
    role, port, object_type, object_id, model_version, request_id
        Context of the action; ``None`` when not applicable.
    result
        ``ok``, ``denied``, ``not_found``, ``invalid``, ``conflict``,
        ``unauthenticated`` or ``error``.
    status_code
        HTTP status returned, when the action is an HTTP request.
    detail
        Small JSON-ready dict of extra facts (no secrets, no personal data
        beyond ids).
    at
        Event time (timezone-aware); now by default.

    Returns
    -------
    AuditEvent
        The inserted row (flushed).
    """
    seq, prev_hash = _chain_head(session)
    row = _event_row(
        seq,
        prev_hash,
        session_audit_key(session),
        action=action,
        actor=actor,
        role=role,
        port=port,
        object_type=object_type,
        object_id=object_id,
        model_version=model_version,
        request_id=request_id,
        result=result,
        status_code=status_code,
        detail=detail,
        at=at,
    )
    session.add(row)
    session.flush()
    return row


def record_events(session: Session, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Append several events in order within the caller's write unit of work (one chain-head read, one statement).

    Each item holds the keyword arguments of :func:`record_event` (without
    ``session``); the rows are exactly those of calling :func:`record_event`
    for each item in turn. They are inserted with one Core ``executemany``
    (no ORM objects: the group writer appends thousands a second), and
    returned as the column values of each row.
    """
    seq, prev_hash = _chain_head(session)
    key = session_audit_key(session)
    rows = []
    for fields in events:
        values = _event_values(seq, prev_hash, key, **fields)
        rows.append(values)
        seq, prev_hash = seq + 1, values["hash"]
    if rows:
        session.execute(_INSERT_EVENT, rows)
    return rows


_INSERT_EVENT = AuditEvent.__table__.insert()


def _chain_head(session: Session) -> tuple[int, str]:
    """``seq`` and ``prev_hash`` of the next row."""
    head = session.execute(_CHAIN_HEAD).first()
    return (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)


_CHAIN_HEAD = select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)


def _event_row(seq: int, prev_hash: str, key: bytes, **fields: Any) -> AuditEvent:
    return AuditEvent(**_event_values(seq, prev_hash, key, **fields))


def _event_values(
    seq: int,
    prev_hash: str,
    key: bytes,
    *,
    action: str,
    actor: str | None = None,
    role: str | None = None,
    port: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    model_version: str | None = None,
    request_id: str | None = None,
    result: str = "ok",
    status_code: int | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Every column of the audit row ``seq`` after ``prev_hash``, its keyed ``hash`` included."""
    occurred_at = (at or utcnow()).astimezone(timezone.utc)
    values: dict[str, Any] = {
        "seq": seq,
        "event_id": str(uuid.uuid4()),
        "occurred_at": occurred_at.isoformat(timespec="microseconds"),
        "actor": _truncate(actor, 64),
        "role": _truncate(role, 32),
        "port": _truncate(port, 5),
        "action": action[:64],
        "object_type": _truncate(object_type, 64),
        "object_id": _truncate(object_id, 128),
        "model_version": _truncate(model_version, 64),
        "request_id": _truncate(request_id, 64),
        "result": result[:32],
        "status_code": status_code,
        "detail": None if detail is None else canonical_json(detail),
    }
    values["hash"] = chain_hash(prev_hash, values, key)  # the hashed fields: every column but prev_hash and hash
    values["occurred_at"], values["prev_hash"] = occurred_at, prev_hash
    return values


class _PendingEvent:
    """One event waiting for its batch to commit."""

    __slots__ = ("fields", "done", "error")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.done = False
        self.error: BaseException | None = None


class AuditWriter:
    """Appends audit events that are the only write of a request, with group commit.

    :meth:`record` returns once the event is durable and raises what its unit
    of work raised otherwise (e.g. ``OperationalError`` when the store is
    locked or down: a 503), so a response is never sent for an action whose
    audit event was not committed. Concurrent callers share units of work:
    while one caller commits a batch, the others queue their events; when it
    is done, one of the callers still waiting appends everything queued so
    far in one transaction (one fsync) under the store's write lock. Events
    are appended in arrival order, so the chain stays linear.

    Parameters
    ----------
    database
        The store.
    max_batch
        Most events appended in one unit of work.
    """

    def __init__(self, database: Database, *, max_batch: int = 500) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._database = database
        self._max_batch = max_batch
        self._queue: list[_PendingEvent] = []
        self._flushing = False
        self._changed = threading.Condition()

    def record(self, **fields: Any) -> None:
        """Append one event (the keyword arguments of :func:`record_event`, without ``session``); blocks until committed."""
        pending = _PendingEvent(fields)
        with self._changed:
            self._queue.append(pending)
            while not pending.done:
                if self._flushing:  # another caller is committing: wait for it, then check again
                    self._changed.wait()
                    continue
                self._flushing = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._changed.release()
                try:
                    self._commit(batch)
                finally:
                    self._changed.acquire()
                    self._flushing = False
                    self._changed.notify_all()
        if pending.error is not None:
            raise pending.error

    def _commit(self, batch: list[_PendingEvent]) -> None:
        try:
            with self._database.write() as session:
                record_events(session, [pending.fields for pending in batch])
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
            for pending in batch:
                pending.error = exc
                pending.done = True
            return
        for pending in batch:
            pending.done = True


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify_chain`.

    ``first_bad_seq`` names the first row whose ``prev_hash`` or ``hash`` does
    not match (``None`` when the chain is intact); ``head_hash`` is the last
    row's hash, to be kept outside the store to detect truncation.
    """

    ok: bool
    rows_checked: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def verify_chain(session: Session, *, batch_size: int = 1000) -> VerifyResult:
    """Recompute the audit chain from the first row and report the first broken row.

    Reads the table in ``seq`` order in batches (memory stays bounded).
    """
    key = session_audit_key(session)
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch_size)
        ).all()
        if not rows:
            return VerifyResult(ok=True, rows_checked=checked, head_hash=prev_hash)
        for row in rows:
            problem = _row_problem(row, prev_hash, expected_seq, key)
            if problem is not None:
                return VerifyResult(
                    ok=False, rows_checked=checked, head_hash=prev_hash, first_bad_seq=row.seq, problem=problem
                )
            prev_hash = row.hash
            expected_seq = row.seq + 1
            checked += 1
        last_seq = rows[-1].seq
        session.expunge_all()


def _row_problem(row: AuditEvent, prev_hash: str, expected_seq: int, key: bytes) -> str | None:
    if row.seq != expected_seq:
        return f"row {row.seq} follows row {expected_seq - 1}: rows are missing"
    if row.prev_hash != prev_hash:
        return f"row {row.seq} does not link to the previous row's hash"
    if not event_hash_is_valid(row, key):
        return f"row {row.seq} was modified after it was written (hash mismatch)"
    return None
