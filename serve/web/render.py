"""Rendering pages: the Jinja2 environment, per-request language, security headers, the risk band."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from features import clock
from models.calibration import chance_text
from serve.web.accounts import LANGUAGES
from serve.web.auth import PageCaller
from serve.web.facts import port_label
from serve.web.i18n import LANGUAGE_NAMES, N_, translate_reason, translations

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
"""No script runs on any page (there is none); nothing is framed, cached or loaded from elsewhere."""

BAND_NAMES = {"VERY_HIGH": N_("Very high"), "HIGH": N_("High"), "MEDIUM": N_("Medium"), "LOW": N_("Low"), "NOT_RATED": N_("Not rated")}
"""Officer-facing names of the calibrated risk bands (:data:`models.calibration.RISK_BANDS`)."""


def risk_band(row: dict[str, Any]) -> str:
    """The calibrated band recorded on a list row (``NOT_RATED`` when the list has none: day one, or recorded before bands).

    The band is the model's calibrated risk, whatever the row's selection source (shown beside it).
    """
    band = row.get("risk_band")
    return band if band in BAND_NAMES else "NOT_RATED"


risk_chance = chance_text
"""A calibrated probability as officers read it (``"12%"``, ``"0.4%"``, ``"<0.1%"``); empty when not rated."""


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
        "band_css": lambda band: band.lower().replace("_", "-"),
        "risk_chance": lambda p: "" if p is None else gettext("%(chance)s chance of a finding") % {"chance": risk_chance(p)},
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
