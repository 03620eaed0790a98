"""List creation is idempotent with an Idempotency-Key, and one list per port, date and direction is current:
a new one supersedes it, the old one stays readable and names its successor (real engine, real store, HTTP)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from serve.seals import verify_records
from serve.tables import StoredList
from serve_helpers import PORT, TODAY

pytestmark = pytest.mark.slow


def post_list(service, *, key: str | None = None, role: str = "officer_own", **body):  # noqa: ANN001, ANN003, ANN201
    headers = {**service.as_(role), **({"Idempotency-Key": key} if key else {})}
    return service.client.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": TODAY.isoformat(), "capacity": 6, **body}, headers=headers)


def stored_lists(service) -> int:
    with service.database.read() as session:
        return session.scalar(select(func.count()).select_from(StoredList))


def test_a_retried_list_creation_with_the_same_key_returns_the_same_list(e2e_service):
    first = post_list(e2e_service, key="pcu-2025-08-28-a")
    again = post_list(e2e_service, key="pcu-2025-08-28-a")
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"] and again.json()["content_sha256"] == first.json()["content_sha256"]
    assert stored_lists(e2e_service) == 1
    clash = post_list(e2e_service, key="pcu-2025-08-28-a", capacity=7)
    assert clash.status_code == 422 and "Idempotency-Key" in clash.text
    other_key = post_list(e2e_service, role="officer_other", key="pcu-2025-08-28-a")  # keys are scoped to the API key
    assert other_key.status_code == 404  # (and another port's officer cannot create NLRTM's list at all)
    assert post_list(e2e_service, key="bad key!").status_code == 400
    assert stored_lists(e2e_service) == 1


def test_a_new_list_supersedes_the_current_one_which_stays_readable_and_names_it(e2e_service):
    officer = e2e_service.as_("officer_own")
    old = post_list(e2e_service).json()
    assert (old["current"], old["superseded_by"], old["supersedes"], old["direction"]) == (True, None, None, "IMPORT")
    cached = e2e_service.client.get(f"/v1/inspection-lists/{old['id']}", headers=officer).json()  # cached while current
    assert cached["current"] is True
    new = post_list(e2e_service, capacity=9, supersede_reason="Two more physical exam teams on duty")
    assert new.status_code == 201, new.text
    new = new.json()
    assert (new["current"], new["supersedes"], new["supersede_reason"]) == (True, old["id"], "Two more physical exam teams on duty")
    again = e2e_service.client.get(f"/v1/inspection-lists/{old['id']}", headers=officer)
    assert again.status_code == 200
    assert (again.json()["current"], again.json()["superseded_by"]) == (False, new["id"])
    assert again.json()["items"] == old["items"]  # still readable as it was served
    listing = e2e_service.client.get(f"/v1/ports/{PORT}/inspection-lists", params={"date": TODAY.isoformat()}, headers=officer).json()
    assert [(s["id"], s["current"], s["superseded_by"]) for s in listing["items"]] == [(new["id"], True, None), (old["id"], False, new["id"])]
    with e2e_service.database.read() as session:  # superseding changes no stored record: every seal still holds
        assert verify_records(session)[1] == []


def test_lists_of_another_direction_do_not_supersede_each_other(e2e_service):
    imported = post_list(e2e_service).json()
    exported = post_list(e2e_service, direction="EXPORT").json()
    assert (exported["direction"], exported["supersedes"]) == ("EXPORT", None)
    assert e2e_service.client.get(f"/v1/inspection-lists/{imported['id']}", headers=e2e_service.as_("officer_own")).json()["current"] is True
    assert post_list(e2e_service, direction="INBOUND").status_code == 422
    assert post_list(e2e_service, supersede_reason="bad\u202ereason").status_code == 422
