"""API keys in the store: create (the plain key is returned once), authenticate, list, revoke; a short-lived cache of verified keys.

Creating and revoking a key records its audit event (``key.create``,
``key.revoke``) in the same unit of work, sealing the key's role, ports and
revocation (:mod:`serve.seals`): a key turned admin in the database is named
by ``targeting audit verify``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from serve.audit import record_event
from serve.db import utcnow
from serve.seals import api_key_seal_problem, seal_detail
from serve.security import Principal, Role, generate_key, hash_key, key_matches, parse_key_id, validate_role_ports
from serve.tables import ApiKey
from serve.validators import normalize_locode


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``key`` is the only copy of the secret and must be shown once."""

    key_id: str
    key: str
    role: Role
    ports: tuple[str, ...]
    label: str | None


def create_key(
    session: Session,
    *,
    role: Role,
    ports: tuple[str, ...] = (),
    label: str | None = None,
    created_by: str,
    actor_role: str | None = None,
    at: datetime | None = None,
) -> CreatedKey:
    """Create a key for ``role`` (officers: at least one port); only its sha256 is stored; audited as ``created_by``.

    Raises
    ------
    ValueError
        For an officer without ports, a port given to another role, a
        malformed UN/LOCODE or a label longer than 200 characters.
    """
    ports = tuple(sorted({normalize_locode(p) for p in ports}))
    validate_role_ports(role, ports)
    if label is not None and len(label) > 200:
        raise ValueError("label is longer than 200 characters")
    key_id, key = generate_key()
    row = ApiKey(
        id=key_id,
        key_hash=hash_key(key),
        role=role.value,
        ports=list(ports),
        label=label,
        created_at=at or utcnow(),
        created_by=created_by,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    record_event(
        session, action="key.create", actor=created_by, role=actor_role, object_type="api_key", object_id=key_id,
        detail={"role": role.value, "ports": list(ports), "label": label, **seal_detail(row)},
    )
    return CreatedKey(key_id=key_id, key=key, role=role, ports=ports, label=label)


class KeySealError(Exception):
    """A presented key's row (role, ports, revocation, hash) does not match its seal in the keyed audit trail."""

    def __init__(self, key_id: str, problem: str) -> None:
        self.key_id = key_id
        self.problem = problem
        super().__init__(problem)


def principal_for_key(session: Session, key: str) -> Principal | None:
    """The principal of a presented key, ``None`` when it is malformed, unknown or revoked.

    The key's row is checked against its latest seal (:func:`serve.seals.api_key_seal_problem`)
    once the secret matches, so callers that cache the principal pay it once per fill.

    Raises
    ------
    KeySealError
        When the row was edited in the database (a key turned admin, given another port,
        un-revoked) or inserted there behind the service; refuse it like an unknown key.
    """
    key_id = parse_key_id(key)
    if key_id is None:
        return None
    row = session.get(ApiKey, key_id)
    if row is None or not key_matches(key, row.key_hash):
        return None
    problem = api_key_seal_problem(session, row)
    if problem is not None:
        raise KeySealError(row.id, problem)
    if row.revoked_at is not None:
        return None
    return Principal(key_id=row.id, role=Role(row.role), ports=tuple(row.ports))


def list_keys(session: Session) -> list[ApiKey]:
    """Every key (hashes included), oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(
    session: Session, key_id: str, *, actor: str = "system", actor_role: str | None = None, at: datetime | None = None
) -> bool:
    """Revoke ``key_id`` (audited as ``actor``, sealing the revocation); ``False`` when there is no such active key."""
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = at or utcnow()
    session.flush()
    record_event(
        session, action="key.revoke", actor=actor, role=actor_role, object_type="api_key", object_id=key_id, detail=seal_detail(row)
    )
    return True


class PrincipalCache:
    """Verified keys and their principals, each trusted for ``ttl_seconds`` after it was read. Thread-safe.

    Entries are keyed by the key's hash (plain keys are never kept). Only
    successful lookups are cached, so an unknown or revoked key always reads
    the store; a key revoked after it was cached is refused within
    ``ttl_seconds``. ``ttl_seconds == 0`` disables the cache.
    """

    def __init__(self, ttl_seconds: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        """The cached principal of ``key``, ``None`` when absent or expired."""
        if self.ttl_seconds <= 0:
            return None
        digest = hash_key(key)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or entry[0] <= self._clock():
                self._entries.pop(digest, None)
                return None
            return entry[1]

    def put(self, key: str, principal: Principal) -> None:
        """Trust ``key`` as ``principal`` (just read from the store) for ``ttl_seconds``."""
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                now = self._clock()
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[hash_key(key)] = (self._clock() + self.ttl_seconds, principal)
