"""The split's seizure counts are the seizures of the rows training uses: one per seized served row, on its list day."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from features.data.validation import validate
from features.history import History
from models.split_choice import seizure_days

sys.path.insert(0, str(Path(__file__).parents[1] / "features"))
from ingest_samples import NOW, raw_frame, row  # noqa: E402


def _typed(table: str, rows: list[dict]):  # noqa: ANN202
    result = validate(table, raw_frame(rows), now=NOW)
    assert result.rejected.height == 0, result.rejected
    return result.accepted


def test_an_export_seizure_counts_on_its_departure_day_and_an_import_seizure_on_its_arrival_day():
    # both manifests leave COBUN on 2024-01-05 (23:00 UTC) and arrive at NLRTM on 2024-01-20
    manifests = _typed("manifests", [row("manifests", manifest_id="M1"), row("manifests", manifest_id="M2"), row("manifests", manifest_id="M3")])
    seizure = {"result": "SEIZURE", "seizure_category": "COCAINE", "quantity_kg": "10"}
    outcomes = _typed(
        "outcomes",
        [
            row("outcomes", manifest_id="M1", **seizure),  # at NLRTM, IMPORT
            row("outcomes", manifest_id="M2", port="COBUN", direction="EXPORT", inspected_at="2024-01-05T20:00:00Z", **seizure),
            row("outcomes", manifest_id="M3", port="COBUN", direction="IMPORT", **seizure),  # COBUN does not discharge it: no row
        ],
    )
    assert seizure_days(History.from_frames(manifests, outcomes=outcomes)) == [date(2024, 1, 5), date(2024, 1, 20)]
