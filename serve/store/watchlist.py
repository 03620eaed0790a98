"""Watchlist entries (intelligence alerts) in the store, and their ALERTS-contract frame for the engine.

An entry is *in force in the store* at time ``t`` when it was created at or
before ``t`` and not expired at or before ``t``. Expiring an entry sets
``expired_at`` and leaves its contract columns (``valid_from``/``valid_to``)
untouched, so the frame passed to the engine for a list can be rebuilt
exactly for a replay from the list's ``watchlist_as_of`` time
(:func:`watchlist_frame_at`). The engine applies each entry's own validity
window (``valid_from <= decision_at < valid_to``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from features.data.contracts import ALERT_KINDS, ALERTS
from serve.db import to_utc, utcnow
from serve.seals import SealMismatchError, watchlist_seal_problems
from serve.tables import WatchlistEntry
from serve.validators import normalize_alert_value


class WatchlistConflictError(ValueError):
    """An entry with this alert id already exists."""


class WatchlistNotFoundError(LookupError):
    """No entry in force has this alert id."""


@dataclass(frozen=True)
class NewEntry:
    """A watchlist entry to create (ALERTS contract fields; ``alert_id`` generated when ``None``)."""

    kind: str
    value: str
    reason: str
    issuing_unit: str
    severity: int
    valid_from: datetime
    valid_to: datetime | None = None
    alert_id: str | None = None


def validate_new_entry(entry: NewEntry) -> NewEntry:
    """Check an entry against the ALERTS contract and normalise its value; ``ValueError`` on failure."""
    if entry.kind not in ALERT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ALERT_KINDS)}")
    if not 1 <= entry.severity <= 5:
        raise ValueError("severity must be between 1 and 5")
    for name in ("valid_from", "valid_to"):
        value = getattr(entry, name)
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError(f"{name} must be timezone-aware")
    if entry.valid_to is not None and entry.valid_to <= entry.valid_from:
        raise ValueError("valid_to must be after valid_from")
    if not entry.reason.strip() or len(entry.reason) > 500:
        raise ValueError("reason must have 1 to 500 characters")
    if not entry.issuing_unit.strip() or len(entry.issuing_unit) > 100:
        raise ValueError("issuing_unit must have 1 to 100 characters")
    return NewEntry(
        kind=entry.kind,
        value=normalize_alert_value(entry.kind, entry.value),
        reason=entry.reason.strip(),
        issuing_unit=entry.issuing_unit.strip(),
        severity=entry.severity,
        valid_from=entry.valid_from,
        valid_to=entry.valid_to,
        alert_id=entry.alert_id,
    )


def add_entry(session: Session, entry: NewEntry, *, actor: str, at: datetime | None = None) -> WatchlistEntry:
    """Validate and insert ``entry``.

    Raises
    ------
    ValueError
        When the entry breaks the ALERTS contract.
    WatchlistConflictError
        When ``alert_id`` is already used (ids are never reused).
    """
    entry = validate_new_entry(entry)
    alert_id = entry.alert_id or f"WL-{uuid.uuid4().hex[:16].upper()}"
    if session.get(WatchlistEntry, alert_id) is not None:
        raise WatchlistConflictError(f"watchlist entry {alert_id!r} already exists")
    row = WatchlistEntry(
        alert_id=alert_id,
        kind=entry.kind,
        value=entry.value,
        reason=entry.reason,
        issuing_unit=entry.issuing_unit,
        severity=entry.severity,
        valid_from=to_utc(entry.valid_from),
        valid_to=to_utc(entry.valid_to),
        created_at=at or utcnow(),
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return row


def expire_entry(session: Session, alert_id: str, *, actor: str, at: datetime | None = None) -> WatchlistEntry:
    """Take ``alert_id`` out of force from now on.

    Raises
    ------
    WatchlistNotFoundError
        When there is no such entry in force.
    """
    row = session.get(WatchlistEntry, alert_id)
    if row is None or row.expired_at is not None:
        raise WatchlistNotFoundError(f"no watchlist entry {alert_id!r} in force")
    row.expired_at = at or utcnow()
    row.expired_by = actor
    session.flush()
    return row


def entries_in_force(session: Session, at: datetime) -> list[WatchlistEntry]:
    """Entries created at or before ``at`` and not expired at or before ``at``, ordered by alert id."""
    query = (
        select(WatchlistEntry)
        .where(WatchlistEntry.created_at <= at)
        .where(or_(WatchlistEntry.expired_at.is_(None), WatchlistEntry.expired_at > at))
        .order_by(WatchlistEntry.alert_id)
    )
    return list(session.scalars(query))


def list_entries(session: Session, *, include_expired: bool = False, limit: int, offset: int = 0) -> list[WatchlistEntry]:
    """A page of entries ordered by alert id (only those in force unless ``include_expired``)."""
    query = select(WatchlistEntry).order_by(WatchlistEntry.alert_id).limit(limit).offset(offset)
    if not include_expired:
        query = query.where(WatchlistEntry.expired_at.is_(None))
    return list(session.scalars(query))


def count_entries(session: Session, *, include_expired: bool = False) -> int:
    """Number of entries (only those in force unless ``include_expired``)."""
    query = select(func.count()).select_from(WatchlistEntry)
    if not include_expired:
        query = query.where(WatchlistEntry.expired_at.is_(None))
    return int(session.scalar(query) or 0)


def watchlist_frame(entries: list[WatchlistEntry]) -> pl.DataFrame:
    """The entries as a frame with exactly the ALERTS contract schema (row order as given)."""
    columns = ALERTS.column_names
    data = {name: [getattr(e, name) for e in entries] for name in columns}
    return pl.DataFrame(data, schema=ALERTS.schema)


def watchlist_frame_at(session: Session, at: datetime) -> pl.DataFrame:
    """ALERTS-contract frame of the entries in force in the store at ``at`` (see the module docstring)."""
    return watchlist_frame(entries_in_force(session, at))


def verified_watchlist_frame_at(session: Session, at: datetime) -> pl.DataFrame:
    """:func:`watchlist_frame_at`, each entry first checked against its seal in the keyed audit trail (for building lists).

    Raises
    ------
    serve.seals.SealMismatchError
        Naming each entry in force that was edited in the store or inserted there behind the service.
    """
    entries = entries_in_force(session, at)
    problems = watchlist_seal_problems(session, entries)
    if problems:
        raise SealMismatchError("watchlist_entry", problems)
    return watchlist_frame(entries)
