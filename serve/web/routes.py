"""Sign-in, sign-out, the home page, the language switch, static files; :func:`install_web` mounts every page.

Sign-in is rate limited per client address (:class:`~serve.web.sessions.SignInRateLimiter`)
and per account (lockout, :mod:`serve.web.accounts`); every attempt and every
sign-out is recorded in the audit trail (``auth.sign_in``, ``auth.sign_out``).
"""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from features import clock
from serve.audit import record_event
from serve.deps import PublicDep
from serve.middleware import request_id_of
from serve.store.lists import lists_for_port
from serve.tables import StoredList
from serve.web import list_pages, other_pages
from serve.web.accounts import LANGUAGES, set_language, verify_sign_in
from serve.web.auth import ListPage, PageError, SignInRequired, check_csrf, cookie_signer, cookies_secure, current_session, form_data, login_redirect
from serve.web.render import redirect, render
from serve.web.sessions import LOGIN_CSRF_COOKIE, SESSION_COOKIE, SESSION_LIFETIME, SignInRateLimiter, end_session, open_session, tokens_match

router = APIRouter(include_in_schema=False)
STATIC_FILES = {"style.css": "text/css; charset=utf-8", "print.css": "text/css; charset=utf-8"}


@router.get("/static/{name}", dependencies=[PublicDep])
def static_file(name: Annotated[str, Path(max_length=40)]) -> Response:
    """The pages' style sheets (from the package; nothing is loaded from elsewhere)."""
    if name not in STATIC_FILES:
        raise PageError(404, "Page not found.")
    content = resources.files("serve.web").joinpath("static", name).read_bytes()
    return Response(content, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=cookies_secure(request), path="/")


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/") and not value.startswith("//") and "\\" not in value else "/"


def _login_form(request: Request, *, next_path: str, error: str | None = None, status: int = 200, username: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    response = render(request, None, "login.html", status=status, login_csrf=token, next_path=next_path, error=error, username=username)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, cookie_signer(request).sign(token), 1800)
    return response


@router.get("/login", dependencies=[PublicDep])
async def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query parameter's name
    """The sign-in form (fields ``username`` and ``password``)."""
    if await current_session(request) is not None:
        return redirect(_safe_next(next))
    return _login_form(request, next_path=_safe_next(next))


def _sign_in(request: Request, username: str, password: str) -> tuple[str | None, str]:
    """``(session token or None, outcome)`` for a sign-in attempt; audited."""
    database = request.app.state.database
    with database.write() as session:
        result = verify_sign_in(session, username, password)
        token = None
        if result.user is not None:
            token, _ = open_session(session, result.user.username)
        outcome = "ok" if result.user else ("locked" if result.now_locked else result.failure)
        record_event(
            session, action="auth.sign_in", actor=result.user.key_id if result.user else None, role=result.user.role if result.user else None,
            request_id=request_id_of(request.scope), object_type="web_user", object_id=username[:64], result=outcome,
            status_code=303 if result.user else 401, detail={"client": request.client.host if request.client else None},
        )
    return token, outcome or "failed"


@router.post("/login", dependencies=[PublicDep])
async def login(request: Request) -> Response:
    """Check the form's CSRF token, the address's rate and the password; start a session and go to ``next``."""
    form = await form_data(request)
    next_path = _safe_next(form.get("next"))
    username = (form.get("username") or "").strip().lower()[:64]
    limiter: SignInRateLimiter = request.app.state.web_sign_in_limiter
    client = request.client.host if request.client else "unknown"
    if limiter.blocked(client):
        return _login_form(request, next_path=next_path, error="Too many sign-in attempts from this computer. Wait a few minutes.", status=429)
    expected = cookie_signer(request).unsign(request.cookies.get(LOGIN_CSRF_COOKIE))
    if not tokens_match(form.get("csrf_token"), expected):
        return _login_form(request, next_path=next_path, error="The sign-in form expired. Please try again.", status=403)
    token, outcome = await run_in_threadpool(_sign_in, request, username, form.get("password") or "")
    if token is None:
        limiter.failed(client)
        message = "This account is locked after too many failed attempts. Try again in 15 minutes or ask an administrator." \
            if outcome == "locked" else "Wrong username or password."
        return _login_form(request, next_path=next_path, error=message, status=401, username=username)
    response = redirect(next_path)
    _set_cookie(request, response, SESSION_COOKIE, cookie_signer(request).sign(token), int(SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout", dependencies=[PublicDep])
async def logout(request: Request) -> Response:
    """End the session (CSRF-checked when there is one), audited; back to the sign-in page."""
    signed_in = await current_session(request)
    if signed_in is not None:
        form = await form_data(request)
        if not tokens_match(form.get("csrf_token"), signed_in.csrf_token):
            raise PageError(403, "This form has expired or did not come from this site. Reload the page and try again.")

        def end() -> None:
            with request.app.state.database.write() as session:
                end_session(session, signed_in.token_sha256)
                record_event(session, action="auth.sign_out", actor=signed_in.user.key_id, role=signed_in.user.role,
                             request_id=request_id_of(request.scope), object_type="web_user", object_id=signed_in.user.username, status_code=303)

        await run_in_threadpool(end)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
async def change_language(request: Request, page: ListPage) -> Response:
    """Store the user's language (``en``, ``es``, ``fr``, ``pt``) and go back to the page they were on."""
    form = await form_data(request)
    check_csrf(page, form)
    language = form.get("language", "")
    if language not in LANGUAGES:
        raise PageError(422, "Unknown language.")

    def store() -> None:
        with request.app.state.database.write() as session:
            set_language(session, page.username, language)

    await run_in_threadpool(store)
    return redirect(_safe_next(form.get("next")))


def _home_ports(request: Request, page) -> list[str]:  # noqa: ANN001 - PageCaller
    principal = page.caller.principal
    if principal.port_scoped:
        return list(principal.ports)
    with request.app.state.database.read() as session:
        return sorted(session.scalars(select(StoredList.port).distinct()).all())


@router.get("/")
def home(request: Request, page: ListPage) -> HTMLResponse:
    """The user's ports, each with today's lists and the latest ones, and the form that generates today's list."""
    today = clock.now().date()
    ports = []
    with request.app.state.database.read() as session:
        for port in _home_ports(request, page):
            todays, _ = lists_for_port(session, port, list_date=today, limit=20, offset=0)
            recent, _ = lists_for_port(session, port, list_date=None, limit=8, offset=0)
            ports.append({"port": port, "today": todays, "recent": [r for r in recent if r.list_date != today]})
    can_create = page.caller.principal.has(list_pages.Permission.LISTS_CREATE)
    return render(request, page, "home.html", ports=ports, can_create=can_create, defaults=list_pages.LIST_DEFAULTS,
                  directions=list_pages.supported_directions())


async def _page_error(request: Request, exc: PageError) -> HTMLResponse:
    signed_in = await current_session(request)
    language = signed_in.user.language if signed_in is not None else "en"
    return render(request, None, "error.html", status=exc.status, language=language, status_code=exc.status, message=exc.message,
                  signed_in=signed_in is not None)


async def _sign_in_required(request: Request, exc: SignInRequired) -> RedirectResponse:
    return redirect(login_redirect(exc.next_path))


def install_web(app: FastAPI) -> None:
    """Mount the pages on ``app`` with their error pages and the sign-in rate limiter."""
    app.state.web_sign_in_limiter = SignInRateLimiter()
    app.state.web_cookie_signer = None
    for r in (router, list_pages.router, other_pages.router):
        app.include_router(r)
    app.add_exception_handler(PageError, _page_error)  # type: ignore[arg-type]
    app.add_exception_handler(SignInRequired, _sign_in_required)  # type: ignore[arg-type]


def is_page_route(route: object) -> bool:
    """Whether an app route is one of the web pages (``serve.web``), as opposed to the API."""
    endpoint = getattr(getattr(route, "original_route", route), "endpoint", None)
    return getattr(endpoint, "__module__", "").startswith("serve.web")
