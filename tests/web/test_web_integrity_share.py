"""The list form carries the INTEGRITY share (unusual seal/dwell traces) to the list it generates, and refuses a bad one.

Real app in-process (``TestClient``), real SQLite store, the service tests' lake, an empty MLflow store (day-one lists).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from serve.app import create_app
from serve.security import Role
from serve.settings import Settings
from serve.store.lists import load_record
from serve.tables import StoredList
from serve.web.accounts import create_user
from targeting.lake_engine import LakeEngine
from serve_helpers import PORT, TODAY
from web_helpers import PASSWORD


@pytest.fixture
def officer(tmp_path, monkeypatch):  # noqa: ANN201 - TestClient
    from conftest import serve_conftest

    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    (tmp_path / "lake").mkdir()
    lake = serve_conftest.build_service_lake(tmp_path / "lake")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'ccp.db'}", lake_dir=lake, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                        model_cache_dir=tmp_path / "model-cache")
    engine = LakeEngine(lake_dir=lake, tracking_uri=settings.mlflow_tracking_uri, cache_dir=tmp_path / "model-cache")  # no champion: day one
    app = create_app(settings, engine=engine)
    with app.state.database.write() as session:
        create_user(session, username="ana", password=PASSWORD, role=Role("officer"), ports=(PORT,), created_by="test")
    client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    assert client.post("/login", data={"username": "ana", "password": PASSWORD, "csrf_token": token}).status_code == 303
    yield client, app
    app.state.database.dispose()


def _form(client: TestClient, **fields: str) -> dict[str, str]:
    home = client.get("/")
    assert 'name="integrity_share"' in home.text  # the form offers the share, with its default
    token = re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)
    return {"csrf_token": token, "date": TODAY.isoformat(), "capacity": "5", "nii_capacity": "3", "physical_capacity": "2", **fields}


def test_the_list_form_records_the_integrity_share_it_was_given(officer) -> None:
    client, app = officer
    created = client.post(f"/ports/{PORT}/lists", data=_form(client, exploration_share="0.2", integrity_share="0.3"))
    assert created.status_code == 303, created.text
    with app.state.database.read() as session:
        record = load_record(session.query(StoredList).one())
    assert (record.integrity_share, record.exploration_share) == (0.3, 0.2)
    assert not [i for i in record.items if i.source == "INTEGRITY"]  # day one: no model, so no norms and no INTEGRITY item


def test_the_list_form_refuses_an_integrity_share_that_is_not_a_number(officer) -> None:
    client, _ = officer
    refused = client.post(f"/ports/{PORT}/lists", data=_form(client, integrity_share="a lot"))
    assert refused.status_code == 422 and "integrity_share" in refused.text
