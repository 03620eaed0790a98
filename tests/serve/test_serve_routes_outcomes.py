"""POST /v1/inspection-outcomes: strict validation, idempotency, port scoping; export for training."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from sqlalchemy import func, select

from features.data.contracts import INSPECTION_OUTCOMES
from serve.store.outcomes import export_outcomes
from serve.tables import AuditEvent, OutcomeRow
from serve_helpers import NOW as TESTS_NOW
from serve_helpers import OTHER_PORT, PORT, POOL_CONTAINER, idem, outcome_body, pool_manifest


@pytest.fixture
def officer(make_key):
    return make_key("officer", PORT)


def _count(database) -> int:
    with database.read() as session:
        return session.scalar(select(func.count()).select_from(OutcomeRow))


def test_outcome_is_stored_and_returned(client, officer, database):
    body = outcome_body(container_number="CSQU3054383")
    response = client.post("/v1/inspection-outcomes", json=body, headers={**officer, **idem()})
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["container_number"] == "CSQU3054383"
    assert stored["inspected_at"] == "2025-03-01T09:15:00Z"
    assert _count(database) == 1


def test_outcome_response_is_the_public_schema_of_the_stored_row_byte_for_byte(client, officer, database):
    from serve.schemas.outcomes import OutcomePublic
    from targeting.lists import canonical_json

    for body in (outcome_body(direction="IMPORT"), outcome_body(result="NO_FINDING", seizure_category=None, quantity_kg=None)):
        response = client.post("/v1/inspection-outcomes", json=body, headers={**officer, **idem()})
        assert response.status_code == 201, response.text
        with database.read() as session:
            row = session.get(OutcomeRow, response.json()["id"])
        public = OutcomePublic(id=row.id, created_at=row.created_at, **{name: getattr(row, name) for name in INSPECTION_OUTCOMES.column_names})
        assert response.content.decode() == row.response_json == canonical_json(public.model_dump(mode="json"))


def test_same_key_and_body_replays_the_stored_response(client, officer, database):
    headers = {**officer, **idem()}
    body = outcome_body()
    first = client.post("/v1/inspection-outcomes", json=body, headers=headers)
    again = client.post("/v1/inspection-outcomes", json=body, headers=headers)
    assert (again.status_code, again.content) == (first.status_code, first.content) == (201, first.content)
    assert _count(database) == 1
    with database.read() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "outcome")).all()
    assert actions == ["outcome.create", "outcome.replay"]


def test_the_default_direction_given_explicitly_is_the_same_request_and_replays(client, officer, database):
    headers = {**officer, **idem()}
    body = outcome_body()
    first = client.post("/v1/inspection-outcomes", json=body, headers=headers)
    again = client.post("/v1/inspection-outcomes", json={**body, "direction": "IMPORT"}, headers=headers)
    assert (again.status_code, again.content) == (201, first.content)
    other = client.post("/v1/inspection-outcomes", json={**body, "direction": "EXPORT"}, headers=headers)
    assert other.status_code == 422 and _count(database) == 1


def test_same_key_with_another_body_is_422(client, officer, database):
    headers = {**officer, **idem()}
    assert client.post("/v1/inspection-outcomes", json=outcome_body(), headers=headers).status_code == 201
    other = client.post("/v1/inspection-outcomes", json=outcome_body(examiner="EX-99"), headers=headers)
    assert other.status_code == 422
    assert other.json()["detail"] == [{"loc": [], "msg": "Idempotency-Key was already used with a different request body", "type": "value_error"}]
    assert _count(database) == 1


def test_missing_or_malformed_idempotency_key_is_400(client, officer, database):
    assert client.post("/v1/inspection-outcomes", json=outcome_body(), headers=officer).status_code == 400
    bad = {**officer, "Idempotency-Key": "has spaces"}
    assert client.post("/v1/inspection-outcomes", json=outcome_body(), headers=bad).status_code == 400
    assert _count(database) == 0


def test_idempotency_keys_are_scoped_to_the_api_key(client, make_key, database):
    key = idem()
    first = client.post("/v1/inspection-outcomes", json=outcome_body(), headers={**make_key("officer", PORT), **key})
    second = client.post("/v1/inspection-outcomes", json=outcome_body(), headers={**make_key("officer", PORT), **key})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


def test_the_same_exam_posted_under_two_keys_is_a_conflict(client, officer, database):
    body = outcome_body()
    assert client.post("/v1/inspection-outcomes", json=body, headers={**officer, **idem()}).status_code == 201
    again = client.post("/v1/inspection-outcomes", json=body, headers={**officer, **idem()})
    assert again.status_code == 409
    assert _count(database) == 1


def test_officer_cannot_post_outcomes_for_another_port(client, officer, database):
    response = client.post("/v1/inspection-outcomes", json=outcome_body(port=OTHER_PORT), headers={**officer, **idem()})
    assert response.status_code == 403
    assert _count(database) == 0


def test_multi_port_officer_posts_for_each_port(client, make_key):
    headers = make_key("officer", PORT, OTHER_PORT)
    for port in (PORT, OTHER_PORT):
        assert client.post("/v1/inspection-outcomes", json=outcome_body(port=port), headers={**headers, **idem()}).status_code == 201


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"unexpected": 1}, "unexpected"),
        ({"container_number": "CSQU3054384"}, "container_number"),
        ({"port": "NL-RT"}, "port"),
        ({"inspected_at": "2025-03-01T10:15:00"}, "inspected_at"),
        ({"inspected_at": (TESTS_NOW + timedelta(days=2)).isoformat()}, "inspected_at"),  # the tests' clock, not the machine's
        ({"exam_type": "XRAY"}, "exam_type"),
        ({"result": "NO_FINDING", "quantity_kg": None}, None),
        ({"seizure_category": None}, None),
        ({"quantity_kg": "12"}, "quantity_kg"),
        ({"quantity_kg": -1}, "quantity_kg"),
        ({"examiner": "x" * 65}, "examiner"),
        ({"concealment_method": "y" * 201}, "concealment_method"),
        ({"selection_source": "GUESS"}, "selection_source"),
        ({"seal_status": "intact"}, "seal_status"),
        ({"direction": "INBOUND"}, "direction"),
        ({"direction": "import"}, "direction"),
    ],
)
def test_invalid_outcomes_are_422_without_echoing_input(client, officer, database, overrides, field):
    response = client.post("/v1/inspection-outcomes", json=outcome_body(**overrides), headers={**officer, **idem()})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)
    if field is not None:
        assert any(field in e["loc"] for e in errors), errors
    assert _count(database) == 0


def test_seizure_category_only_with_seizure(client, officer):
    body = outcome_body(result="NO_FINDING", quantity_kg=None)
    response = client.post("/v1/inspection-outcomes", json=body, headers={**officer, **idem()})
    assert response.status_code == 422
    assert "only allowed when result is SEIZURE" in response.text
    ok = outcome_body(result="NO_FINDING", seizure_category=None, quantity_kg=None)
    assert client.post("/v1/inspection-outcomes", json=ok, headers={**officer, **idem()}).status_code == 201


def test_export_outcomes_has_the_contract_schema(client, officer, database):
    for i, exam in enumerate(("NII", "PHYSICAL")):
        body = outcome_body(exam_type=exam, inspected_at=f"2025-03-0{i + 1}T08:00:00+00:00")
        assert client.post("/v1/inspection-outcomes", json=body, headers={**officer, **idem()}).status_code == 201
    frame = export_outcomes(database)
    assert frame.schema == INSPECTION_OUTCOMES.schema
    assert frame.height == 2
    assert frame["inspected_at"].to_list()[0] == datetime(2025, 3, 1, 8, tzinfo=timezone.utc)
    with database.read() as session:
        assert export_outcomes(session, port=OTHER_PORT).height == 0
    empty = export_outcomes(database, inspected_before=datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert empty.schema == INSPECTION_OUTCOMES.schema and empty.is_empty()
    assert isinstance(frame, pl.DataFrame)


def test_hit_rates_per_selection_source_of_a_port(client, make_key, database):
    officer = make_key("officer", PORT, OTHER_PORT)

    def post(source: str, result: str, day: str, port: str = PORT, manifest: str | None = None, exam: str = "PHYSICAL") -> None:
        seized = result == "SEIZURE"
        body = outcome_body(
            selection_source=source, result=result, port=port, inspected_at=f"2025-03-{day}T10:00:00+00:00", exam_type=exam,
            seizure_category="COCAINE" if seized else None, quantity_kg=50.0 if seized else None,
            concealment_method="in the cargo" if seized else None,
            **({"manifest_id": manifest} if manifest else {}),
        )
        assert client.post("/v1/inspection-outcomes", json=body, headers={**officer, **idem()}).status_code == 201

    post("MODEL", "SEIZURE", "02")
    post("MODEL", "NO_FINDING", "03")
    twice = pool_manifest()
    post("RANDOM", "NO_FINDING", "03", manifest=twice, exam="NII")
    post("RULE", "SEIZURE", "04", manifest=twice)  # the physical exam after the scan: counted under RANDOM
    post("OFFICER", "SEIZURE", "05")
    post("RULE", "DISCREPANCY", "05")
    post("MODEL", "SEIZURE", "05", port=OTHER_PORT)  # another port
    post("MODEL", "SEIZURE", "10")  # outside the window below
    response = client.get(f"/v1/ports/{PORT}/hit-rates", params={"since": "2025-03-01", "until": "2025-03-10"}, headers=officer)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["port"], report["since"], report["until"], report["inspections"], report["seizures"]) == (PORT, "2025-03-01", "2025-03-10", 5, 3)
    assert report["sources"] == [
        {"selection_source": "MODEL", "inspections": 2, "seizures": 1, "hit_rate": 0.5, "seized_kg": 50.0},
        {"selection_source": "OFFICER", "inspections": 1, "seizures": 1, "hit_rate": 1.0, "seized_kg": 50.0},
        {"selection_source": "RANDOM", "inspections": 1, "seizures": 1, "hit_rate": 1.0, "seized_kg": 50.0},
        {"selection_source": "RULE", "inspections": 1, "seizures": 0, "hit_rate": 0.0, "seized_kg": 0.0},
    ]
    empty = client.get(f"/v1/ports/{PORT}/hit-rates", params={"since": "2024-01-01", "until": "2024-02-01"}, headers=officer).json()
    assert (empty["inspections"], empty["sources"]) == (0, [])
    for params in ({"since": "2025-03-10", "until": "2025-03-10"}, {"since": "2000-01-01", "until": "2025-03-10"}, {"since": "March"}):
        assert client.get(f"/v1/ports/{PORT}/hit-rates", params=params, headers=officer).status_code == 422, params
    outsider = client.get(f"/v1/ports/{PORT}/hit-rates", headers=make_key("officer", "BEANR"))
    assert outsider.status_code == 404 and "MODEL" not in outsider.text
    with database.read() as session:
        results = session.scalars(select(AuditEvent.result).where(AuditEvent.action == "outcome.hit_rates").order_by(AuditEvent.seq)).all()
    assert results == ["ok", "ok", "not_found"]


# --------------------------------------------------------------------------- outcomes scoped to the port's own manifests


def _post(client, headers, body):
    return client.post("/v1/inspection-outcomes", json=body, headers={**headers, **idem()})


def test_outcome_on_another_ports_manifest_answers_like_a_missing_manifest(client, make_key, database):
    beanr = make_key("officer", OTHER_PORT)
    nlrtm_manifest = outcome_body(port=OTHER_PORT, manifest_id=pool_manifest(PORT))
    missing = outcome_body(port=OTHER_PORT, manifest_id="M-DOES-NOT-EXIST")
    other, absent = _post(client, beanr, nlrtm_manifest), _post(client, beanr, missing)
    assert other.status_code == absent.status_code == 422
    assert other.json() == absent.json() == {
        "detail": [{"loc": ["body", "manifest_id"], "msg": "no manifest with this id is handled by the port", "type": "value_error"}]
    }
    seizure = outcome_body(port=OTHER_PORT, manifest_id=pool_manifest(PORT), container_number="TEXU3070079")
    assert _post(client, beanr, seizure).json() == absent.json()  # not even the container is checked: no oracle
    assert _count(database) == 0


def test_outcome_with_another_container_than_its_manifests_is_422_naming_container_number(client, officer, database):
    response = _post(client, officer, outcome_body(container_number="TEXU3070079"))
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "container_number"]]
    assert _count(database) == 0


def test_duplicate_exam_check_is_scoped_to_the_port(client, make_key):
    """Both ports handle a shared manifest (loaded at one, discharged at the other): one port's record neither
    reveals nor blocks the other's, and each port still gets 409 for its own duplicate."""
    exam = {"manifest_id": "M-SHARED-00007", "inspected_at": "2025-03-01T10:15:00+00:00"}
    beanr, nlrtm = make_key("officer", OTHER_PORT), make_key("officer", PORT)
    assert _post(client, beanr, outcome_body(port=OTHER_PORT, direction="EXPORT", **exam)).status_code == 201
    assert _post(client, nlrtm, outcome_body(port=PORT, **exam)).status_code == 201
    assert _post(client, nlrtm, outcome_body(port=PORT, **exam)).status_code == 409
    assert _post(client, beanr, outcome_body(port=OTHER_PORT, direction="EXPORT", **exam)).status_code == 409


def test_outcome_must_name_a_manifest_its_port_handles_in_the_outcomes_direction(client, make_key, database):
    """BEANR loads the shared manifests (EXPORT) and discharges its pool (IMPORT): an outcome in the other direction
    answers exactly like a missing manifest; the direction is stored, returned and exported (IMPORT by default)."""
    beanr = make_key("officer", OTHER_PORT)
    shared = {"manifest_id": "M-SHARED-00150", "port": OTHER_PORT}
    missing = _post(client, beanr, outcome_body(port=OTHER_PORT, manifest_id="M-DOES-NOT-EXIST"))
    as_import = _post(client, beanr, outcome_body(**shared))  # default direction IMPORT: BEANR does not discharge it
    as_transshipment = _post(client, beanr, outcome_body(direction="TRANSSHIPMENT", **shared))
    assert as_import.status_code == as_transshipment.status_code == missing.status_code == 422
    assert as_import.json() == as_transshipment.json() == missing.json()
    assert _post(client, beanr, outcome_body(port=OTHER_PORT, direction="EXPORT")).status_code == 422  # its own pool, as an export
    exported = _post(client, beanr, outcome_body(direction="EXPORT", **shared))
    imported = _post(client, beanr, outcome_body(port=OTHER_PORT))
    assert (exported.status_code, exported.json()["direction"]) == (201, "EXPORT")
    assert (imported.status_code, imported.json()["direction"]) == (201, "IMPORT")
    frame = export_outcomes(database, port=OTHER_PORT).sort("manifest_id")
    assert frame.select("manifest_id", "direction").rows() == [(imported.json()["manifest_id"], "IMPORT"), ("M-SHARED-00150", "EXPORT")]


def test_hit_rates_are_reported_per_direction_and_per_source_within_it(client, make_key):
    beanr = make_key("officer", OTHER_PORT)

    def post(source: str, seized: bool, direction: str, manifest: str | None = None) -> None:
        body = outcome_body(
            port=OTHER_PORT, selection_source=source, result="SEIZURE" if seized else "NO_FINDING", direction=direction,
            seizure_category="COCAINE" if seized else None, quantity_kg=40.0 if seized else None,
            concealment_method="in the cargo" if seized else None, inspected_at="2025-03-03T10:00:00+00:00",
            **({"manifest_id": manifest} if manifest else {}),
        )
        assert _post(client, beanr, body).status_code == 201

    post("MODEL", True, "IMPORT")
    post("RULE", False, "IMPORT")
    post("MODEL", True, "EXPORT", manifest="M-SHARED-00160")
    post("MODEL", False, "EXPORT", manifest="M-SHARED-00161")
    post("RANDOM", False, "EXPORT", manifest="M-SHARED-00162")
    report = client.get(f"/v1/ports/{OTHER_PORT}/hit-rates", params={"since": "2025-03-01", "until": "2025-03-10"}, headers=beanr).json()
    assert (report["inspections"], report["seizures"]) == (5, 2)
    assert report["sources"][0] == {"selection_source": "MODEL", "inspections": 3, "seizures": 2, "hit_rate": 2 / 3, "seized_kg": 80.0}
    assert [(d["direction"], d["inspections"], d["seizures"]) for d in report["directions"]] == [("IMPORT", 2, 1), ("EXPORT", 3, 1)]
    export = report["directions"][1]["sources"]
    assert export == [
        {"selection_source": "MODEL", "inspections": 2, "seizures": 1, "hit_rate": 0.5, "seized_kg": 40.0},
        {"selection_source": "RANDOM", "inspections": 1, "seizures": 0, "hit_rate": 0.0, "seized_kg": 0.0},
    ]
    assert [s["selection_source"] for s in report["directions"][0]["sources"]] == ["MODEL", "RULE"]


def test_hit_rates_ignore_outcomes_that_do_not_match_their_manifest_and_count_them(client, officer, database):
    from serve.audit import record_event
    from serve.seals import seal_detail
    from serve.store.outcomes import insert_outcome, new_outcome_id
    from serve.store.keys import create_key
    from serve.security import Role

    assert _post(client, officer, outcome_body(inspected_at="2025-03-02T10:00:00+00:00")).status_code == 201
    with database.write() as session:  # a record written (and sealed) before outcomes were checked: another container
        key = create_key(session, role=Role.OFFICER, ports=(PORT,), created_by="test")
        fields = {k: v for k, v in outcome_body(inspected_at="2025-03-02T11:00:00+00:00", container_number="TEXU3070079").items()}
        fields["inspected_at"] = datetime.fromisoformat(fields["inspected_at"])
        fields.setdefault("concealment_method", None)
        row = insert_outcome(
            session, outcome_id=new_outcome_id(), fields=fields, api_key_id=key.key_id, idempotency_key="legacy",
            request_hash="0" * 64, response_status=201, response_json="{}",
        )
        record_event(session, action="outcome.create", object_type="outcome", object_id=row.id, status_code=201, detail=seal_detail(row))
    report = client.get(f"/v1/ports/{PORT}/hit-rates", params={"since": "2025-03-01", "until": "2025-03-10"}, headers=officer).json()
    assert (report["inspections"], report["seizures"], report["ignored_outcomes"]) == (1, 1, 1)


@pytest.mark.parametrize("character", ["\x00", "\u202e", "\r", "\ufeff"])
def test_control_and_invisible_characters_in_outcome_text_are_422_naming_the_field(client, officer, database, character):
    response = _post(client, officer, outcome_body(concealment_method="inside" + character + "the reefer"))
    assert response.status_code == 422 and [e["loc"] for e in response.json()["detail"]] == [["body", "concealment_method"]]
    assert _count(database) == 0
