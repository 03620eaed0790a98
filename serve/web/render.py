"""Rendering pages: the Jinja2 environment, per-request language, security headers, the risk band."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from features import clock
from serve.web.accounts import LANGUAGES
from serve.web.auth import PageCaller
from serve.web.facts import port_label
from serve.web.i18n import LANGUAGE_NAMES, translate_reason, translations

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
"""No script runs on any page (there is none); nothing is framed, cached or loaded from elsewhere."""

RISK_BANDS = ((0.20, "very-high"), (0.05, "high"), (0.01, "elevated"), (0.0, "low"))
"""Model score (probability of a finding) -> band; the base rate of findings is well under 1%."""
BAND_NAMES = {"intel": "Intelligence hit", "very-high": "Very high", "high": "High", "elevated": "Elevated", "low": "Low"}


def risk_band(score: float, source: str | None = None) -> str:
    """The band an officer reads instead of a raw score; watchlist hits are ``intel`` whatever the score."""
    if source == "WATCHLIST":
        return "intel"
    for floor, band in RISK_BANDS:
        if score >= floor:
            return band
    return "low"


def _when(value: object, pattern: str) -> str:
    """A UTC instant (``datetime`` or ISO 8601 text) as ``pattern``; other values as text."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.astimezone(timezone.utc).strftime(pattern) if isinstance(value, datetime) else str(value)


@functools.cache
def environment() -> Environment:
    """The templates of ``serve/web/templates`` (autoescaped)."""
    env = Environment(loader=PackageLoader("serve.web", "templates"), autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    env.filters["port"] = port_label
    env.filters["when"] = lambda v: _when(v, "%Y-%m-%d %H:%M UTC")
    env.filters["short"] = lambda v: _when(v, "%Y-%m-%d %H:%M")
    env.filters["hm"] = lambda v: _when(v, "%m-%d %H:%M")
    env.filters["day"] = lambda v: "" if v is None else (v.strftime("%Y-%m-%d") if isinstance(v, datetime) else str(v))
    return env


def page_context(request: Request, page: PageCaller | None, language: str | None = None) -> dict[str, Any]:
    """What every template gets: ``_`` (gettext of the user's language), the user, their CSRF token, the languages."""
    lang = language or (page.language if page is not None else "en")
    gettext = translations(lang).gettext
    return {
        "_": gettext,
        "reason_text": lambda text: translate_reason(text, gettext),
        "band_name": lambda band: gettext(BAND_NAMES[band]),
        "lang": lang,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "user": None if page is None else page.signed_in.user,
        "csrf": None if page is None else page.csrf_token,
        "path": request.url.path,
        "today": clock.now().date(),
    }


def render(request: Request, page: PageCaller | None, template: str, *, status: int = 200, language: str | None = None, **context: Any) -> HTMLResponse:
    """Render ``template`` for the signed-in ``page`` caller (or nobody, on the sign-in page)."""
    html = environment().get_template(template).render(**page_context(request, page, language), **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """303 See Other (the browser GETs ``url``): every successful form post ends with one."""
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})
