"""Outcome exports and amendment listings check every record against its seal, as list fetches do: a forged one is named, never served.

Exports feed training (``targeting outcomes export``, ``targeting train --sync``) and
the hit-rate report; an outcome edited in the database, written there behind the
service's back, or vouched for by an edited seal stops them with the outcome named.
A list's amendments (``GET .../amendments``) are checked the same way.
"""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

import targeting.cli.service  # noqa: F401  (registers the commands)
from serve.seals import SealMismatchError
from serve.store.outcomes import export_outcomes
from serve.tables import AuditEvent
from serve_helpers import PORT, idem, insert_list, outcome_body
from targeting.cli import app as cli

HIT_RATES = f"/v1/ports/{PORT}/hit-rates?since=2025-02-01&until=2025-04-01"


@pytest.fixture
def officer(make_key):
    return make_key("officer", PORT)


def _post_outcomes(client, officer, count: int) -> list[str]:  # noqa: ANN001
    ids = []
    for n in range(count):
        body = outcome_body(inspected_at=f"2025-03-01T10:{n:02d}:00+00:00", result="NO_FINDING", seizure_category=None, quantity_kg=None)
        response = client.post("/v1/inspection-outcomes", json=body, headers={**officer, **idem()})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def _sql(database, statement: str, **params) -> None:  # noqa: ANN001 - an edit made directly in the database, as an intruder would
    with database.engine.begin() as connection:
        connection.execute(text(statement), params)


def test_sound_outcomes_are_exported_and_reported(client, officer, database):
    ids = _post_outcomes(client, officer, 3)
    assert export_outcomes(database).height == 3
    assert client.get(HIT_RATES, headers=officer).json()["inspections"] == len(ids)


def test_an_outcome_flipped_to_seizure_in_the_database_is_named_and_not_exported(client, officer, database):
    ids = _post_outcomes(client, officer, 3)
    _sql(database, "UPDATE outcomes SET result = 'SEIZURE', seizure_category = 'COCAINE', quantity_kg = 50 WHERE id = :id", id=ids[1])
    with pytest.raises(SealMismatchError, match=f"outcome:{ids[1]} was modified after it was recorded") as raised:
        export_outcomes(database)
    assert [problem.record for problem in raised.value.problems] == [f"outcome:{ids[1]}"]
    response = client.get(HIT_RATES, headers=officer)
    assert response.status_code == 500 and ids[1] not in response.text and "SEIZURE" not in response.text
    with database.read() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "outcome.hit_rates")).one()
    assert (event.result, event.status_code) == ("error", 500)
    assert json.loads(event.detail)["bad_records"] == [f"outcome:{ids[1]}"]


def test_an_outcome_inserted_behind_the_service_is_named_and_not_exported(client, officer, database):
    ids = _post_outcomes(client, officer, 1)
    columns = "id, api_key_id, idempotency_key, request_sha256, response_status, response_json, created_at, manifest_id, container_number, port, inspected_at, exam_type, result, seal_status, examiner, selection_source, direction"
    _sql(
        database,
        f"INSERT INTO outcomes ({columns}) SELECT 'forged-1', api_key_id, 'forged', request_sha256, response_status, response_json,"
        " created_at, manifest_id, container_number, port, '2025-03-05 10:00:00.000000', exam_type, 'SEIZURE', seal_status,"
        f" examiner, selection_source, direction FROM outcomes WHERE id = :id",
        id=ids[0],
    )
    with pytest.raises(SealMismatchError, match="outcome:forged-1 has no valid seal in the audit trail"):
        export_outcomes(database, port=PORT)


def test_an_edited_seal_does_not_vouch_for_an_edited_outcome(client, officer, database):
    from serve.seals import values_digest
    from serve.store.outcomes import _EXPORT_COLUMNS
    from serve.tables import OutcomeRow

    ids = _post_outcomes(client, officer, 1)
    _sql(database, "UPDATE outcomes SET examiner = 'EX-FORGED' WHERE id = :id", id=ids[0])
    with database.read() as session:  # the intruder recomputes the seal of the edited row and writes it into the event
        row = session.execute(select(*(getattr(OutcomeRow, c) for c in _EXPORT_COLUMNS)).where(OutcomeRow.id == ids[0])).one()
        event = session.scalars(select(AuditEvent).where(AuditEvent.object_id == ids[0])).one()
    detail = json.loads(event.detail)
    detail["seals"][f"outcome:{ids[0]}"] = values_digest("outcome", row._mapping)
    _sql(database, "DROP TRIGGER audit_events_no_update")  # the intruder owns the database file
    _sql(database, "UPDATE audit_events SET detail = :detail WHERE seq = :seq", detail=json.dumps(detail), seq=event.seq)
    with pytest.raises(SealMismatchError, match=f"outcome:{ids[0]} has no valid seal"):
        export_outcomes(database)


def test_outcomes_export_command_names_the_forged_outcome_and_writes_nothing(client, officer, database, settings, tmp_path, monkeypatch):
    ids = _post_outcomes(client, officer, 2)
    _sql(database, "UPDATE outcomes SET port = 'BEANR' WHERE id = :id", id=ids[0])
    monkeypatch.setenv("CCP_DATABASE_URL", settings.database_url)
    out = tmp_path / "outcomes.parquet"
    result = CliRunner().invoke(cli, ["outcomes", "export", str(out)])
    assert result.exit_code == 1, result.output
    assert f"outcome:{ids[0]}" in result.output.replace("\n", "") and not out.exists()


def test_train_sync_names_the_forged_outcome_and_trains_on_nothing(client, officer, database, settings, tmp_path, monkeypatch):
    from models.tracking import configure
    from targeting.cli import _register

    _register()
    ids = _post_outcomes(client, officer, 2)
    _sql(database, "UPDATE outcomes SET result = 'SEIZURE' WHERE id = :id", id=ids[1])
    monkeypatch.setenv("CCP_DATABASE_URL", settings.database_url)
    lake, store = tmp_path / "lake", f"sqlite:///{tmp_path / 'mlflow.db'}"
    shutil.copytree(settings.lake_dir, lake)  # the service's manifests, no outcome yet
    configure(store)  # an initialised MLflow store
    result = CliRunner().invoke(cli, ["train", "--lake", str(lake), "--tracking-uri", store, "--sync"])
    assert result.exit_code == 2, result.output
    assert f"outcome:{ids[1]}" in result.output.replace("\n", "") and not (lake / "outcomes").exists()


def _amend(client, list_id: str, headers: dict, **body):  # noqa: ANN001, ANN202
    return client.post(f"/v1/inspection-lists/{list_id}/amendments", json={"reason": "Seal mismatch seen at the gate", **body}, headers=headers)


def test_an_amendment_reason_edited_in_the_database_is_refused_with_500_naming_it(client, officer, database):
    list_id = insert_list(database)
    added = _amend(client, list_id, officer, action="ADD", manifest_id="M-4", exam_type="PHYSICAL")
    assert added.status_code == 201, added.text
    assert _amend(client, list_id, officer, action="REMOVE", manifest_id="M-2").status_code == 201
    listing = f"/v1/inspection-lists/{list_id}/amendments"
    assert [a["manifest_id"] for a in client.get(listing, headers=officer).json()["items"]] == ["M-4", "M-2"]
    _sql(database, "UPDATE list_amendments SET reason = 'Nothing to see' WHERE id = :id", id=added.json()["id"])
    response = client.get(listing, headers=officer)
    assert response.status_code == 500 and "Nothing to see" not in response.text
    with database.read() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "list.amendments").order_by(AuditEvent.seq.desc())).first()
    assert (event.result, event.status_code) == ("error", 500)
    assert json.loads(event.detail)["bad_records"] == [f"list_amendment:{added.json()['id']}"]


def test_an_amendment_inserted_behind_the_service_is_refused_with_500(client, officer, database):
    list_id = insert_list(database)
    added = _amend(client, list_id, officer, action="ADD", manifest_id="M-4", exam_type="PHYSICAL")
    assert added.status_code == 201, added.text
    columns = "id, list_id, action, manifest_id, container_number, score, exam_type, reason, created_at, created_by, direction"
    _sql(
        database,
        f"INSERT INTO list_amendments ({columns}) SELECT 'forged-amendment-1', list_id, 'REMOVE', 'M-1', 'CSQU3054383', score, NULL, 'forged', created_at,"
        " created_by, direction FROM list_amendments WHERE id = :id",
        id=added.json()["id"],
    )
    assert client.get(f"/v1/inspection-lists/{list_id}/amendments", headers=officer).status_code == 500
