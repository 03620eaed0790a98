"""Signed session cookies, CSRF tokens and sign-in rate limiting.

A session is a random 256-bit token; the cookie carries it signed
(``itsdangerous``, key in ``web_secrets``, created at first use) and the store
keeps only its sha256 with its CSRF token and expiry, so a session can be
ended server-side (sign-out, disabled user, reset password). Cookies are
HttpOnly, SameSite=Strict and Secure unless the service listens on loopback.

Every form carries the session's CSRF token (``csrf_token``); the sign-in
form, which has no session yet, carries a signed double-submit token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, Signer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serve.db import Database, utcnow
from serve.tables import WebSecret, WebSession, WebUser
from serve.web.accounts import UserView, _view

SESSION_COOKIE = "ccp_session"
LOGIN_CSRF_COOKIE = "ccp_login_csrf"
SESSION_LIFETIME = timedelta(hours=12)
"""One working shift; sign in again after it."""
SIGNING_SECRET = "session_signing"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def signing_key(database: Database) -> bytes:
    """The cookie-signing key (created once, at first use, in ``web_secrets``)."""
    with database.read() as session:
        row = session.get(WebSecret, SIGNING_SECRET)
        if row is not None:
            return row.value.encode()
    try:
        with database.write() as session:
            session.add(WebSecret(name=SIGNING_SECRET, value=secrets.token_hex(32), created_at=utcnow()))
    except IntegrityError:
        pass  # another worker created it first
    with database.read() as session:
        return session.get(WebSecret, SIGNING_SECRET).value.encode()


class CookieSigner:
    """Signs and checks cookie values with the store's key (read once per process)."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._signer: Signer | None = None
        self._lock = threading.Lock()

    def _get(self) -> Signer:
        with self._lock:
            if self._signer is None:
                self._signer = Signer(signing_key(self._database), salt="ccp-web")
            return self._signer

    def sign(self, value: str) -> str:
        return self._get().sign(value).decode()

    def unsign(self, cookie: str | None) -> str | None:
        """The value of a validly signed cookie, ``None`` otherwise."""
        if not cookie or len(cookie) > 512:
            return None
        try:
            return self._get().unsign(cookie).decode()
        except BadSignature:
            return None


@dataclass(frozen=True)
class SignedIn:
    """A live session: its user and CSRF token."""

    user: UserView
    csrf_token: str
    token_sha256: str


def open_session(session: Session, username: str) -> tuple[str, SignedIn]:
    """Start a session for ``username`` (in a write unit of work); ``(token, signed_in)``."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(token_sha256=_token_hash(token), username=username, csrf_token=csrf, created_at=now,
                     expires_at=now + SESSION_LIFETIME, revoked_at=None)
    session.add(row)
    user = session.get(WebUser, username)
    return token, SignedIn(_view(user), csrf, row.token_sha256)


def find_session(session: Session, token: str) -> SignedIn | None:
    """The live session of ``token``: not ended, not expired, its user not disabled."""
    row = session.get(WebSession, _token_hash(token))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(WebUser, row.username)
    if user is None or user.disabled:
        return None
    return SignedIn(_view(user), row.csrf_token, row.token_sha256)


def end_session(session: Session, token_sha256: str) -> None:
    """Mark the session ended (sign-out)."""
    row = session.get(WebSession, token_sha256)
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def tokens_match(presented: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens (``False`` when either is missing)."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


class SignInRateLimiter:
    """At most ``limit`` failed sign-ins per client address in a sliding ``window_seconds`` (monotonic time).

    Complements the per-account lockout (:mod:`serve.web.accounts`): one
    address cannot try passwords against many accounts quickly. Successful
    sign-ins do not count (a unit's officers often share one address).
    """

    def __init__(self, *, limit: int = 20, window_seconds: float = 300.0, max_clients: int = 10_000) -> None:
        self.limit, self.window = limit, window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._max_clients = max_clients

    def _recent(self, client: str, now: float) -> deque[float]:
        seen = self._failures.setdefault(client, deque())
        while seen and now - seen[0] > self.window:
            seen.popleft()
        return seen

    def blocked(self, client: str) -> bool:
        """Whether ``client`` has reached the limit of failures in the window."""
        with self._lock:
            return len(self._recent(client, time.monotonic())) >= self.limit

    def failed(self, client: str) -> None:
        """Count a failed sign-in by ``client``."""
        with self._lock:
            if len(self._failures) > self._max_clients:
                self._failures.clear()
            self._recent(client, time.monotonic()).append(time.monotonic())
