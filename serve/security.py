"""Roles, permissions and API keys.

Deny by default: a role holds exactly the permissions listed in
:data:`ROLE_PERMISSIONS`. Officers are further restricted to their ports
(:meth:`Principal.can_access_port`); other roles are not port-scoped.

API keys look like ``ccp_<id>_<secret>``: ``id`` (12 hex characters) is a
non-secret prefix used to name the key in audit events and listings; the
secret carries 256 bits of randomness. Only ``sha256(key)`` is stored.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

KEY_PREFIX = "ccp"
_KEY_RE = re.compile(r"^ccp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class Role(str, enum.Enum):
    """Who a key belongs to."""

    OFFICER = "officer"
    DATA_SCIENTIST = "data_scientist"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Permission(str, enum.Enum):
    """What a route needs; each route declares exactly one (see :func:`serve.deps.require`)."""

    LISTS_CREATE = "lists:create"
    LISTS_READ = "lists:read"
    RISK_READ = "risk:read"
    OUTCOMES_CREATE = "outcomes:create"
    WATCHLIST_READ = "watchlist:read"
    WATCHLIST_WRITE = "watchlist:write"
    RULES_READ = "rules:read"
    RULES_WRITE = "rules:write"
    MODELS_READ = "models:read"
    MODELS_RELOAD = "models:reload"
    AUDIT_READ = "audit:read"
    EXCHANGE_READ = "exchange:read"
    EXCHANGE_WRITE = "exchange:write"


_READ_ALL = frozenset(
    {
        Permission.LISTS_READ,
        Permission.RISK_READ,
        Permission.WATCHLIST_READ,
        Permission.RULES_READ,
        Permission.MODELS_READ,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OFFICER: frozenset(
        {
            Permission.LISTS_CREATE,
            Permission.LISTS_READ,
            Permission.RISK_READ,
            Permission.OUTCOMES_CREATE,
            Permission.WATCHLIST_READ,
            Permission.RULES_READ,
            Permission.MODELS_READ,
            Permission.EXCHANGE_READ,
            Permission.EXCHANGE_WRITE,
        }
    ),
    Role.DATA_SCIENTIST: _READ_ALL | {Permission.RULES_WRITE, Permission.MODELS_RELOAD},
    Role.AUDITOR: _READ_ALL | {Permission.AUDIT_READ, Permission.EXCHANGE_READ},
    Role.ADMIN: frozenset(Permission),
}
"""The complete access matrix. Anything not listed is denied."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a key id, its role and (for officers) its ports."""

    key_id: str
    role: Role
    ports: tuple[str, ...] = ()

    def has(self, permission: Permission) -> bool:
        """Whether the role grants ``permission``."""
        return permission in ROLE_PERMISSIONS[self.role]

    @property
    def port_scoped(self) -> bool:
        """Whether the caller only sees its own ports (officers)."""
        return self.role is Role.OFFICER

    def can_access_port(self, port: str) -> bool:
        """Whether data of ``port`` may be shown to or written by the caller."""
        return not self.port_scoped or port in self.ports


def hash_key(key: str) -> str:
    """sha256 hex digest of an API key (what the store keeps)."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> tuple[str, str]:
    """A new random API key and its id.

    Returns
    -------
    tuple[str, str]
        ``(key_id, key)``; show ``key`` once and store only :func:`hash_key` of it.

    Examples
    --------
    >>> key_id, key = generate_key()
    >>> parse_key_id(key) == key_id
    True
    """
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def parse_key_id(key: str) -> str | None:
    """The id part of a well-formed key, ``None`` for anything else."""
    match = _KEY_RE.match(key)
    return match.group(1) if match else None


def key_matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(key), stored_hash)


def validate_role_ports(role: Role, ports: tuple[str, ...]) -> None:
    """Officers need at least one port; other roles take none. Raises ``ValueError``."""
    if role is Role.OFFICER and not ports:
        raise ValueError("an officer key needs at least one --port")
    if role is not Role.OFFICER and ports:
        raise ValueError(f"a {role.value} key is not port-scoped; do not give --port")


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``per_second`` requests on average, up to ``burst`` at once."""

    per_second: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and self.burst >= 1):
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")


class RateLimiter:
    """Per-API-key request rate limits (token buckets), in memory, thread-safe.

    Parameters
    ----------
    by_role
        The limit of every key of a role.
    by_key
        Limits of particular key ids, overriding their role's.
    monotonic
        The time source for refills (monotonic seconds; not a date).

    Notes
    -----
    Each process keeps its own buckets: with ``n`` uvicorn workers a key may
    reach up to ``n`` times its limit.
    """

    def __init__(
        self,
        by_role: Mapping[Role, RateLimit],
        by_key: Mapping[str, RateLimit] | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        missing = set(Role) - set(by_role)
        if missing:
            raise ValueError(f"no rate limit for roles: {', '.join(sorted(r.value for r in missing))}")
        self._by_role = dict(by_role)
        self._by_key = dict(by_key or {})
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)

    def limit_of(self, principal: Principal) -> RateLimit:
        """The limit that applies to ``principal``'s key."""
        return self._by_key.get(principal.key_id) or self._by_role[principal.role]

    def acquire(self, principal: Principal) -> float:
        """Take one request from the key's bucket: ``0.0`` when allowed, else the seconds until one is available."""
        limit = self.limit_of(principal)
        now = self._monotonic()
        with self._lock:
            tokens, at = self._buckets.get(principal.key_id, (limit.burst, now))
            tokens = min(limit.burst, tokens + (now - at) * limit.per_second)
            if tokens >= 1:
                self._buckets[principal.key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[principal.key_id] = (tokens, now)
            return (1 - tokens) / limit.per_second


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` value (whole seconds, at least 1) for a wait of ``seconds``.

    Examples
    --------
    >>> retry_after_header(0.02), retry_after_header(1.5)
    ('1', '2')
    """
    return str(max(1, math.ceil(seconds)))
