"""Pages obey the API's rules: every page is gated, deny by default, another port's data is 404, every form needs its CSRF token.

Runs the real app in-process (``TestClient``) on a real SQLite store and a real
lake of manifests (the service tests' lake); no browser needed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from serve.app import create_app
from serve.deps import PUBLIC, iter_app_routes, route_rules
from serve.security import Permission, Role
from serve.settings import Settings
from serve.tables import AuditEvent
from serve.web.accounts import create_user
from serve.web.routes import is_page_route
from serve_helpers import OTHER_PORT, PORT, insert_list, sample_list
from web_helpers import PASSWORD

PUBLIC_PAGES = {"/login", "/logout", "/static/{name}"}
MANIFEST_OF = {PORT: f"M-{PORT}-00001", OTHER_PORT: f"M-{OTHER_PORT}-00001"}


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory):  # noqa: ANN201 - Path
    from conftest import serve_conftest

    return serve_conftest.build_service_lake(tmp_path_factory.mktemp("web-access-lake"))


@pytest.fixture
def app(tmp_path, lake_dir, monkeypatch):  # noqa: ANN201 - FastAPI
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'ccp.db'}", lake_dir=lake_dir))
    with app.state.database.write() as session:
        for name, role, ports in (("ana", "officer", (PORT,)), ("bruno", "officer", (OTHER_PORT,)), ("dora", "data_scientist", ()),
                                  ("carla", "auditor", ())):
            create_user(session, username=name, password=PASSWORD, role=Role(role), ports=ports, created_by="test")
    yield app
    app.state.database.dispose()


def client_for(app, username: str | None) -> TestClient:  # noqa: ANN001 - FastAPI
    """A client signed in as ``username`` through the sign-in form (``None``: nobody)."""
    client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    if username is not None:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        signed = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        assert signed.status_code == 303, signed.text
    return client


def csrf_of(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text).group(1)


def concrete(path: str, list_id: str) -> str:
    values = {"{list_id}": list_id, "{manifest_id}": MANIFEST_OF[PORT], "{port}": PORT, "{name}": "style.css"}
    for placeholder, value in values.items():
        path = path.replace(placeholder, value)
    assert "{" not in path, path
    return path


def page_routes(app) -> list:  # noqa: ANN001
    return [r for r in iter_app_routes(app) if is_page_route(r)]


def test_every_page_declares_one_rule_and_only_sign_in_sign_out_and_styles_are_public(app) -> None:
    pages = page_routes(app)
    assert len(pages) >= 18
    for route in pages:
        rules = route_rules(route)
        assert len(rules) == 1, route.path
        assert (rules == [PUBLIC]) == (route.path in PUBLIC_PAGES), route.path
        if route.path not in PUBLIC_PAGES:
            assert isinstance(rules[0], Permission)


def test_every_gated_page_sends_a_stranger_to_the_sign_in_form(app) -> None:
    stranger = client_for(app, None)
    list_id = str(uuid.uuid4())
    for route in page_routes(app):
        if route.path in PUBLIC_PAGES:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            response = stranger.request(method, concrete(route.path, list_id), data={})
            assert response.status_code == 303 and response.headers["location"].startswith("/login"), (method, route.path)


def test_another_ports_data_answers_exactly_like_missing_data_on_every_page(app) -> None:
    list_id = insert_list(app.state.database, sample_list(OTHER_PORT))
    ana = client_for(app, "ana")
    token = csrf_of(ana)
    for suffix in ("", "/deferred", "/print", "/print.pdf", "/items/M-1/outcome"):
        denied = ana.get(f"/lists/{list_id}{suffix}")
        absent = ana.get(f"/lists/{uuid.uuid4()}{suffix}")
        assert denied.status_code == absent.status_code == 404, suffix
        assert denied.text == absent.text and "CSQU3054383" not in denied.text
    amended = ana.post(f"/lists/{list_id}/amendments", data={"csrf_token": token, "action": "REMOVE", "manifest_id": "M-1", "reason": "not mine"})
    assert amended.status_code == 404
    assert ana.get(f"/containers/{MANIFEST_OF[OTHER_PORT]}").status_code == ana.get("/containers/M-NOWHERE-1").status_code == 404
    assert ana.get(f"/containers/{MANIFEST_OF[PORT]}").status_code == 200
    assert ana.post(f"/ports/{OTHER_PORT}/lists", data={"csrf_token": token, "capacity": "5"}).status_code == 404


def test_pages_refuse_roles_without_the_permission_and_audit_it(app) -> None:
    list_id = insert_list(app.state.database, sample_list(PORT))
    carla, dora, ana = client_for(app, "carla"), client_for(app, "dora"), client_for(app, "ana")
    assert carla.get(f"/lists/{list_id}").status_code == 200  # auditors read every port
    assert carla.get(f"/lists/{list_id}/items/M-1/outcome").status_code == 403
    assert carla.post(f"/lists/{list_id}/amendments", data={"csrf_token": csrf_of(carla), "action": "REMOVE", "manifest_id": "M-1",
                                                            "reason": "auditors read only"}).status_code == 403
    assert dora.get("/audit").status_code == ana.get("/audit").status_code == 403
    assert carla.get("/audit").status_code == 200
    with app.state.database.read() as session:
        denied = session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.denied")).all()
    assert {e.actor for e in denied} >= {"u-carla", "u-dora", "u-ana"}


def test_every_form_post_without_its_csrf_token_is_refused(app) -> None:
    list_id = insert_list(app.state.database, sample_list(PORT))
    ana = client_for(app, "ana")
    for route in page_routes(app):
        if "POST" not in route.methods or route.path in PUBLIC_PAGES:
            continue
        if route.path.startswith("/audit"):
            continue  # auditors only: checked below
        for data in ({}, {"csrf_token": "forged"}):
            response = ana.post(concrete(route.path, list_id), data=data)
            assert response.status_code == 403, (route.path, data)
    carla = client_for(app, "carla")
    assert carla.post(f"/audit/lists/{list_id}/replay", data={}).status_code == 403
    assert ana.post("/logout", data={}).status_code == 403  # signing someone out needs the token too
    assert ana.get("/").status_code == 200  # ... so the session is still open


def test_sign_in_without_the_form_token_is_refused(app) -> None:
    client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    response = client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert response.status_code == 403 and "ccp_session" not in response.cookies


def test_session_cookie_is_http_only_strict_and_secure_unless_on_loopback(app, tmp_path, lake_dir) -> None:
    ana = client_for(app, "ana")
    cookie = next(c for c in ana.cookies.jar if c.name == "ccp_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "strict" and not cookie.secure
    remote = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'remote.db'}", lake_dir=lake_dir, host="0.0.0.0", allow_remote=True))
    try:
        page = TestClient(remote, base_url="http://127.0.0.1").get("/login")
        assert "secure" in page.headers["set-cookie"].lower()
    finally:
        remote.state.database.dispose()


def test_five_wrong_passwords_lock_the_account_and_every_attempt_is_audited(app) -> None:
    client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)

    def attempt(password: str) -> int:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        return client.post("/login", data={"username": "ana", "password": password, "csrf_token": token}).status_code

    assert [attempt("wrong password") for _ in range(5)] == [401] * 5
    assert attempt(PASSWORD) == 401  # locked: even the right password is refused
    with app.state.database.read() as session:
        results = [e.result for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_in").order_by(AuditEvent.seq))]
    assert results == ["bad_password"] * 4 + ["locked", "locked"]


def test_failed_sign_ins_from_one_address_are_rate_limited(app) -> None:
    from serve.web.sessions import SignInRateLimiter

    assert app.state.web_sign_in_limiter.limit == 20  # the service's setting: 20 failures per address in 5 minutes
    app.state.web_sign_in_limiter = SignInRateLimiter(limit=3)  # the same limiter with a smaller limit keeps the test short
    client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    statuses = []
    for username, password in (("nobody1", "x" * 12), ("ana", "wrong password"), ("nobody2", "x" * 12), ("ana", PASSWORD), ("carla", PASSWORD)):
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        statuses.append(client.post("/login", data={"username": username, "password": password, "csrf_token": token}).status_code)
    assert statuses == [401, 401, 401, 429, 429]  # even the right password waits once the address is over the limit
