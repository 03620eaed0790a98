"""Seals: the hash of every record that shapes a decision or a label, written into the keyed audit chain.

When the service (or the command line) creates or changes a sealed record, the
audit event of that action carries ``detail["seals"]``: ``{"<type>:<id>":
record_digest(row)}`` for each row written. The chain is keyed
(:mod:`serve.audit`), so a seal cannot be rewritten without the audit key; a
record whose columns no longer hash to its latest seal was edited in the
database, a sealed record that is gone was deleted, a record without a seal
was inserted behind the service's back. :func:`verify_records` checks all of
it; fetches of lists check their own seal (:func:`list_seal_problem`); records are also checked when
used: an API key when it enters the key cache (:func:`api_key_seal_problem`), watchlist entries and rule
profiles when read through the API, and the rule-set version and watchlist a new list is built from.

Sealed records (:data:`SEALED`): inspection lists (every column; the record
text through ``content_sha256``), outcomes, list amendments, watchlist
entries, rule profiles, rule-set versions, API keys (role, ports, revocation), web users (role, ports,
password hash, disabled; not the sign-in counters or the language).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, defer
from sqlalchemy.sql.elements import ColumnElement

from serve.audit import event_hash_is_valid, session_audit_key
from serve.tables import ApiKey, AuditEvent, Base, ListAmendment, OutcomeRow, RuleProfileRow, RuleSetVersion, StoredList, WatchlistEntry, WebUser
from targeting.lists import canonical_json

SEALED: dict[str, type[Base]] = {
    "inspection_list": StoredList,
    "outcome": OutcomeRow,
    "list_amendment": ListAmendment,
    "watchlist_entry": WatchlistEntry,
    "rule_profile": RuleProfileRow,
    "ruleset_version": RuleSetVersion,
    "api_key": ApiKey,
    "web_user": WebUser,
}
"""Sealed record types and their tables."""
SEALED_COLUMNS: dict[str, tuple[str, ...]] = {
    "inspection_list": (
        "id", "port", "list_date", "direction", "created_at", "created_by", "ruleset_version", "watchlist_as_of",
        "model_name", "model_version", "content_sha256", "mandatory_exceeds_capacity", "item_count",
        "supersedes", "supersede_reason", "idempotency_key", "request_sha256",
    ),
    "outcome": (
        "id", "api_key_id", "idempotency_key", "request_sha256", "response_status", "response_json", "created_at",
        "manifest_id", "container_number", "port", "inspected_at", "exam_type", "result", "seizure_category",
        "quantity_kg", "concealment_method", "seal_status", "examiner", "selection_source", "direction",
    ),
    "list_amendment": (
        "id", "list_id", "action", "manifest_id", "container_number", "score", "exam_type", "reason", "created_at", "created_by", "direction",
    ),
    "watchlist_entry": (
        "alert_id", "kind", "value", "reason", "issuing_unit", "severity", "valid_from", "valid_to", "created_at", "created_by",
        "expired_at", "expired_by",
    ),
    "rule_profile": (
        "id", "code", "reason", "expression", "valid_from", "valid_to", "level", "port", "weight", "created_at", "created_by",
        "created_in_version", "expired_at", "expired_by", "expired_in_version",
    ),
    "ruleset_version": ("version", "created_at", "created_by", "change", "ruleset_hash", "rules_json"),
    "api_key": ("id", "key_hash", "role", "ports", "label", "created_at", "created_by", "revoked_at"),
    "web_user": ("username", "password_hash", "role", "ports", "key_id", "disabled", "created_at", "password_changed_at"),
}  # fmt: skip
"""The columns each seal covers, named explicitly so that a column a later migration adds does not change the
digests of rows sealed before it (add it here, and to the seals written from then on, deliberately). A list's
``record_json`` is covered through ``content_sha256`` (its sha256, checked whenever the record is read)."""
SEALED_OMITTED_AT_DEFAULT: dict[str, dict[str, Any]] = {"outcome": {"direction": "IMPORT"}}
"""Sealed columns added after rows were sealed without them: covered only when they differ from the value those rows
took (migration 0007 gave every earlier outcome ``IMPORT``). A seal written before the column still verifies, and
changing the value in the database, either way, still changes the digest."""
_TYPES = {table: name for name, table in SEALED.items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def record_type(row: Base) -> str:
    """The sealed type name of ``row`` (``KeyError`` for an unsealed table)."""
    return _TYPES[type(row)]


def seal_key(row: Base) -> str:
    """``"<type>:<primary key>"`` of a sealed row."""
    mapper = row.__mapper__
    return f"{record_type(row)}:{getattr(row, mapper.primary_key[0].key)}"


def record_digest(row: Base) -> str:
    """sha256 of the canonical JSON of every sealed column of ``row`` (timestamps in UTC, microseconds).

    Call it on a flushed row (generated keys assigned).
    """
    kind = record_type(row)
    return values_digest(kind, {name: getattr(row, name) for name in SEALED_COLUMNS[kind]})


def values_digest(kind: str, values: Mapping[str, Any]) -> str:
    """:func:`record_digest` of a ``kind`` record given as its column values (a mapping holding every sealed column).

    Examples
    --------
    >>> values_digest("ruleset_version", {"version": 1, "created_at": None, "created_by": "a", "change": "c",
    ...     "ruleset_hash": "h", "rules_json": "[]"}) == values_digest("ruleset_version", {"version": 1, "created_at": None,
    ...     "created_by": "a", "change": "c", "ruleset_hash": "h", "rules_json": "[]", "unsealed": 5})
    True
    """
    omitted = SEALED_OMITTED_AT_DEFAULT.get(kind, {})
    sealed = {name: _jsonable(values[name]) for name in SEALED_COLUMNS[kind]}
    sealed = {name: value for name, value in sealed.items() if name not in omitted or value != omitted[name]}
    return hashlib.sha256(canonical_json(sealed).encode()).hexdigest()


def seal_detail(*rows: Base) -> dict[str, dict[str, str]]:
    """``{"seals": {...}}`` to merge into the ``detail`` of the audit event that writes ``rows``."""
    return {"seals": {seal_key(row): record_digest(row) for row in rows}}


def values_seal_detail(kind: str, values: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """:func:`seal_detail` of one ``kind`` record given as its column values (primary key included)."""
    key_column = SEALED[kind].__mapper__.primary_key[0].key
    return {"seals": {f"{kind}:{values[key_column]}": values_digest(kind, values)}}


def _seals_of(detail: str | None) -> dict[str, str]:
    if not detail or '"seals"' not in detail:
        return {}
    try:
        seals = json.loads(detail).get("seals")
    except (ValueError, AttributeError):
        return {}
    return seals if isinstance(seals, dict) else {}


# --------------------------------------------------------------------------- one list, at fetch time


def list_seal_problem(session: Session, row: StoredList) -> str | None:
    """Why ``row`` (a stored list, metadata and ``content_sha256``) does not match its creation seal; ``None`` when it does.

    The seal is read from the list's ``list.create`` audit event, whose own
    keyed hash is checked first. ``record_json`` is checked against
    ``content_sha256`` separately (:func:`serve.store.lists.load_record`).
    """
    sealed = list_creation_seal(session, row.id)
    if sealed is None:
        return f"stored list {row.id} has no valid creation audit event"
    if sealed != record_digest(row):
        return f"stored list {row.id} does not match the record its creation audited (metadata or content changed)"
    return None


def list_creation_seal(session: Session, list_id: str) -> str | None:
    """The digest sealed by list ``list_id``'s creation event, ``None`` without a valid (keyed-hash checked) one."""
    return list_creation_seals(session, [list_id]).get(list_id)


def list_creation_seals(session: Session, list_ids: list[str]) -> dict[str, str]:
    """``{list id: sealed digest}`` from the valid (keyed-hash checked) creation events of ``list_ids``."""
    if not list_ids:
        return {}
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.object_type == "inspection_list",
            AuditEvent.object_id.in_(list_ids),
            AuditEvent.action == "list.create",
            AuditEvent.result == "ok",
        )
    ).all()
    key = session_audit_key(session)
    sealed: dict[str, str] = {}
    for event in events:
        seal = _seals_of(event.detail).get(f"inspection_list:{event.object_id}")
        if seal is not None and event_hash_is_valid(event, key):
            sealed[event.object_id] = seal
    return sealed


# --------------------------------------------------------------------------- records of one type, at read time (exports)


def latest_seals_of(session: Session, kind: str, ids: Sequence[str], *, batch_size: int = 500) -> dict[str, str]:
    """``{id: digest}``: the latest seal of each ``kind`` record in ``ids`` from the valid (keyed-hash checked) audit events about it.

    Events are found by their subject (``object_type == kind``, ``object_id``;
    indexed), ``batch_size`` ids at a time. An event whose own keyed hash fails
    is ignored, so an edited seal never vouches for an edited record.
    """
    key = session_audit_key(session)
    sealed: dict[str, str] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), batch_size):
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.object_type == kind, AuditEvent.object_id.in_(unique[start : start + batch_size]))
            .where(AuditEvent.detail.like('%"seals"%'))
            .order_by(AuditEvent.seq)
        ).all()
        for event in events:
            seal = _seals_of(event.detail).get(f"{kind}:{event.object_id}")
            if seal is not None and event_hash_is_valid(event, key):
                sealed[event.object_id] = seal  # in chain order: the latest seal wins
    return sealed


def seals_in_events_about(session: Session, object_type: str, object_id: str) -> dict[str, str]:
    """``{"<type>:<id>": digest}``: every seal carried by the valid (keyed-hash checked) audit events about one subject, latest wins.

    For records sealed in the events of the record they belong to (a list's
    amendments are sealed in its ``list.amend`` events).
    """
    key = session_audit_key(session)
    sealed: dict[str, str] = {}
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == object_id, AuditEvent.detail.like('%"seals"%'))
        .order_by(AuditEvent.seq)
    ).all()
    for event in events:
        seals = _seals_of(event.detail)
        if seals and event_hash_is_valid(event, key):
            sealed.update(seals)
    return sealed


def records_seal_problems(
    session: Session, kind: str, records: Sequence[Mapping[str, Any]], *, sealed: Mapping[str, str] | None = None
) -> list[RecordProblem]:
    """The ``kind`` records (column values, every sealed column) that do not match their latest seal, each named.

    A record is sound when its :func:`values_digest` equals its latest seal
    (``sealed``, ``{id: digest}``; by default :func:`latest_seals_of`); one
    without a valid seal was written outside the service (or its seal was
    edited), one with another digest was edited.
    """
    key_column = SEALED[kind].__mapper__.primary_key[0].key
    if sealed is None:
        sealed = latest_seals_of(session, kind, [record[key_column] for record in records])
    problems = []
    for record in records:
        name = f"{kind}:{record[key_column]}"
        seal = sealed.get(record[key_column])
        if seal is None:
            problems.append(RecordProblem(name, f"{name} has no valid seal in the audit trail (written outside the service)"))
        elif seal != values_digest(kind, record):
            problems.append(RecordProblem(name, f"{name} was modified after it was recorded (hash mismatch)"))
    return problems


def amendment_seal_problems(session: Session, list_id: str, amendments: Sequence[ListAmendment]) -> list[RecordProblem]:
    """The amendments of list ``list_id`` that do not match their seals (written in the list's ``list.amend`` audit events)."""
    prefix = "list_amendment:"
    seals = seals_in_events_about(session, "inspection_list", list_id)
    sealed = {key[len(prefix):]: digest for key, digest in seals.items() if key.startswith(prefix)}
    columns = SEALED_COLUMNS["list_amendment"]
    return records_seal_problems(session, "list_amendment", [{c: getattr(a, c) for c in columns} for a in amendments], sealed=sealed)


# --------------------------------------------------------------------------- records in use: keys, watchlist entries, rule profiles


def _latest_seals_among(session: Session, names: set[str], subjects: ColumnElement[bool]) -> dict[str, str]:
    """``{"<type>:<id>": digest}``: the latest seal of each of ``names`` in the valid (keyed-hash checked) events matching ``subjects``."""
    key = session_audit_key(session)
    sealed: dict[str, str] = {}
    events = session.scalars(
        select(AuditEvent).where(subjects, AuditEvent.detail.like('%"seals"%')).order_by(AuditEvent.seq)
    ).all()
    for event in events:
        seals = {name: digest for name, digest in _seals_of(event.detail).items() if name in names}
        if seals and event_hash_is_valid(event, key):
            sealed.update(seals)  # in chain order: the latest seal wins
    return sealed


def rows_seal_problems(
    session: Session, rows: Sequence[Base], subjects_of: Callable[[Sequence[Base]], ColumnElement[bool]], *, batch_size: int = 500
) -> list[RecordProblem]:
    """The sealed ``rows`` (one type) that do not match their latest seal among the events ``subjects_of(batch)`` selects.

    For records whose seals are carried by events about several subjects (a
    key is sealed by ``key.*`` and by ``user.*`` events, a watchlist entry by
    ``watchlist.*`` and ``exchange.accept``, a rule profile by ``rule.*`` and
    ``ruleset.seed``). Read ``batch_size`` rows at a time.
    """
    problems: list[RecordProblem] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        kind = record_type(batch[0])
        sealed = _latest_seals_among(session, {seal_key(row) for row in batch}, subjects_of(batch))
        key_column = SEALED[kind].__mapper__.primary_key[0].key
        by_id = {getattr(row, key_column): sealed[seal_key(row)] for row in batch if seal_key(row) in sealed}
        records = [{column: getattr(row, column) for column in SEALED_COLUMNS[kind]} for row in batch]
        problems.extend(records_seal_problems(session, kind, records, sealed=by_id))
    return problems


def api_key_seal_problem(session: Session, row: ApiKey) -> str | None:
    """Why key ``row`` (role, ports, revocation, hash) does not match its latest seal; ``None`` when it does.

    Seals come from the key's own events and those of the web user it backs.
    """
    usernames = list(session.scalars(select(WebUser.username).where(WebUser.key_id == row.id)))
    subjects = and_(AuditEvent.object_type == "api_key", AuditEvent.object_id == row.id)
    if usernames:
        subjects = or_(subjects, and_(AuditEvent.object_type == "web_user", AuditEvent.object_id.in_(usernames)))
    problems = rows_seal_problems(session, [row], lambda _: subjects)
    return problems[0].problem if problems else None


def watchlist_seal_problems(session: Session, rows: Sequence[WatchlistEntry]) -> list[RecordProblem]:
    """The watchlist entries among ``rows`` that do not match their seals (``watchlist.*`` and ``exchange.accept`` events)."""
    return rows_seal_problems(
        session,
        rows,
        lambda batch: or_(
            and_(AuditEvent.object_type == "watchlist_entry", AuditEvent.object_id.in_([r.alert_id for r in batch])),
            AuditEvent.action == "exchange.accept",
        ),
    )


def rule_profile_seal_problems(session: Session, rows: Sequence[RuleProfileRow]) -> list[RecordProblem]:
    """The rule profiles among ``rows`` that do not match their seals (``rule.*`` events about their code, ``ruleset.seed``)."""
    return rows_seal_problems(
        session,
        rows,
        lambda batch: or_(
            and_(AuditEvent.object_type == "rule_profile", AuditEvent.object_id.in_(sorted({r.code for r in batch}))),
            AuditEvent.action == "ruleset.seed",
        ),
    )


def ruleset_version_seal_problems(session: Session, rows: Sequence[RuleSetVersion]) -> list[RecordProblem]:
    """The rule-set versions among ``rows`` that do not match their seals (written by ``rule.*`` and ``ruleset.seed`` events)."""
    return rows_seal_problems(session, rows, lambda _: AuditEvent.action.in_(("rule.create", "rule.expire", "ruleset.seed")))


class SealMismatchError(RuntimeError):
    """Records read for an export do not match their seals; ``problems`` names each (the message names the first ten)."""

    def __init__(self, kind: str, problems: Sequence[RecordProblem]) -> None:
        self.problems = list(problems)
        shown = "; ".join(problem.problem for problem in self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        super().__init__(
            f"{len(self.problems)} stored {kind} record(s) do not match the audit trail, nothing exported: {shown}{more};"
            " run `targeting audit verify`"
        )


# --------------------------------------------------------------------------- everything, for audit verify


@dataclass(frozen=True)
class RecordProblem:
    """A sealed record that fails verification."""

    record: str
    problem: str


def latest_seals(session: Session, *, batch_size: int = 2000) -> dict[str, str]:
    """The latest seal of every sealed record named in the audit trail (``"<type>:<id>"`` -> digest)."""
    seals: dict[str, str] = {}
    last_seq = 0
    while True:
        rows = session.execute(
            select(AuditEvent.seq, AuditEvent.detail)
            .where(AuditEvent.seq > last_seq, AuditEvent.detail.like('%"seals"%'))
            .order_by(AuditEvent.seq)
            .limit(batch_size)
        ).all()
        if not rows:
            return seals
        for _, detail in rows:
            seals.update(_seals_of(detail))
        last_seq = rows[-1].seq


def _rows_in_batches(session: Session, table: type[Base], batch_size: int = 1000):  # noqa: ANN202 - Iterator[Base]
    """Every row of ``table`` in primary-key order, read in batches (each batch expunged: memory stays bounded)."""
    key_column = table.__mapper__.primary_key[0]
    last = None
    while True:
        query = select(table).order_by(key_column).limit(batch_size)
        if table is StoredList:
            query = query.options(defer(StoredList.record_json))  # covered by content_sha256; lists are checked by verify_stored_lists
        rows = session.scalars(query if last is None else query.where(key_column > last)).all()
        if not rows:
            return
        yield from rows
        last = getattr(rows[-1], key_column.key)
        session.expunge_all()


def verify_records(session: Session) -> tuple[dict[str, int], list[RecordProblem]]:
    """Check every sealed record against its latest seal: (records checked per type, problems).

    A record is sound when its digest equals its latest seal. Problems name the
    record: edited (digest differs), inserted without a seal, or sealed but
    missing (deleted). Rows are read in batches of one table at a time.
    """
    seals = latest_seals(session)
    counts: dict[str, int] = {}
    problems: list[RecordProblem] = []
    for name, table in SEALED.items():
        counts[name] = 0
        for row in _rows_in_batches(session, table):
            key = seal_key(row)
            sealed = seals.pop(key, None)
            counts[name] += 1
            if sealed is None:
                problems.append(RecordProblem(key, f"{key} has no seal in the audit trail (written outside the service)"))
            elif sealed != record_digest(row):
                problems.append(RecordProblem(key, f"{key} was modified after it was recorded (hash mismatch)"))
    for key in sorted(seals):
        problems.append(RecordProblem(key, f"{key} was recorded in the audit trail but is missing from the store (deleted)"))
    return counts, problems
