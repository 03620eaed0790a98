"""The INTEGRITY slice through the real app (HTTP), the real engine and a champion trained with its integrity norms:
unusual seal/dwell traces the model left get their share of the list, with officer reasons and their integrity on record."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from features.clock import now
from serve.web.i18n import REASON_PATTERNS
from serve_helpers import PORT, TODAY, idem

pytestmark = pytest.mark.slow

INTEGRITY_REASONS = [pattern for pattern, message in REASON_PATTERNS if message.startswith(("Seal replaced", "Stayed", "Gate-in only"))]


def test_a_list_gives_its_integrity_share_to_unusual_traces_with_reasons_and_an_officer_records_their_outcome(e2e_service):
    officer = e2e_service.as_("officer_own")
    body = {"date": TODAY.isoformat(), "capacity": 60, "exploration_share": 0.05, "integrity_share": 0.5}
    response = e2e_service.client.post(f"/v1/ports/{PORT}/inspection-lists", json=body, headers=officer)
    assert response.status_code == 201, response.text
    listed = response.json()
    assert listed["integrity_share"] == 0.5
    integrity = [item for item in listed["items"] if item["source"] == "INTEGRITY"]
    assert integrity, "the champion's norms find unusual traces among the day's candidates"
    assert len(integrity) <= 30  # round_half_up(60 x 0.5): unused slots went back to the model
    for item in integrity:
        assert item["selection_probability"] == 1.0 and item["integrity"]["p_value"] < 0.01
        assert any(p.match(item["reasons"][0]) for p in INTEGRITY_REASONS), item["reasons"]
    assert all(item["integrity"] is not None for item in listed["items"])  # every item's trace is on record for audit
    sources = [item["source"] for item in listed["items"]]
    assert sources == sorted(sources, key=["WATCHLIST", "RULE", "MODEL", "INTEGRITY", "RANDOM"].index)
    exported = list(csv.DictReader(io.StringIO(e2e_service.client.get(f"/v1/inspection-lists/{listed['id']}.csv", headers=officer).text)))
    assert [float(row["integrity_p_value"]) < 0.01 for row in exported if row["source"] == "INTEGRITY"] == [True] * len(integrity)

    item = integrity[0]
    outcome = {
        "manifest_id": item["manifest_id"], "container_number": item["container_number"], "port": PORT,
        "inspected_at": (now() - timedelta(minutes=1)).isoformat(), "exam_type": item["exam_type"] or "PHYSICAL", "result": "NO_FINDING",
        "seal_status": "MISMATCH", "examiner": "EX-17", "selection_source": "INTEGRITY",
    }  # fmt: skip
    recorded = e2e_service.client.post("/v1/inspection-outcomes", json=outcome, headers={**officer, **idem()})
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["selection_source"] == "INTEGRITY"
