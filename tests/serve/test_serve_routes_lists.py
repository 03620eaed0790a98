"""Stored inspection lists: fetch, CSV export, paging by port and date, integrity; engine-less 503s."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import select, text

from serve.store.lists import StoredListCorruptError, load_record
from serve.tables import AuditEvent, StoredList
from serve_helpers import OTHER_PORT, PORT, insert_list, sample_list
from targeting.lists import DeferredItem, ListItem, list_to_dict


def test_stored_list_is_returned_whole_with_its_id(client, database, make_key):
    record = sample_list()
    list_id = insert_list(database, record)
    response = client.get(f"/v1/inspection-lists/{list_id}", headers=make_key("officer", PORT))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == list_id
    assert body["content_sha256"] == record.content_sha256()
    assert [i["container_number"] for i in body["items"]] == ["CSQU3054383", "TEXU3070079", "MSKU6011672"]
    assert body["deferred"] is None and body["deferred_count"] == 1
    assert body["mandatory_exceeds_capacity"] is False
    expected = list_to_dict(record)
    assert {k: body[k] for k in ("port", "list_date", "seed", "ruleset_version", "model_version")} == {
        k: expected[k] for k in ("port", "list_date", "seed", "ruleset_version", "model_version")
    }


def test_deferred_candidates_are_embedded_on_request_and_paged(client, database, make_key):
    record = replace(
        sample_list(),
        deferred=tuple(DeferredItem(f"M-D{n}", f"M-D{n}", round(0.5 - n / 100, 2)) for n in range(7)),
    )
    list_id = insert_list(database, record)
    headers = make_key("officer", PORT)
    plain = client.get(f"/v1/inspection-lists/{list_id}", headers=headers).json()
    whole = client.get(f"/v1/inspection-lists/{list_id}", params={"include": "deferred"}, headers=headers).json()
    assert plain["deferred"] is None and plain["deferred_count"] == whole["deferred_count"] == 7
    assert {k: v for k, v in whole.items() if k != "deferred"} == {k: v for k, v in plain.items() if k != "deferred"}
    # a record without calibrated risk (as stored before bands) serves its risk fields as null
    assert whole["deferred"] == [{"risk_probability": None, "risk_band": None, **d} for d in list_to_dict(record)["deferred"]]
    pages = [client.get(f"/v1/inspection-lists/{list_id}/deferred", params={"limit": 3, "offset": o}, headers=headers).json() for o in (0, 3, 6, 9)]
    assert [p["page"] for p in pages] == [{"total": 7, "limit": 3, "offset": o} for o in (0, 3, 6, 9)]
    assert [item for p in pages for item in p["items"]] == whole["deferred"]
    assert all(p["list_id"] == list_id for p in pages)
    assert client.get(f"/v1/inspection-lists/{list_id}", params={"include": "everything"}, headers=headers).status_code == 422
    with database.read() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == list_id, AuditEvent.action != "list.create")).all()
    assert sorted(actions) == ["list.fetch"] * 2 + ["list.fetch_deferred"] * 4


def test_mandatory_overflow_is_reported(client, database, make_key):
    record = replace(sample_list(), mandatory_exceeds_capacity=True, warnings=("17 watchlist hits exceed capacity 3",))
    list_id = insert_list(database, record)
    body = client.get(f"/v1/inspection-lists/{list_id}", headers=make_key("admin")).json()
    assert body["mandatory_exceeds_capacity"] is True
    assert body["warnings"] == ["17 watchlist hits exceed capacity 3"]


def test_csv_export_lists_items_with_reasons(client, database, make_key):
    list_id = insert_list(database)
    headers = make_key("officer", PORT)
    first = client.get(f"/v1/inspection-lists/{list_id}.csv", headers=headers)
    second = client.get(f"/v1/inspection-lists/{list_id}/export.csv", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(first.text)))
    assert list(rows[0]) == [
        "rank", "container_number", "manifest_id", "score", "source", "exam_type", "selection_probability", "reasons", "direction",
        "risk_band", "risk_probability", "integrity_surprisal", "integrity_p_value",
    ]
    assert rows[0]["reasons"] == "Watchlist: consignee alert | '=cmd|x"  # every reason neutralised, not only the first
    assert rows[1] == {
        "rank": "2", "container_number": "TEXU3070079", "manifest_id": "M-2", "score": "0.81", "source": "RULE",
        "exam_type": "NII", "selection_probability": "1.0", "reasons": "Reefer with bananas from EC", "direction": "IMPORT",
        "risk_band": "NOT_RATED", "risk_probability": "",  # a record without calibrated risk
        "integrity_surprisal": "", "integrity_p_value": "",  # nor integrity (a model without norms, or a list before them)
    }


def test_csv_neutralises_formulas(client, database, make_key):
    record = replace(sample_list(), items=(ListItem(1, "CSQU3054383", "=1+1", 0.5, "MODEL", 1.0, ("@SUM(A1)",), "NII"),))
    list_id = insert_list(database, record)
    rows = list(csv.DictReader(io.StringIO(client.get(f"/v1/inspection-lists/{list_id}.csv", headers=make_key("admin")).text)))
    assert rows[0]["manifest_id"] == "'=1+1" and rows[0]["reasons"] == "'@SUM(A1)"


def test_lists_by_port_are_paged_newest_first_and_filtered_by_date(client, database, make_key, settings):
    ids = [insert_list(database, sample_list(list_date=date(2025, 3, d))) for d in (1, 1, 2)]
    insert_list(database, sample_list(OTHER_PORT))
    headers = make_key("officer", PORT)
    page = client.get(f"/v1/ports/{PORT}/inspection-lists?limit=2", headers=headers).json()
    assert page["page"] == {"total": 3, "limit": 2, "offset": 0}
    assert [i["id"] for i in page["items"]] == [ids[2], ids[1]]
    rest = client.get(f"/v1/ports/{PORT}/inspection-lists?limit=2&offset=2", headers=headers).json()
    assert [i["id"] for i in rest["items"]] == [ids[0]]
    dated = client.get(f"/v1/ports/{PORT}/inspection-lists?date=2025-03-01", headers=headers).json()
    assert {i["id"] for i in dated["items"]} == set(ids[:2])
    assert "items" not in dated["items"][0]


def test_page_size_is_bounded(client, make_key, settings):
    headers = make_key("admin")
    assert client.get(f"/v1/ports/{PORT}/inspection-lists?limit={settings.max_page_size + 1}", headers=headers).status_code == 422
    assert client.get(f"/v1/ports/{PORT}/inspection-lists?limit=5000", headers=headers).status_code == 422
    assert client.get(f"/v1/ports/{PORT}/inspection-lists?limit=0", headers=headers).status_code == 422
    default = client.get(f"/v1/ports/{PORT}/inspection-lists", headers=headers).json()["page"]["limit"]
    assert default == settings.default_page_size


def test_officer_cannot_read_other_port_list_by_any_route(client, database, make_key):
    list_id = insert_list(database, sample_list(OTHER_PORT))
    officer = make_key("officer", PORT)
    for path in (
        f"/v1/inspection-lists/{list_id}",
        f"/v1/inspection-lists/{list_id}.csv",
        f"/v1/inspection-lists/{list_id}/export.csv",
        f"/v1/ports/{OTHER_PORT}/inspection-lists",
        f"/v1/containers/CSQU3054383/risk?port={OTHER_PORT}",
    ):
        response = client.get(path, headers=officer)
        assert response.status_code == 404, path
        assert OTHER_PORT not in response.text and "CSQU" not in response.text
    create = client.post(f"/v1/ports/{OTHER_PORT}/inspection-lists", json={"date": "2025-03-02", "capacity": 5}, headers=officer)
    assert create.status_code == 404


def test_list_fetches_are_audited(client, database, make_key):
    list_id = insert_list(database)
    client.get(f"/v1/inspection-lists/{list_id}", headers=make_key("officer", PORT))
    client.get(f"/v1/inspection-lists/{list_id}", headers=make_key("officer", OTHER_PORT))
    with database.read() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.object_id == list_id, AuditEvent.action != "list.create")).all()
    assert [(e.action, e.result, e.status_code, e.port) for e in events] == [
        ("list.fetch", "ok", 200, PORT),
        ("list.fetch", "not_found", 404, PORT),
    ]
    assert events[0].model_version == "4" and events[0].request_id


def test_list_routes_need_the_engine(client, make_key):
    headers = make_key("officer", PORT)
    create = client.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": "2025-03-02", "capacity": 5}, headers=headers)
    assert create.status_code == 503 and create.headers["retry-after"]
    assert client.get("/v1/containers/CSQU3054383/risk", headers=headers).status_code == 503


def test_list_request_is_validated_before_the_engine(client, make_key):
    headers = make_key("admin")
    for body in (
        {"date": "2025-03-02", "capacity": 0},
        {"date": "2025-03-02", "capacity": 5001},
        {"date": "2025-03-02", "capacity": 10, "exploration_share": 0.6},
        {"date": "2025-03-02", "capacity": 10, "nii_capacity": 4},
        {"date": "2025-03-02", "capacity": 10, "nii_capacity": 4, "physical_capacity": 5},
        {"date": "2025-03-02", "capacity": "10"},
        {"date": "2025-03-02", "capacity": 10, "colour": "red"},
    ):
        assert client.post(f"/v1/ports/{PORT}/inspection-lists", json=body, headers=headers).status_code == 422, body
    assert client.post("/v1/ports/NL-RT/inspection-lists", json={"date": "2025-03-02", "capacity": 5}, headers=headers).status_code == 422


def test_risk_port_is_required_unless_single_port_officer(client, make_key):
    multi = make_key("officer", PORT, OTHER_PORT)
    assert client.get("/v1/containers/CSQU3054383/risk", headers=multi).status_code == 422
    assert client.get("/v1/containers/CSQU3054384/risk?port=NLRTM", headers=multi).status_code == 422


def test_tampered_list_record_fails_integrity_with_a_generic_500(client, database, make_key):
    list_id = insert_list(database)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE inspection_lists SET record_json = replace(record_json, 'M-1', 'M-9') WHERE id = :id"), {"id": list_id})
    response = client.get(f"/v1/inspection-lists/{list_id}", headers=make_key("admin"))
    assert response.status_code == 500
    body = response.json()
    assert body == {"detail": "internal server error", "request_id": response.headers["x-request-id"]}
    assert "Traceback" not in response.text and "StoredListCorrupt" not in response.text
    with database.read() as session:
        row = session.get(StoredList, list_id)
        assert row is not None
        event = session.scalars(select(AuditEvent).where(AuditEvent.object_id == list_id, AuditEvent.action == "list.fetch")).one()
    assert (event.result, event.status_code) == ("error", 500)
    with pytest.raises(StoredListCorruptError, match="does not match its content hash"):
        load_record(row)


# --------------------------------------------------------------------------- officer amendments


def _amend(client, list_id: str, headers: dict, **body):
    return client.post(f"/v1/inspection-lists/{list_id}/amendments", json={"reason": "Seal mismatch seen at the gate", **body}, headers=headers)


def test_officer_adds_a_deferred_candidate_and_removes_a_selected_item_with_reasons(client, database, make_key):
    list_id = insert_list(database)
    officer = make_key("officer", PORT)
    added = _amend(client, list_id, officer, action="ADD", manifest_id="M-4", exam_type="PHYSICAL")
    assert added.status_code == 201, added.text
    removed = _amend(client, list_id, officer, action="REMOVE", manifest_id="M-2", reason="  Examined by the port authority this morning ")
    assert removed.status_code == 201, removed.text
    listed = client.get(f"/v1/inspection-lists/{list_id}/amendments", headers=make_key("auditor")).json()
    assert listed["list_id"] == list_id
    assert [(a["action"], a["manifest_id"], a["container_number"], a["source"], a["exam_type"], a["reason"]) for a in listed["items"]] == [
        ("ADD", "M-4", "GESU3927660", "OFFICER", "PHYSICAL", "Seal mismatch seen at the gate"),
        ("REMOVE", "M-2", "TEXU3070079", "OFFICER", "NII", "Examined by the port authority this morning"),
    ]
    assert listed["items"][0]["score"] == 0.55 and listed["items"][0] == added.json()
    # the served list itself is unchanged: same body, same content hash
    body = client.get(f"/v1/inspection-lists/{list_id}", headers=officer).json()
    assert body["content_sha256"] == sample_list().content_sha256() and [i["manifest_id"] for i in body["items"]] == ["M-1", "M-2", "M-3"]
    with database.read() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "list.amend").order_by(AuditEvent.seq)).all()
    assert [(e.result, e.status_code, e.port) for e in events] == [("ok", 201, PORT)] * 2
    assert '"manifest_id":"M-4"' in events[0].detail and "Seal mismatch" in events[0].detail


def test_amendments_the_list_rules_out_are_refused_and_audited(client, database, make_key):
    list_id = insert_list(database)
    officer = make_key("officer", PORT)
    cases = [
        ({"action": "ADD", "manifest_id": "M-1"}, 422, "already on the list (rank 1)"),
        ({"action": "ADD", "manifest_id": "M-77"}, 422, "not a candidate of this list (not due at NLRTM on 2025-03-01)"),
        ({"action": "REMOVE", "manifest_id": "M-4"}, 422, "is not on the list"),
        ({"action": "REMOVE", "manifest_id": "M-1", "exam_type": "NII"}, 422, "exam_type is given only with an addition"),
    ]
    for body, status, message in cases:
        response = _amend(client, list_id, officer, **body)
        assert (response.status_code, message in response.json()["detail"][0]["msg"]) == (status, True), (body, response.text)
    assert _amend(client, list_id, officer, action="ADD", manifest_id="M-4").status_code == 201
    again = _amend(client, list_id, officer, action="ADD", manifest_id="M-4", reason="Other reason")
    assert again.status_code == 409 and again.json()["detail"] == "manifest M-4 was already added to this list"
    for body in ({"action": "KEEP", "manifest_id": "M-1"}, {"action": "ADD", "manifest_id": "M-4", "reason": "x"}, {"action": "ADD", "manifest_id": "M-4", "extra": 1}):
        assert _amend(client, list_id, officer, **body).status_code == 422, body
    with database.read() as session:
        results = session.scalars(select(AuditEvent.result).where(AuditEvent.action == "list.amend").order_by(AuditEvent.seq)).all()
    assert results == ["invalid"] * 4 + ["ok", "conflict"]
    other = make_key("officer", OTHER_PORT)
    denied = _amend(client, list_id, other, action="ADD", manifest_id="M-4")
    assert denied.status_code == 404 and denied.json() == {"detail": "inspection list not found"}


# --------------------------------------------------------------------------- fetches check the creation seal


def _forge_record(database, list_id: str) -> None:
    """Rewrite a stored list's record and its content_sha256 together (a forgery consistent with itself)."""
    import hashlib

    with database.engine.begin() as connection:
        stored = connection.execute(text("SELECT record_json FROM inspection_lists WHERE id = :id"), {"id": list_id}).scalar_one()
        forged = stored.replace("M-1", "M-9")
        connection.execute(
            text("UPDATE inspection_lists SET record_json = :r, content_sha256 = :h WHERE id = :id"),
            {"r": forged, "h": hashlib.sha256(forged.encode()).hexdigest(), "id": list_id},
        )


def test_forged_record_with_a_recomputed_content_hash_is_refused_as_json_and_csv(client, database, make_key):
    list_id = insert_list(database)
    _forge_record(database, list_id)
    admin = make_key("admin")
    for path in (f"/v1/inspection-lists/{list_id}", f"/v1/inspection-lists/{list_id}.csv", f"/v1/inspection-lists/{list_id}/deferred"):
        response = client.get(path, headers=admin)
        assert response.status_code == 500 and "M-9" not in response.text, path


def test_a_cached_list_forged_afterwards_is_refused_in_every_form(client, database, make_key):
    """Once the JSON body is cached, a forgery is refused both from the cache (JSON) and from the store (CSV)."""
    list_id = insert_list(database)
    officer = make_key("officer", PORT)
    assert client.get(f"/v1/inspection-lists/{list_id}", headers=officer).status_code == 200  # cached now
    _forge_record(database, list_id)
    json_body = client.get(f"/v1/inspection-lists/{list_id}", headers=officer)
    csv_body = client.get(f"/v1/inspection-lists/{list_id}.csv", headers=officer)
    assert (json_body.status_code, csv_body.status_code) == (500, 500)
    assert "M-9" not in csv_body.text


@pytest.mark.parametrize(
    ("column", "value"),
    [("port", PORT), ("list_date", "2025-03-02"), ("created_by", "k-intruder"), ("model_version", "99"), ("direction", "EXPORT"),
     ("ruleset_version", 1), ("watchlist_as_of", "2020-01-01 00:00:00.000000")],
)
def test_a_change_of_any_list_metadata_is_refused_on_fetch(client, database, make_key, column, value):
    """A BEANR list whose port column is set to NLRTM is not served to the NLRTM officer, and so on for every column."""
    list_id = insert_list(database, sample_list(port=OTHER_PORT))
    admin = make_key("admin")
    if column == "ruleset_version":
        from serve.store.rulesets import add_rule
        from features.rules.language import default_rule_profiles

        with database.write() as session:  # a second rule-set version to point the list at
            add_rule(session, default_rule_profiles()[0].model_copy(update={"code": "OTHER"}), actor="test")
        value = 2
    with database.engine.begin() as connection:
        connection.execute(text(f"UPDATE inspection_lists SET {column} = :v WHERE id = :id"), {"v": value, "id": list_id})
    for headers in (admin, make_key("officer", PORT)):
        for path in (f"/v1/inspection-lists/{list_id}", f"/v1/inspection-lists/{list_id}.csv"):
            response = client.get(path, headers=headers)
            assert response.status_code in (404, 500) and "CSQU" not in response.text, (path, response.text)
    assert client.get(f"/v1/inspection-lists/{list_id}", headers=admin).status_code == 500


@pytest.mark.parametrize("reason", ["Seal\x00mismatch at gate", "Seal mismatch \u202eetag", "Seal mismatch\r\nat the gate", "Seal\u200bmismatch"])
def test_control_and_invisible_characters_in_an_amendment_reason_are_422(client, database, make_key, reason):
    list_id = insert_list(database)
    response = _amend(client, list_id, make_key("officer", PORT), action="ADD", manifest_id="M-4", reason=reason)
    assert response.status_code == 422 and ["body", "reason"] in [e["loc"] for e in response.json()["detail"]]


def test_csv_export_neutralises_formulas_in_every_cell_and_reason(client, database, make_key):
    items = (
        ListItem(1, "CSQU3054383", "=HYPERLINK(\"http://x\")", 0.9, "RULE", 1.0, ("+cmd", "ok", "@SUM(A1)", "-2+3", "\tx"), "NII"),
    )
    list_id = insert_list(database, replace(sample_list(), items=items))
    exported = client.get(f"/v1/inspection-lists/{list_id}.csv", headers=make_key("officer", PORT))
    row = next(csv.DictReader(io.StringIO(exported.text)))
    assert row["manifest_id"] == "'=HYPERLINK(\"http://x\")"
    assert row["reasons"].split(" | ") == ["'+cmd", "ok", "'@SUM(A1)", "'-2+3", "'\tx"]


def test_a_list_moved_to_another_port_in_the_database_is_not_listed_there(client, database, make_key):
    """A BEANR list whose port column is set to NLRTM: the NLRTM officer neither reads nor lists it."""
    genuine = insert_list(database)
    moved = insert_list(database, sample_list(port=OTHER_PORT))
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE inspection_lists SET port = :p WHERE id = :id"), {"p": PORT, "id": moved})
    officer = make_key("officer", PORT)
    listing = client.get(f"/v1/ports/{PORT}/inspection-lists", headers=officer)
    assert listing.status_code == 200 and [s["id"] for s in listing.json()["items"]] == [genuine]
    assert client.get(f"/v1/inspection-lists/{moved}", headers=officer).status_code == 500
    with database.read() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "list.search").order_by(AuditEvent.seq.desc())).first()
    assert event.result == "error" and moved in event.detail
