"""Who is signed in, what they may do, and the CSRF check of every form.

:func:`require_page` is the pages' counterpart of :func:`serve.deps.require`:
it finds the session of the request's cookie and demands a permission of the
user's role. It carries the permission in :data:`serve.deps.AUTHZ_ATTRIBUTE`,
so the route-walk test (deny by default) covers every page. Without a session
a page redirects to ``/login``; without the permission it answers 403
(audited); another port's data answers 404 (the pages raise :class:`PageError`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from serve.audit import record_event
from serve.db import Database
from serve.deps import AUTHZ_ATTRIBUTE, Caller
from serve.middleware import request_id_of
from serve.security import Permission
from serve.settings import is_loopback_host
from serve.web.sessions import SESSION_COOKIE, CookieSigner, SignedIn, find_session, tokens_match


class PageError(Exception):
    """An error page: ``status`` (403, 404, 422 ...) with a message key (translated when shown)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status, self.message = status, message


class SignInRequired(Exception):
    """No live session: redirect to ``/login?next=<path>``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class PageCaller:
    """The signed-in user of a page request: the API's :class:`~serve.deps.Caller` plus session facts."""

    caller: Caller
    signed_in: SignedIn

    @property
    def username(self) -> str:
        return self.signed_in.user.username

    @property
    def csrf_token(self) -> str:
        return self.signed_in.csrf_token

    @property
    def language(self) -> str:
        return self.signed_in.user.language


def cookie_signer(request: Request) -> CookieSigner:
    """The app's cookie signer (created on first use)."""
    state = request.app.state
    if getattr(state, "web_cookie_signer", None) is None:
        state.web_cookie_signer = CookieSigner(state.database)
    return state.web_cookie_signer


def cookies_secure(request: Request) -> bool:
    """Cookies get ``Secure`` unless the service listens on loopback (plain HTTP on this machine only)."""
    return not is_loopback_host(request.app.state.settings.host)


def _lookup(database: Database, token: str) -> SignedIn | None:
    with database.read() as session:
        return find_session(session, token)


async def current_session(request: Request) -> SignedIn | None:
    """The live session of the request's cookie, ``None`` when there is none."""
    token = cookie_signer(request).unsign(request.cookies.get(SESSION_COOKIE))
    if token is None:
        return None
    return await run_in_threadpool(_lookup, request.app.state.database, token)


def _audit_denied(request: Request, signed_in: SignedIn, permission: Permission) -> None:
    with request.app.state.database.write() as session:
        record_event(
            session, action="auth.denied", actor=signed_in.user.key_id, role=signed_in.user.role, request_id=request_id_of(request.scope),
            result="denied", status_code=403, object_type="permission", object_id=permission.value,
            detail={"method": request.method, "path": request.url.path[:200]},
        )


_PAGE_REQUIREMENTS: dict[Permission, Callable[..., Any]] = {}


def require_page(permission: Permission) -> Callable[..., Any]:
    """The dependency that finds the signed-in user and demands ``permission`` of their role."""
    if permission in _PAGE_REQUIREMENTS:
        return _PAGE_REQUIREMENTS[permission]

    async def dependency(request: Request) -> PageCaller:
        signed_in = await current_session(request)
        if signed_in is None:
            target = request.url.path if request.method == "GET" else "/"
            raise SignInRequired(target)
        caller = Caller(principal=signed_in.user.principal(), request_id=request_id_of(request.scope) or "")
        if not caller.principal.has(permission):
            await run_in_threadpool(_audit_denied, request, signed_in, permission)
            raise PageError(403, "You are not permitted to open this page.")
        return PageCaller(caller, signed_in)

    dependency.__name__ = f"page_{permission.name.lower()}"
    setattr(dependency, AUTHZ_ATTRIBUTE, permission)
    _PAGE_REQUIREMENTS[permission] = dependency
    return dependency


async def form_data(request: Request) -> dict[str, str]:
    """The posted form as a dict of strings (first value of each field; files refused)."""
    form = await request.form(max_files=0, max_fields=64)
    return {k: v for k, v in form.items() if isinstance(v, str)}


def check_csrf(page: PageCaller, form: dict[str, str]) -> None:
    """403 unless the form carries the session's CSRF token."""
    if not tokens_match(form.get("csrf_token"), page.csrf_token):
        raise PageError(403, "This form has expired or did not come from this site. Reload the page and try again.")


def login_redirect(next_path: str) -> str:
    """``/login?next=...`` for a local path only (no open redirect)."""
    safe = next_path if next_path.startswith("/") and not next_path.startswith("//") else "/"
    return f"/login?next={quote(safe)}"


ListPage = Annotated[PageCaller, Depends(require_page(Permission.LISTS_READ))]
ListWriterPage = Annotated[PageCaller, Depends(require_page(Permission.LISTS_CREATE))]
RiskPage = Annotated[PageCaller, Depends(require_page(Permission.RISK_READ))]
OutcomePage = Annotated[PageCaller, Depends(require_page(Permission.OUTCOMES_CREATE))]
AuditPage = Annotated[PageCaller, Depends(require_page(Permission.AUDIT_READ))]
ModelPage = Annotated[PageCaller, Depends(require_page(Permission.MODELS_READ))]
