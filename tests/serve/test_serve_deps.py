"""Deny by default: every route declares exactly one authorization rule; no key -> 401, counted per client and minute."""

from __future__ import annotations

import json
import re

import pytest
from fastapi import APIRouter
from sqlalchemy import select

from serve.app import create_app
from serve.deps import PUBLIC, describe_route, iter_app_routes, route_rules, ungated_routes
from serve.security import Permission
from serve.tables import AuditEvent, AuthFailureCount
from serve.web.routes import is_page_route

PUBLIC_PAGES = {"/login", "/logout", "/static/{name}"}  # the sign-in form, signing out, style sheets

PUBLIC_ROUTES = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs/assets/{name}", "/v1/exchange/inbox"}  # the inbox: a peer signature authenticates


def test_every_route_declares_exactly_one_authorization_rule(app):
    routes = iter_app_routes(app)
    assert len(routes) > 15
    assert ungated_routes(app) == []
    for route in routes:
        rules = route_rules(route)
        assert len(rules) == 1, describe_route(route)
        if route.path in PUBLIC_ROUTES | PUBLIC_PAGES:
            assert rules == [PUBLIC]
        else:
            assert isinstance(rules[0], Permission), describe_route(route)


def test_an_ungated_route_is_detected(app):
    router = APIRouter()

    @router.get("/v1/leak")
    def leak() -> dict:
        return {}

    app.include_router(router)
    assert ungated_routes(app) == ["GET /v1/leak"]


def _concrete(path: str) -> str:
    replacements = {
        "{list_id}": "0b6b2a58-8a7c-4a43-9ad2-0cf3a7e0f1a1",
        "{port}": "NLRTM",
        "{container}": "CSQU3054383",
        "{alert_id}": "WL-1",
        "{code}": "COC-COVER-LOAD",
        "{version}": "1",
        "{message_id}": "PCU-ECGYE:0000000000",
    }
    for placeholder, value in replacements.items():
        path = path.replace(placeholder, value)
    assert not re.search(r"{\w+}", path), path
    return path


def test_every_protected_route_without_key_is_401_and_counted_in_one_row_per_client_and_minute(app, client, database):
    protected = [r for r in iter_app_routes(app) if r.path not in PUBLIC_ROUTES and not is_page_route(r)]  # pages: tests/web
    calls = 0
    for route in protected:
        for method in sorted(route.methods - {"HEAD"}):
            response = client.request(method, _concrete(route.path), json={} if method == "POST" else None)
            assert response.status_code == 401, (method, route.path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json() == {"detail": "not authenticated"}
            calls += 1
    unknown_key = client.get("/v1/rules", headers={"Authorization": "Bearer ccp_000000000000_" + "x" * 43})
    malformed = client.get("/v1/rules", headers={"Authorization": "Bearer nonsense"})
    assert unknown_key.status_code == malformed.status_code == 401
    with database.read() as session:
        assert session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.failure")).all() == []
    assert app.state.auth_failures.flush() == 1
    with database.read() as session:
        rows = session.scalars(select(AuthFailureCount)).all()
        failures = session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.failure")).all()
    assert [(r.client, r.missing, r.invalid) for r in rows] == [("testclient", calls, 2)]
    assert len(failures) == 1
    assert failures[0].status_code == 401 and failures[0].result == "unauthenticated"
    assert json.loads(failures[0].detail) == {"minute": rows[0].minute.isoformat(), "missing": calls, "invalid": 2}


def test_later_failures_of_the_same_minute_update_the_same_row(app, client, database):
    for _ in range(3):
        client.get("/v1/rules")
    app.state.auth_failures.flush()
    client.get("/v1/rules", headers={"Authorization": "Bearer ccp_000000000000_" + "y" * 43})
    app.state.auth_failures.flush()
    with database.read() as session:
        rows = session.scalars(select(AuthFailureCount)).all()
    assert [(r.missing, r.invalid) for r in rows] == [(3, 1)]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_public_routes_need_no_key(client, path):
    assert client.get(path).status_code in (200, 503)


def test_readyz_shows_only_booleans_and_is_503_without_engine(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body == {"ready": False, "checks": {"store": True, "engine": False}}


def test_create_app_refuses_to_start_with_an_ungated_route(settings, monkeypatch):
    import serve.app as app_module

    router = APIRouter()

    @router.get("/v1/leak")
    def leak() -> dict:
        return {}

    monkeypatch.setattr(app_module, "ROUTERS", (*app_module.ROUTERS, router))
    with pytest.raises(RuntimeError, match="/v1/leak"):
        create_app(settings)
