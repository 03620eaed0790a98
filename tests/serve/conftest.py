"""Fixtures of the service tests: a real SQLite file in tmp_path, the real app, real keys."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from serve.app import create_app
from serve.db import Database
from serve.security import Role
from serve.settings import Settings
from serve.store.keys import create_key

# The test modules import plain helpers from serve_helpers.py (pytest runs with --import-mode=importlib).
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

KeyMaker = Callable[..., dict[str, str]]


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    return Settings(database_url=f"sqlite:///{tmp_path / 'ccp.db'}", max_body_bytes=4096)


@pytest.fixture
def app(settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def database(app) -> Database:
    return app.state.database


@pytest.fixture
def make_key(database) -> KeyMaker:
    """``make_key("officer", "NLRTM")`` -> Authorization headers of a new key."""

    def make(role: str, *ports: str) -> dict[str, str]:
        with database.write() as session:
            created = create_key(session, role=Role(role), ports=tuple(ports), created_by="test")
        return {"Authorization": f"Bearer {created.key}"}

    return make


