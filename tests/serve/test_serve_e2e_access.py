"""The access matrix with the real engine: every route x every role x own/other port, over HTTP.

A port officer sees only their own port: another port's list, by any route, is the same 404 as a
list that does not exist, with no data. Auditors cannot mutate (403). Without a valid key every
non-public route is 401. The matrix must name every route of the app, so a new route fails this
test until its rule is written down here.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from features import clock
from serve.deps import FRAMEWORK_PUBLIC_PATHS, iter_app_routes
from serve.web.routes import is_page_route
from serve.store.keys import revoke_key
from serve.tables import AuditEvent
from serve_helpers import OTHER_PORT, PORT

pytestmark = pytest.mark.slow

ROLES = ("officer_own", "officer_other", "data_scientist", "auditor", "admin")
_n = itertools.count()

# action: (method, route path, expected status per role in ROLES order) for a target port whose officer is "officer_own"
MATRIX = {
    "lists.create":     ("POST", "/v1/ports/{port}/inspection-lists",        (201, 404, 403, 403, 201)),
    "lists.get":        ("GET",  "/v1/inspection-lists/{list_id}",           (200, 404, 200, 200, 200)),
    "lists.csv":        ("GET",  "/v1/inspection-lists/{list_id}.csv",       (200, 404, 200, 200, 200)),
    "lists.export_csv": ("GET",  "/v1/inspection-lists/{list_id}/export.csv", (200, 404, 200, 200, 200)),
    "lists.deferred":   ("GET",  "/v1/inspection-lists/{list_id}/deferred",  (200, 404, 200, 200, 200)),
    "lists.amend":      ("POST", "/v1/inspection-lists/{list_id}/amendments", (201, 404, 403, 403, 201)),
    "lists.amendments": ("GET",  "/v1/inspection-lists/{list_id}/amendments", (200, 404, 200, 200, 200)),
    "hit_rates":        ("GET",  "/v1/ports/{port}/hit-rates",                (200, 404, 200, 200, 200)),
    "lists.by_port":    ("GET",  "/v1/ports/{port}/inspection-lists",        (200, 404, 200, 200, 200)),
    "risk":             ("GET",  "/v1/containers/{container}/risk",          (200, 404, 200, 200, 200)),
    "models.get":       ("GET",  "/v1/models",                               (200, 200, 200, 200, 200)),
    "models.reload":    ("POST", "/v1/models/reload",                        (403, 403, 200, 403, 200)),
    "outcome.create":   ("POST", "/v1/inspection-outcomes",                  (201, 403, 403, 403, 201)),
    # the same exam posted by each caller for its own port (the other officer's port does not handle the manifest):
    # 422 naming manifest_id, exactly as for a manifest that does not exist
    "outcome.as_own_port": ("POST", "/v1/inspection-outcomes",               (201, 422, 403, 403, 201)),
    "watchlist.list":   ("GET",  "/v1/watchlist",                            (200, 200, 200, 200, 200)),
    "watchlist.create": ("POST", "/v1/watchlist",                            (403, 403, 403, 403, 201)),
    "watchlist.expire": ("POST", "/v1/watchlist/{alert_id}/expire",          (403, 403, 403, 403, 200)),
    "rules.list":       ("GET",  "/v1/rules",                                (200, 200, 200, 200, 200)),
    "rules.versions":   ("GET",  "/v1/rules/versions",                       (200, 200, 200, 200, 200)),
    "rules.version":    ("GET",  "/v1/rules/versions/{version}",             (200, 200, 200, 200, 200)),
    "rules.create":     ("POST", "/v1/rules",                                (403, 403, 201, 403, 201)),
    "rules.expire":     ("POST", "/v1/rules/{code}/expire",                  (403, 403, 200, 403, 200)),
    "audit.events":     ("GET",  "/v1/audit/events",                         (403, 403, 403, 200, 200)),
    "audit.verify":     ("GET",  "/v1/audit/verify",                         (403, 403, 403, 200, 200)),
    "healthz":          ("GET",  "/healthz",                                 (200, 200, 200, 200, 200)),
    "readyz":           ("GET",  "/readyz",                                  (200, 200, 200, 200, 200)),
    # intelligence exchange: this instance hosts no exchange network, so every caller the role admits gets 404
    # (tests/exchange/ runs real networks of instances); the gates are what this matrix checks
    "exchange.inbox":   ("POST", "/v1/exchange/inbox",                       (404, 404, 404, 404, 404)),
    "exchange.received": ("GET", "/v1/exchange/received",                    (404, 404, 403, 404, 404)),
    "exchange.received_one": ("GET", "/v1/exchange/received/{message_id}",   (404, 404, 403, 404, 404)),
    "exchange.sent":    ("GET",  "/v1/exchange/sent",                        (404, 404, 403, 404, 404)),
    "exchange.sent_one": ("GET", "/v1/exchange/sent/{message_id}",           (404, 404, 403, 404, 404)),
    "exchange.accept":  ("POST", "/v1/exchange/received/{message_id}/accept", (404, 404, 403, 403, 404)),
    "exchange.dismiss": ("POST", "/v1/exchange/received/{message_id}/dismiss", (404, 404, 403, 403, 404)),
    "exchange.send":    ("POST", "/v1/exchange/sent",                        (404, 404, 403, 403, 404)),
    "exchange.approve": ("POST", "/v1/exchange/sent/{message_id}/approve",   (404, 404, 403, 403, 404)),
    "exchange.hit_rates": ("GET", "/v1/exchange/hit-rates",                  (404, 404, 403, 404, 404)),
}  # fmt: skip
MUTATING = (
    "lists.create", "lists.amend", "models.reload", "outcome.create", "watchlist.create", "watchlist.expire", "rules.create", "rules.expire",
    "exchange.accept", "exchange.dismiss", "exchange.send", "exchange.approve",
)  # fmt: skip
PUBLIC = {"healthz": 200, "readyz": 200, "exchange.inbox": 404}
"""Routes without a key and what they answer here (the inbox authenticates peers by signature; no network here)."""
MESSAGE_ID = "PCU-ECGYE:MATRIX0001"


def _list_date() -> str:
    return clock.today().isoformat()


def _watch(alert_id: str) -> dict:
    return {
        "alert_id": alert_id,
        "kind": "CONTAINER",
        "value": "CSQU3054383",
        "reason": "Intelligence from PCU Guayaquil",
        "issuing_unit": "PCU-ECGYE",
        "severity": 3,
        "valid_from": "2025-01-01T00:00:00Z",
    }


def _rule(code: str) -> dict:
    return {"code": code, "reason": "Tea from South-East Asia", "expression": 'hs_heading == "0902"', "valid_from": "2025-01-01T00:00:00Z", "weight": 5}


def _outcome(port: str, item: dict) -> dict:
    return {
        "manifest_id": item["manifest_id"],
        "container_number": item["container_number"],
        "port": port,
        "inspected_at": (clock.now() - timedelta(minutes=5)).isoformat(),
        "exam_type": "NII",
        "result": "NO_FINDING",
        "seal_status": "INTACT",
        "examiner": f"EX-{next(_n)}",
        "selection_source": item["source"],
    }


def _call(service, action: str, headers: dict, port: str, served: dict):
    client, admin = service.client, service.as_("admin")
    n = next(_n)
    if action == "lists.create":
        return client.post(f"/v1/ports/{port}/inspection-lists", json={"date": _list_date(), "capacity": 5}, headers=headers)
    if action == "lists.get":
        return client.get(f"/v1/inspection-lists/{served['id']}", headers=headers)
    if action == "lists.csv":
        return client.get(f"/v1/inspection-lists/{served['id']}.csv", headers=headers)
    if action == "lists.export_csv":
        return client.get(f"/v1/inspection-lists/{served['id']}/export.csv", headers=headers)
    if action == "lists.deferred":
        return client.get(f"/v1/inspection-lists/{served['id']}/deferred", headers=headers)
    if action == "hit_rates":
        return client.get(f"/v1/ports/{port}/hit-rates", headers=headers)
    if action == "lists.amend":  # a different deferred candidate each call
        page = client.get(f"/v1/inspection-lists/{served['id']}/deferred", params={"limit": 1, "offset": n % served["deferred_count"]}, headers=admin)
        amendment = {"action": "ADD", "manifest_id": page.json()["items"][0]["manifest_id"], "reason": "Seal mismatch seen at the gate"}
        return client.post(f"/v1/inspection-lists/{served['id']}/amendments", json=amendment, headers=headers)
    if action == "lists.amendments":
        return client.get(f"/v1/inspection-lists/{served['id']}/amendments", headers=headers)
    if action == "lists.by_port":
        return client.get(f"/v1/ports/{port}/inspection-lists", headers=headers)
    if action == "risk":
        return client.get(f"/v1/containers/{served['items'][0]['container_number']}/risk", params={"port": port}, headers=headers)
    if action == "models.get":
        return client.get("/v1/models", headers=headers)
    if action == "models.reload":
        return client.post("/v1/models/reload", headers=headers)
    if action == "outcome.create":
        return client.post("/v1/inspection-outcomes", json=_outcome(port, served["items"][0]), headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    if action == "outcome.as_own_port":
        other_port = OTHER_PORT if port == PORT else PORT
        own_port = other_port if headers == service.as_(_who("officer_other", port)) else port
        item = _item_not_handled_by(service, served, other_port)
        return client.post("/v1/inspection-outcomes", json=_outcome(own_port, item), headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
    if action == "watchlist.list":
        return client.get("/v1/watchlist", headers=headers)
    if action == "watchlist.create":
        return client.post("/v1/watchlist", json=_watch(f"WL-MATRIX-{n}"), headers=headers)
    if action == "watchlist.expire":
        assert client.post("/v1/watchlist", json=_watch(f"WL-EXPIRE-{n}"), headers=admin).status_code == 201
        return client.post(f"/v1/watchlist/WL-EXPIRE-{n}/expire", headers=headers)
    if action == "rules.list":
        return client.get("/v1/rules", headers=headers)
    if action == "rules.versions":
        return client.get("/v1/rules/versions", headers=headers)
    if action == "rules.version":
        return client.get("/v1/rules/versions/1", headers=headers)
    if action == "rules.create":
        return client.post("/v1/rules", json=_rule(f"MATRIX-{n}"), headers=headers)
    if action == "rules.expire":
        assert client.post("/v1/rules", json=_rule(f"EXPIRE-{n}"), headers=admin).status_code == 201
        return client.post(f"/v1/rules/EXPIRE-{n}/expire", headers=headers)
    if action == "audit.events":
        return client.get("/v1/audit/events", params={"port": port}, headers=headers)
    if action == "audit.verify":
        return client.get("/v1/audit/verify", headers=headers)
    if action == "healthz":
        return client.get("/healthz", headers=headers)
    if action == "readyz":
        return client.get("/readyz", headers=headers)
    if action.startswith("exchange."):
        return _call_exchange(client, action, headers)
    raise AssertionError(action)


def _call_exchange(client, action: str, headers: dict):  # noqa: ANN001, ANN202 - TestClient, Response
    outgoing = {"type": "ALERT", "sender": "PCU-NLRTM", "recipients": ["PCU-BEANR"], "tlp": "AMBER", "valid_to": "2030-01-01T00:00:00Z",
                "body": {"kind": "CONTAINER", "value": "CSQU3054383", "severity": 3, "reason": "Matrix"}}
    calls = {
        "exchange.inbox": ("POST", "/v1/exchange/inbox", {}),
        "exchange.received": ("GET", "/v1/exchange/received", None),
        "exchange.received_one": ("GET", f"/v1/exchange/received/{MESSAGE_ID}", None),
        "exchange.sent": ("GET", "/v1/exchange/sent", None),
        "exchange.sent_one": ("GET", f"/v1/exchange/sent/{MESSAGE_ID}", None),
        "exchange.accept": ("POST", f"/v1/exchange/received/{MESSAGE_ID}/accept", None),
        "exchange.dismiss": ("POST", f"/v1/exchange/received/{MESSAGE_ID}/dismiss", {"reason": "Not relevant to this port"}),
        "exchange.send": ("POST", "/v1/exchange/sent", outgoing),
        "exchange.approve": ("POST", f"/v1/exchange/sent/{MESSAGE_ID}/approve", None),
        "exchange.hit_rates": ("GET", "/v1/exchange/hit-rates", None),
    }
    method, path, body = calls[action]
    return client.request(method, path, json=body, headers=headers)


def _item_not_handled_by(service, served: dict, port: str) -> dict:  # noqa: ANN001
    """An item of ``served`` whose manifest ``port`` does not handle in any direction."""
    from serve.store.manifests import manifest_directory

    directory = manifest_directory(service.settings.lake_dir)
    return next(i for i in served["items"] if not directory.find(i["manifest_id"]).handled_by(port))


def _who(role: str, port: str) -> str:
    """The key acting as ``role`` for ``port``: "officer_own" is the officer of ``port``."""
    if port == OTHER_PORT and role.startswith("officer"):
        return "officer_other" if role == "officer_own" else "officer_own"
    return role


def test_matrix_names_every_route_of_the_app(e2e_service):
    routes = {(method, route.path) for route in iter_app_routes(e2e_service.app) for method in route.methods - {"HEAD"}}
    pages = {route.path for route in iter_app_routes(e2e_service.app) if is_page_route(route)}  # the web pages: tests/web
    routes = {r for r in routes if r[1] not in FRAMEWORK_PUBLIC_PATHS and r[1] not in pages}
    assert routes == {(method, path) for method, path, _ in MATRIX.values()}


@pytest.mark.parametrize("port", [PORT, OTHER_PORT])
def test_access_matrix_with_the_engine(e2e_service, port):
    served = e2e_service.client.post(
        f"/v1/ports/{port}/inspection-lists", json={"date": _list_date(), "capacity": 6}, headers=e2e_service.as_(_who("officer_own", port))
    ).json()
    assert served["port"] == port and served["items"]
    got, leaks = {}, []
    for action, (_, _, expected) in MATRIX.items():
        got[action] = []
        for role in ROLES:
            response = _call(e2e_service, action, e2e_service.as_(_who(role, port)), port, served)
            got[action].append(response.status_code)
            if response.status_code in (403, 404) and (served["id"] in response.text or served["items"][0]["container_number"] in response.text):
                leaks.append((action, role, response.text[:200]))
        got[action] = tuple(got[action])
    wrong = {a: dict(zip(ROLES, got[a])) for a, (_, _, expected) in MATRIX.items() if got[a] != expected}
    assert not wrong
    assert not leaks


def test_other_ports_list_is_indistinguishable_from_a_missing_one(e2e_service):
    own, other = e2e_service.as_("officer_own"), e2e_service.as_("officer_other")
    served = e2e_service.client.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": _list_date(), "capacity": 6}, headers=own).json()
    missing = str(uuid.uuid4())
    for suffix in ("", ".csv", "/export.csv", "/deferred", "?include=deferred", "/amendments"):
        denied = e2e_service.client.get(f"/v1/inspection-lists/{served['id']}{suffix}", headers=other)
        absent = e2e_service.client.get(f"/v1/inspection-lists/{missing}{suffix}", headers=other)
        assert (denied.status_code, denied.json()) == (absent.status_code, absent.json()) == (404, {"detail": "inspection list not found"})
        assert set(denied.headers) == set(absent.headers)
    by_port = e2e_service.client.get(f"/v1/ports/{PORT}/inspection-lists", headers=other)
    created = e2e_service.client.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": _list_date(), "capacity": 6}, headers=other)
    for response in (by_port, created):
        assert (response.status_code, response.json()) == (404, {"detail": "inspection list not found"})
    container = served["items"][0]["container_number"]
    risk = e2e_service.client.get(f"/v1/containers/{container}/risk", params={"port": PORT}, headers=other)
    assert risk.status_code == 404 and container not in risk.text
    with e2e_service.database.read() as session:
        refusals = session.scalars(
            select(AuditEvent).where(AuditEvent.actor == e2e_service.key_ids["officer_other"], AuditEvent.result == "not_found")
        ).all()
    assert {e.action for e in refusals} >= {"list.fetch", "list.fetch_deferred", "list.amendments", "list.export_csv", "list.search", "list.create", "risk.check"}
    assert all(e.model_version is None for e in refusals)  # nothing about the list leaks into the refusal record either


def test_auditor_cannot_mutate(e2e_service):
    served = e2e_service.client.post(
        f"/v1/ports/{PORT}/inspection-lists", json={"date": _list_date(), "capacity": 6}, headers=e2e_service.as_("officer_own")
    ).json()
    auditor = e2e_service.as_("auditor")
    for action in MUTATING:
        response = _call(e2e_service, action, auditor, PORT, served)
        assert (response.status_code, response.json()) == (403, {"detail": "not permitted"}), action


def test_without_a_valid_key_every_non_public_route_is_401(e2e_service):
    served = e2e_service.client.post(
        f"/v1/ports/{PORT}/inspection-lists", json={"date": _list_date(), "capacity": 6}, headers=e2e_service.as_("officer_own")
    ).json()
    revoked = e2e_service.as_("data_scientist")
    with e2e_service.database.write() as session:
        assert revoke_key(session, e2e_service.key_ids["data_scientist"])
    malformed = {"Authorization": "Bearer not-a-key"}
    for action in MATRIX:
        for headers in ({}, malformed, revoked):
            response = _call(e2e_service, action, headers, PORT, served)
            if action in PUBLIC:
                assert response.status_code == PUBLIC[action], action
            else:
                assert response.status_code == 401 and response.json() == {"detail": "not authenticated"}, (action, headers)
                assert response.headers["WWW-Authenticate"] == "Bearer"
