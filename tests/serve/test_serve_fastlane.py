"""The fast lane (serve/fastlane.py) answers exactly as the framework's route does, and takes only the request shapes it can.

Each scenario is sent twice: in the lane's shape, and with a query string the
route ignores (``?via=framework``), which the lane leaves to FastAPI. The two
answers must agree (status, body, headers other than the request id).
"""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from serve.app import create_app
from serve.settings import Settings
from serve.tables import AuditEvent, StoredList
from serve_helpers import OTHER_PORT, PORT, idem, insert_list, outcome_body, pool_manifest, sample_list

FRAMEWORK = "?via=framework"
OUTCOMES = "/v1/inspection-outcomes"


def _comparable(response) -> tuple[int, object, dict[str, str]]:  # noqa: ANN001 - httpx.Response
    """Status, JSON body without the ids a new write gets (and its fresh manifest), headers without the request id."""
    try:
        body = response.json()
    except json.JSONDecodeError:
        body = response.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("id", "created_at", "request_id", "manifest_id")}
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "content-length")}
    return response.status_code, body, headers


def _served(app) -> dict[str, int]:  # noqa: ANN001
    return dict(app.state.fast_lane_served)


@pytest.fixture
def officer(make_key):
    return make_key("officer", PORT)


def test_the_service_opens_both_lanes(app):
    assert set(app.state.fast_lanes) == {"outcome", "list"}


def test_a_new_outcome_is_answered_alike_on_the_lane_and_by_the_framework(app, client, officer):
    fast = client.post(OUTCOMES, json=outcome_body(), headers={**officer, **idem()})
    framework = client.post(OUTCOMES + FRAMEWORK, json=outcome_body(), headers={**officer, **idem()})
    assert fast.status_code == 201, fast.text
    fast_body, framework_body = fast.json(), framework.json()
    assert fast_body.pop("manifest_id") != framework_body.pop("manifest_id")  # two fresh manifests
    assert _comparable(fast)[0::2] == _comparable(framework)[0::2]
    assert {k: v for k, v in fast_body.items() if k not in ("id", "created_at")} == {
        k: v for k, v in framework_body.items() if k not in ("id", "created_at")
    }
    assert _served(app) == {"outcome": 1}


@pytest.mark.parametrize(
    "scenario",
    ["replay", "other_body_same_key", "duplicate_exam", "other_port", "unknown_manifest", "wrong_container", "invalid_body", "no_key"],
)
def test_outcome_refusals_and_replays_are_answered_alike_on_the_lane_and_by_the_framework(app, client, officer, scenario):
    answers = []
    for suffix in ("", FRAMEWORK):
        body, headers = outcome_body(), {**officer, **idem()}
        if scenario in ("replay", "other_body_same_key"):
            first = client.post(OUTCOMES + suffix, json=body, headers=headers)
            assert first.status_code == 201, first.text
            if scenario == "other_body_same_key":
                body = {**body, "examiner": "EX-99"}
            answer = client.post(OUTCOMES + suffix, json=body, headers=headers)
            if scenario == "replay":
                assert answer.content == first.content
        elif scenario == "duplicate_exam":
            assert client.post(OUTCOMES + suffix, json=body, headers=headers).status_code == 201
            answer = client.post(OUTCOMES + suffix, json=body, headers={**officer, **idem()})
        else:
            body = {
                "other_port": outcome_body(port=OTHER_PORT, manifest_id=pool_manifest(OTHER_PORT)),
                "unknown_manifest": outcome_body(manifest_id="M-NOWHERE-1"),
                "wrong_container": outcome_body(container_number="TEXU3070079"),
                "invalid_body": {**body, "quantity_kg": -1},
                "no_key": body,
            }[scenario]
            if scenario == "no_key":
                headers = dict(officer)
            answer = client.post(OUTCOMES + suffix, json=body, headers=headers)
        answers.append(answer)
    fast, framework = answers
    assert fast.status_code in (200, 201, 400, 403, 409, 422), fast.text
    assert _comparable(fast) == _comparable(framework)


def test_an_outcome_the_lane_cannot_take_goes_to_the_framework(app, client, officer):
    body = json.dumps(outcome_body()).encode()
    shapes = [
        {"Content-Type": "application/json; charset=utf-8"},  # another spelling of JSON: the framework parses it
        {"Content-Type": "text/plain"},  # not JSON: the framework's 422
    ]
    answers = [client.post(OUTCOMES, content=body, headers={**officer, **idem(), **extra}) for extra in shapes]
    assert [a.status_code for a in answers] == [201, 422]
    assert _served(app).get("outcome", 0) == 0


def test_an_auditor_is_refused_an_outcome_alike_and_the_refusal_audit_names_the_route(app, client, make_key, database):
    auditor = make_key("auditor")
    fast = client.post(OUTCOMES, json=outcome_body(), headers={**auditor, **idem()})
    framework = client.post(OUTCOMES + FRAMEWORK, json=outcome_body(), headers={**auditor, **idem()})
    assert fast.status_code == 403
    assert _comparable(fast) == _comparable(framework)
    with database.read() as session:
        details = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "auth.denied")).all()
    assert [json.loads(d) if isinstance(d, str) else d for d in details] == [{"method": "POST", "path": OUTCOMES}] * 2


def test_a_list_fetch_is_answered_alike_on_the_lane_and_by_the_framework(app, client, officer, database, make_key):
    list_id = insert_list(database)
    other_port_list = insert_list(database, sample_list(OTHER_PORT))
    outsider = make_key("officer", OTHER_PORT)
    cases = [
        (list_id, officer),  # 200, then served from the verified-body cache
        (list_id, officer),
        (other_port_list, officer),  # another port's list: 404 like a missing one
        (str(uuid.uuid4()), officer),
        (list_id, outsider),
        (list_id, {"Authorization": "Bearer ccp_000000000000_" + "A" * 43}),  # unknown key: 401
    ]
    for wanted, headers in cases:
        fast = client.get(f"/v1/inspection-lists/{wanted}", headers=headers)
        framework = client.get(f"/v1/inspection-lists/{wanted}{FRAMEWORK}", headers=headers)
        assert _comparable(fast) == _comparable(framework), wanted
        if fast.status_code == 200:
            assert fast.content == framework.content
    assert _served(app) == {"list": len(cases)}  # a well-formed unknown key passes the early 401 and is refused on the lane


def test_a_list_id_in_another_spelling_goes_to_the_framework_and_gets_the_same_list(app, client, officer, database):
    list_id = insert_list(database)
    canonical = client.get(f"/v1/inspection-lists/{list_id}", headers=officer)
    upper = client.get(f"/v1/inspection-lists/{list_id.upper()}", headers=officer)
    assert canonical.status_code == upper.status_code == 200
    assert canonical.content == upper.content
    assert _served(app) == {"list": 1}


def test_a_list_altered_in_the_store_is_refused_with_500_on_the_lane(client, officer, database):
    list_id = insert_list(database)
    assert client.get(f"/v1/inspection-lists/{list_id}", headers=officer).status_code == 200
    with database.write() as session:
        session.get(StoredList, list_id).model_version = "99"
    fast = client.get(f"/v1/inspection-lists/{list_id}", headers=officer)
    assert fast.status_code == 500
    assert fast.json() == {"detail": "internal server error", "request_id": fast.headers["x-request-id"]}


def test_the_lane_answers_429_with_retry_after_like_the_framework(tmp_path, service_lake_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ccp.db'}", lake_dir=service_lake_dir, auth_failure_flush_seconds=0,
        rate_limits={"officer": 0.01, "data_scientist": 100.0, "auditor": 100.0, "admin": 100.0}, rate_limit_burst_seconds=0.01,
    )
    app = create_app(settings)
    from serve.security import Role
    from serve.store.keys import create_key

    with app.state.database.write() as session:
        headers = {"Authorization": f"Bearer {create_key(session, role=Role.OFFICER, ports=(PORT,), created_by='test').key}"}
    list_id = insert_list(app.state.database)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get(f"/v1/inspection-lists/{list_id}", headers=headers).status_code == 200  # the burst of one
        fast = client.get(f"/v1/inspection-lists/{list_id}", headers=headers)
        framework = client.get(f"/v1/inspection-lists/{list_id}{FRAMEWORK}", headers=headers)
        outcome = client.post(OUTCOMES, json=outcome_body(), headers={**headers, **idem()})
    assert fast.status_code == framework.status_code == outcome.status_code == 429
    assert fast.headers["retry-after"] and _comparable(fast) == _comparable(framework)
