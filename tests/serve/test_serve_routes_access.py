"""The access matrix: every role x own/other port on every route (engine-less routes answer 503 once permitted)."""

from __future__ import annotations

import itertools

import pytest

from serve_helpers import OTHER_PORT, PORT, idem, insert_list, outcome_body, pool_manifest, sample_list

ROLES = ("officer_own", "officer_other", "data_scientist", "auditor", "admin")
_counter = itertools.count()


def _headers(make_key, who: str) -> dict[str, str]:
    if who == "officer_own":
        return make_key("officer", PORT)
    if who == "officer_other":
        return make_key("officer", OTHER_PORT)
    return make_key(who)


def _rule(code: str) -> dict:
    return {
        "code": code,
        "reason": "Tea from South-East Asia",
        "expression": 'hs_heading == "0902"',
        "valid_from": "2025-01-01T00:00:00Z",
        "weight": 5,
    }


def _watch(alert_id: str) -> dict:
    return {
        "alert_id": alert_id,
        "kind": "CONTAINER",
        "value": "CSQU3054383",
        "reason": "Intelligence from PCU Guayaquil",
        "issuing_unit": "PCU-ECGYE",
        "severity": 4,
        "valid_from": "2025-01-01T00:00:00Z",
    }


def _setup(client, admin) -> dict:
    n = next(_counter)
    alert_id = f"WL-ACCESS-{n}"
    assert client.post("/v1/watchlist", json=_watch(alert_id), headers=admin).status_code == 201
    code = f"ACCESS-{n}"
    assert client.post("/v1/rules", json=_rule(code), headers=admin).status_code == 201
    return {"alert_id": alert_id, "code": code, "admin": admin}


def _call(client, database, action: str, headers: dict, state: dict, who: str = "admin"):
    n = next(_counter)
    own_port = OTHER_PORT if who == "officer_other" else PORT  # the port each caller writes for
    if action == "outcome.create":
        return client.post("/v1/inspection-outcomes", json=outcome_body(), headers={**headers, **idem()})
    if action in ("outcome.nlrtm_manifest", "outcome.beanr_manifest"):
        manifest = pool_manifest(PORT if action == "outcome.nlrtm_manifest" else OTHER_PORT)
        return client.post("/v1/inspection-outcomes", json=outcome_body(port=own_port, manifest_id=manifest), headers={**headers, **idem()})
    if action == "lists.amend_beanr":
        list_id = insert_list(database, sample_list(port=OTHER_PORT))
        amendment = {"action": "ADD", "manifest_id": "M-4", "reason": "Seal mismatch seen at the gate"}
        return client.post(f"/v1/inspection-lists/{list_id}/amendments", json=amendment, headers=headers)
    if action == "lists.create_beanr":
        return client.post(f"/v1/ports/{OTHER_PORT}/inspection-lists", json={"date": "2025-03-02", "capacity": 10}, headers=headers)
    if action == "watchlist.list":
        return client.get("/v1/watchlist", headers=headers)
    if action == "watchlist.create":
        return client.post("/v1/watchlist", json=_watch(f"WL-NEW-{n}"), headers=headers)
    if action == "watchlist.expire":
        return client.post(f"/v1/watchlist/{state['alert_id']}/expire", headers=headers)
    if action == "rules.list":
        return client.get("/v1/rules", headers=headers)
    if action == "rules.versions":
        return client.get("/v1/rules/versions/1", headers=headers)
    if action == "rules.create":
        return client.post("/v1/rules", json=_rule(f"NEW-{n}"), headers=headers)
    if action == "rules.expire":
        code = f"EXPIRE-{n}"
        assert client.post("/v1/rules", json=_rule(code), headers=state["admin"]).status_code == 201
        return client.post(f"/v1/rules/{code}/expire", headers=headers)
    if action == "audit.events":
        return client.get("/v1/audit/events", headers=headers)
    if action == "audit.verify":
        return client.get("/v1/audit/verify", headers=headers)
    if action == "models.get":
        return client.get("/v1/models", headers=headers)
    if action == "models.reload":
        return client.post("/v1/models/reload", headers=headers)
    list_id = insert_list(database)
    if action == "lists.get":
        return client.get(f"/v1/inspection-lists/{list_id}", headers=headers)
    if action == "lists.csv":
        return client.get(f"/v1/inspection-lists/{list_id}.csv", headers=headers)
    if action == "lists.export_csv":
        return client.get(f"/v1/inspection-lists/{list_id}/export.csv", headers=headers)
    if action == "lists.deferred":
        return client.get(f"/v1/inspection-lists/{list_id}/deferred", headers=headers)
    if action == "hit_rates":
        return client.get(f"/v1/ports/{PORT}/hit-rates", headers=headers)
    if action == "lists.amend":
        amendment = {"action": "ADD", "manifest_id": "M-4", "reason": "Seal mismatch seen at the gate"}
        return client.post(f"/v1/inspection-lists/{list_id}/amendments", json=amendment, headers=headers)
    if action == "lists.amendments":
        return client.get(f"/v1/inspection-lists/{list_id}/amendments", headers=headers)
    if action == "lists.by_port":
        return client.get(f"/v1/ports/{PORT}/inspection-lists", headers=headers)
    if action == "lists.create":
        return client.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": "2025-03-02", "capacity": 10}, headers=headers)
    if action == "risk":
        return client.get(f"/v1/containers/CSQU3054383/risk?port={PORT}", headers=headers)
    raise AssertionError(action)


#                    officer_own officer_other data_scientist auditor admin
MATRIX = {
    "outcome.create":   (201, 403, 403, 403, 201),  # body port NLRTM
    # writes across ports: each caller posts for its own port (BEANR for officer_other, NLRTM otherwise);
    # a manifest the port does not handle is 422 exactly like a missing one
    "outcome.nlrtm_manifest": (201, 422, 403, 403, 201),
    "outcome.beanr_manifest": (422, 201, 403, 403, 422),
    "lists.amend_beanr":      (404, 201, 403, 403, 201),
    "lists.create_beanr":     (404, 503, 403, 403, 503),
    "watchlist.list":   (200, 200, 200, 200, 200),
    "watchlist.create": (403, 403, 403, 403, 201),
    "watchlist.expire": (403, 403, 403, 403, 200),
    "rules.list":       (200, 200, 200, 200, 200),
    "rules.versions":   (200, 200, 200, 200, 200),
    "rules.create":     (403, 403, 201, 403, 201),
    "rules.expire":     (403, 403, 200, 403, 200),
    "audit.events":     (403, 403, 403, 200, 200),
    "audit.verify":     (403, 403, 403, 200, 200),
    "models.get":       (503, 503, 503, 503, 503),
    "models.reload":    (403, 403, 503, 403, 503),
    "lists.get":        (200, 404, 200, 200, 200),
    "lists.csv":        (200, 404, 200, 200, 200),
    "lists.export_csv": (200, 404, 200, 200, 200),
    "lists.deferred":   (200, 404, 200, 200, 200),
    "lists.amend":      (201, 404, 403, 403, 201),
    "lists.amendments": (200, 404, 200, 200, 200),
    "hit_rates":        (200, 404, 200, 200, 200),
    "lists.by_port":    (200, 404, 200, 200, 200),
    "lists.create":     (503, 404, 403, 403, 503),
    "risk":             (503, 404, 503, 503, 503),
}  # fmt: skip


@pytest.mark.parametrize("action", sorted(MATRIX))
def test_access_matrix(client, database, make_key, action):
    admin = make_key("admin")
    state = _setup(client, admin)
    got = tuple(_call(client, database, action, _headers(make_key, who), state, who).status_code for who in ROLES)
    assert got == MATRIX[action], dict(zip(ROLES, got))


def test_auditor_cannot_mutate_anything(client, database, make_key):
    auditor = make_key("auditor")
    state = _setup(client, make_key("admin"))
    for action in ("outcome.create", "watchlist.create", "watchlist.expire", "rules.create", "rules.expire", "models.reload", "lists.create", "lists.amend"):
        assert _call(client, database, action, auditor, state).status_code == 403, action


def test_refusals_carry_no_data(client, database, make_key):
    other = make_key("officer", OTHER_PORT)
    list_id = insert_list(database)
    missing = "00000000-0000-4000-8000-000000000000"
    for path in (f"/v1/inspection-lists/{list_id}", f"/v1/inspection-lists/{list_id}.csv", f"/v1/inspection-lists/{list_id}/export.csv", f"/v1/inspection-lists/{list_id}/deferred", f"/v1/inspection-lists/{list_id}/amendments"):
        denied = client.get(path, headers=other)
        absent = client.get(path.replace(list_id, missing), headers=other)
        assert denied.status_code == absent.status_code == 404
        assert denied.json() == absent.json() == {"detail": "inspection list not found"}
        assert "CSQU" not in denied.text and PORT not in denied.text
    listing = client.get(f"/v1/ports/{PORT}/inspection-lists", headers=other)
    assert listing.status_code == 404 and listing.json() == {"detail": "inspection list not found"}
