"""Errors never show stack traces: a locked or missing store is 503 with Retry-After; bugs are a bare 500."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from serve.app import create_app
from serve.settings import Settings
from serve_helpers import PORT, idem, outcome_body


@pytest.fixture
def impatient(tmp_path, service_lake_dir):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ccp.db'}", sqlite_busy_timeout_ms=100, lake_dir=service_lake_dir)
    return settings, create_app(settings)


def test_locked_store_answers_503_with_retry_after(impatient, make_key_for):
    settings, app = impatient
    headers = make_key_for(app, "officer", PORT)
    blocker = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.post("/v1/inspection-outcomes", json=outcome_body(), headers={**headers, **idem()})
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json() == {"detail": "storage temporarily unavailable; retry", "request_id": response.headers["x-request-id"]}
    assert "Traceback" not in response.text and "sqlite" not in response.text.lower()


def test_the_write_succeeds_once_the_lock_is_released(impatient, make_key_for):
    _, app = impatient
    headers = make_key_for(app, "officer", PORT)
    with TestClient(app) as client:
        assert client.post("/v1/inspection-outcomes", json=outcome_body(), headers={**headers, **idem()}).status_code == 201


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/inspection-outcomes", b"{not json"),
        ("GET", "/v1/inspection-lists/not-a-uuid", None),
        ("GET", "/v1/audit/events?since=yesterday", None),
        ("GET", "/v1/nowhere", None),
    ],
)
def test_client_errors_carry_no_traceback(client, make_key, method, path, body):
    headers = {**make_key("admin"), **idem(), "Content-Type": "application/json"}
    response = client.request(method, path, content=body, headers=headers)
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text and 'File "' not in response.text


@pytest.fixture
def make_key_for():
    from serve.security import Role
    from serve.store.keys import create_key

    def make(app, role: str, *ports: str) -> dict[str, str]:
        with app.state.database.write() as session:
            created = create_key(session, role=Role(role), ports=ports, created_by="test")
        return {"Authorization": f"Bearer {created.key}"}

    return make
