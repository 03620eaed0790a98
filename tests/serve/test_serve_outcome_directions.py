"""Outcomes carry the direction of their list: migration 0007 (existing outcomes IMPORT, idempotent) and seals
(outcomes sealed before the column still verify; changing the direction in the database is detected)."""

from __future__ import annotations

import hashlib
import sqlite3

from alembic import command
from sqlalchemy import select, text

from serve.db import alembic_config, make_engine, upgrade_to_head
from serve.seals import SEALED_COLUMNS, _jsonable, record_digest, verify_records
from serve.tables import OutcomeRow
from serve_helpers import OTHER_PORT, idem, outcome_body
from targeting.lists import canonical_json


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            config = alembic_config(url, connection=connection)
            (command.downgrade if down else command.upgrade)(config, revision)
            connection.commit()
    finally:
        engine.dispose()


def test_migration_0007_gives_existing_outcomes_the_import_direction_and_can_run_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _migrate(url, "0006")
    raw = sqlite3.connect(tmp_path / "store.db")
    with raw:
        raw.execute("INSERT INTO api_keys (id, key_hash, role, ports, label, created_at, created_by) "
                    "VALUES ('k1', 'h', 'officer', '[\"NLRTM\"]', '', '2025-01-01 00:00:00.000000', 'test')")
        raw.execute(
            "INSERT INTO outcomes (id, api_key_id, idempotency_key, request_sha256, response_status, response_json, created_at, "
            "manifest_id, container_number, port, inspected_at, exam_type, result, seal_status, examiner, selection_source) "
            "VALUES ('o1', 'k1', 'i1', 'x', 201, '{}', '2025-01-01 00:00:00.000000', 'M-1', 'CSQU3054383', 'NLRTM', "
            "'2025-01-01 00:00:00.000000', 'NII', 'NO_FINDING', 'NOT_CHECKED', 'EX-1', 'RANDOM')"
        )
    raw.close()
    upgrade_to_head(url)
    _migrate(url, "0006", down=True)  # down and up again: each column is dropped and re-added once
    upgrade_to_head(url)
    upgrade_to_head(url)
    raw = sqlite3.connect(tmp_path / "store.db")
    assert raw.execute("SELECT id, direction FROM outcomes").fetchall() == [("o1", "IMPORT")]
    raw.close()


def _digest_before_directions(row: OutcomeRow) -> str:
    """The digest the service sealed before outcomes had a direction (every other sealed column)."""
    values = {name: _jsonable(getattr(row, name)) for name in SEALED_COLUMNS["outcome"] if name != "direction"}
    return hashlib.sha256(canonical_json(values).encode()).hexdigest()


def test_outcomes_sealed_before_directions_still_verify_and_a_changed_direction_is_detected(client, database, make_key):
    beanr = make_key("officer", OTHER_PORT)
    posted = {}
    for direction, body in (("IMPORT", outcome_body(port=OTHER_PORT)), ("EXPORT", outcome_body(port=OTHER_PORT, manifest_id="M-SHARED-00170", direction="EXPORT"))):
        response = client.post("/v1/inspection-outcomes", json=body, headers={**beanr, **idem()})
        assert response.status_code == 201, response.text
        posted[direction] = response.json()["id"]
    with database.read() as session:
        rows = {row.direction: row for row in session.scalars(select(OutcomeRow))}
        assert record_digest(rows["IMPORT"]) == _digest_before_directions(rows["IMPORT"])  # an old seal of an IMPORT outcome verifies
        assert record_digest(rows["EXPORT"]) != _digest_before_directions(rows["EXPORT"])  # the direction is covered
        assert verify_records(session)[1] == []
    with database.write() as session:
        session.execute(text("UPDATE outcomes SET direction = 'EXPORT' WHERE id = :id"), {"id": posted["IMPORT"]})
        session.execute(text("UPDATE outcomes SET direction = 'IMPORT' WHERE id = :id"), {"id": posted["EXPORT"]})
    with database.read() as session:
        problems = {p.record: p.problem for p in verify_records(session)[1]}
    assert set(problems) == {f"outcome:{posted['IMPORT']}", f"outcome:{posted['EXPORT']}"}
    assert all("was modified" in p for p in problems.values())
