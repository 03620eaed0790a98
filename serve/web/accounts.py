"""User accounts of the web application: create, list, disable, reset a password, verify a sign-in.

Passwords are hashed with Argon2 (``pwdlib``). Every user has a backing row in
``api_keys`` with id ``u-<username>`` whose secret is never issued: it is what
lists, amendments and outcomes written from the pages are recorded under, so
the API's stores and audit trail serve people and machines alike.

Sign-in lockout: after :data:`MAX_FAILED_LOGINS` consecutive failures the
account is locked for :data:`LOCKOUT`; a successful sign-in resets the count.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from serve.audit import record_event
from serve.db import utcnow
from serve.seals import seal_detail
from serve.security import Principal, Role, hash_key, validate_role_ports
from serve.tables import ApiKey, WebSession, WebUser
from serve.validators import normalize_locode

USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{2,11}$")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
LANGUAGES = ("en", "es", "fr", "pt")
KEY_ID_PREFIX = "u-"

_hasher = PasswordHash((Argon2Hasher(),))
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class AccountError(ValueError):
    """A refused account operation (bad username, weak password, unknown user ...)."""


@dataclass(frozen=True)
class UserView:
    """What pages and the command line show of a user."""

    username: str
    role: str
    ports: tuple[str, ...]
    language: str
    disabled: bool
    locked_until: datetime | None
    key_id: str

    def principal(self) -> Principal:
        """The user as the API's principal (their backing key id, role and ports)."""
        return Principal(key_id=self.key_id, role=Role(self.role), ports=self.ports)


def _view(row: WebUser) -> UserView:
    return UserView(row.username, row.role, tuple(row.ports), row.language, row.disabled, row.locked_until, row.key_id)


def check_password(password: str) -> None:
    """Refuse passwords shorter than :data:`MIN_PASSWORD_LENGTH` or longer than :data:`MAX_PASSWORD_LENGTH` characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"password: at most {MAX_PASSWORD_LENGTH} characters")


def _audit_sealed(session: Session, action: str, actor: str, user: WebUser, *rows: ApiKey, **detail: object) -> None:
    """Record ``action`` on ``user`` in the audit trail, sealing the user row and ``rows`` (:mod:`serve.seals`)."""
    record_event(session, action=action, actor=actor, role="account", object_type="web_user", object_id=user.username,
                 detail={**detail, **seal_detail(user, *rows)})


def create_user(session: Session, *, username: str, password: str, role: Role, ports: tuple[str, ...] = (), language: str = "en", created_by: str) -> UserView:
    """Create a user and its backing API-key row (in ``session``, a write unit of work), audited as
    ``user.create`` by ``created_by`` with both rows sealed.

    Raises
    ------
    AccountError
        Username not 3-12 of ``a-z0-9._-`` starting with a letter, taken, weak password,
        officer without a port (or another role with one), unknown language.
    """
    if not USERNAME_RE.match(username):
        raise AccountError("username: 3-12 characters a-z 0-9 . _ - starting with a letter")
    check_password(password)
    if language not in LANGUAGES:
        raise AccountError(f"language: one of {', '.join(LANGUAGES)}")
    try:
        ports = tuple(normalize_locode(p) for p in ports)
        validate_role_ports(role, ports)
    except ValueError as exc:
        raise AccountError(str(exc).replace("key", "user")) from None
    if session.get(WebUser, username) is not None:
        raise AccountError(f"username: {username!r} already exists")
    now = utcnow()
    key_id = KEY_ID_PREFIX + username
    session.add(ApiKey(id=key_id, key_hash=hash_key(secrets.token_urlsafe(48)), role=role.value, ports=list(ports),
                       label=f"web user {username}", created_at=now, created_by=created_by))
    session.flush()
    row = WebUser(username=username, password_hash=_hasher.hash(password), role=role.value, ports=list(ports), language=language,
                  key_id=key_id, disabled=False, failed_logins=0, locked_until=None, created_at=now, password_changed_at=now)
    session.add(row)
    session.flush()
    _audit_sealed(session, "user.create", created_by, row, session.get(ApiKey, key_id), role=role.value, ports=list(ports))
    return _view(row)


def list_users(session: Session) -> list[UserView]:
    """Every user, by username."""
    return [_view(r) for r in session.scalars(select(WebUser).order_by(WebUser.username))]


def get_user(session: Session, username: str) -> UserView | None:
    """The user ``username`` (``None`` when there is none)."""
    row = session.get(WebUser, username)
    return None if row is None else _view(row)


def _existing(session: Session, username: str) -> WebUser:
    row = session.get(WebUser, username)
    if row is None:
        raise AccountError(f"no user {username!r}")
    return row


def revoke_sessions(session: Session, username: str) -> int:
    """End every open session of ``username``; how many."""
    now = utcnow()
    rows = session.scalars(select(WebSession).where(WebSession.username == username, WebSession.revoked_at.is_(None))).all()
    for r in rows:
        r.revoked_at = now
    return len(rows)


def disable_user(session: Session, username: str, *, actor: str) -> UserView:
    """Disable ``username`` (no sign-in, open sessions ended, backing key revoked), audited as ``user.disable`` by ``actor``."""
    row = _existing(session, username)
    row.disabled = True
    key = session.get(ApiKey, row.key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
    revoke_sessions(session, username)
    session.flush()
    _audit_sealed(session, "user.disable", actor, row, *(k for k in (key,) if k is not None))
    return _view(row)


def reset_password(session: Session, username: str, password: str, *, actor: str) -> UserView:
    """Set a new password, clear the lockout and end open sessions, audited as ``user.reset_password`` by ``actor``."""
    row = _existing(session, username)
    check_password(password)
    row.password_hash = _hasher.hash(password)
    row.password_changed_at = utcnow()
    row.failed_logins, row.locked_until = 0, None
    revoke_sessions(session, username)
    session.flush()
    _audit_sealed(session, "user.reset_password", actor, row)
    return _view(row)


def set_language(session: Session, username: str, language: str) -> None:
    """Store the user's language (one of :data:`LANGUAGES`)."""
    if language not in LANGUAGES:
        raise AccountError(f"language: one of {', '.join(LANGUAGES)}")
    _existing(session, username).language = language


@dataclass(frozen=True)
class SignInResult:
    """``user`` when the sign-in succeeded; otherwise why not (``unknown``, ``disabled``, ``locked``, ``bad_password``)."""

    user: UserView | None
    failure: str | None = None
    now_locked: bool = False


def verify_sign_in(session: Session, username: str, password: str, *, at: datetime | None = None) -> SignInResult:
    """Check a sign-in and update the lockout counters (in ``session``, a write unit of work).

    The password is hashed even for an unknown user (same cost, no timing oracle).
    A locked account is refused even with the right password until the lock expires.
    """
    at = at or utcnow()
    row = session.get(WebUser, username) if USERNAME_RE.match(username or "") else None
    password = password[:MAX_PASSWORD_LENGTH]
    if row is None:
        _hasher.verify(password, _DUMMY_HASH)
        return SignInResult(None, "unknown")
    if row.locked_until is not None and row.locked_until > at:
        _hasher.verify(password, _DUMMY_HASH)
        return SignInResult(None, "locked")
    valid = _hasher.verify(password, row.password_hash)
    if row.disabled:
        return SignInResult(None, "disabled")
    if not valid:
        row.failed_logins += 1
        locked = row.failed_logins >= MAX_FAILED_LOGINS
        if locked:
            row.locked_until, row.failed_logins = at + LOCKOUT, 0
        return SignInResult(None, "bad_password", now_locked=locked)
    row.failed_logins, row.locked_until = 0, None
    return SignInResult(_view(row))
