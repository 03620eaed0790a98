"""Which port handles a manifest, and which outcomes match their manifest (what labels and hit rates may use)."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

from features.data.handling import handled_directions, handles, matching_outcomes
from features.data.validation import validate
from features.history import History
from models.training import matched_history

sys.path.insert(0, str(Path(__file__).parent))
from ingest_samples import NOW, raw_frame, row  # noqa: E402

MANIFEST = {"port_of_loading": "COBUN", "port_of_discharge": "NLRTM", "transshipment_ports": ["PAMIT"]}


def test_a_port_handles_a_manifest_as_discharge_loading_or_transshipment_port():
    assert handled_directions(MANIFEST, "NLRTM") == ("IMPORT",)
    assert handled_directions(MANIFEST, "COBUN") == ("EXPORT",)
    assert handled_directions(MANIFEST, "PAMIT") == ("TRANSSHIPMENT",)
    assert handled_directions(MANIFEST, "BEANR") == ()
    assert handles(MANIFEST, "NLRTM", "IMPORT") and not handles(MANIFEST, "NLRTM", "EXPORT")
    assert handles({**MANIFEST, "transshipment_ports": None}, "COBUN") and not handles({**MANIFEST, "transshipment_ports": None}, "PAMIT")


def _typed(table: str, rows: list[dict]) -> pl.DataFrame:
    result = validate(table, raw_frame(rows), now=NOW)
    assert result.rejected.height == 0, result.rejected
    return result.accepted


def _history() -> History:
    manifests = _typed("manifests", [row("manifests", manifest_id="M1"), row("manifests", manifest_id="M2")])
    outcomes = _typed(
        "outcomes",
        [
            row("outcomes", manifest_id="M1"),  # matches: NLRTM discharges M1's container CSQU3054383
            row("outcomes", manifest_id="M2", port="COBUN", inspected_at="2024-01-03T10:00:00Z"),  # the port of loading: matches
            row("outcomes", manifest_id="M2", container_number="TEXU3070079"),  # another container
            row("outcomes", manifest_id="M9"),  # no such manifest
            row("outcomes", manifest_id="M1", port="BEANR", inspected_at="2024-01-22T16:00:00+01:00"),  # a port M1 never passes
        ],
    )
    return History.from_frames(manifests, outcomes=outcomes)


def test_outcomes_that_do_not_match_their_manifest_are_split_off():
    history = _history()
    matching, ignored = (f.collect() for f in matching_outcomes(history.outcomes, history.manifests))
    assert matching.select("manifest_id", "port").rows() == [("M1", "NLRTM"), ("M2", "COBUN")]
    assert sorted(ignored.select("manifest_id", "container_number", "port").rows()) == [
        ("M1", "CSQU3054383", "BEANR"),
        ("M2", "TEXU3070079", "NLRTM"),
        ("M9", "CSQU3054383", "NLRTM"),
    ]
    assert matching.schema == ignored.schema == history.outcomes.collect_schema()


def test_training_labels_ignore_unmatched_outcomes_and_count_them():
    matched, ignored = matched_history(_history())
    assert ignored == 3
    assert matched.outcomes.collect()["manifest_id"].to_list() == ["M1", "M2"]


def test_an_outcome_matches_only_when_its_port_handles_the_manifest_in_the_outcomes_direction():
    manifests = _typed("manifests", [row("manifests", manifest_id="M1")])  # loaded at COBUN, discharged at NLRTM
    outcomes = _typed(
        "outcomes",
        [
            row("outcomes", manifest_id="M1", direction="IMPORT"),
            row("outcomes", manifest_id="M1", port="COBUN", direction="EXPORT", inspected_at="2024-01-03T10:00:00Z"),
            row("outcomes", manifest_id="M1", port="COBUN", direction="IMPORT", inspected_at="2024-01-03T11:00:00Z"),  # COBUN loads it
            row("outcomes", manifest_id="M1", direction="TRANSSHIPMENT", inspected_at="2024-01-03T12:00:00Z"),
            row("outcomes", manifest_id="M1", port="COBUN", inspected_at="2024-01-03T13:00:00Z"),  # no direction: the port's
        ],
    )
    matching, ignored = (f.collect() for f in matching_outcomes(outcomes.lazy(), manifests.lazy()))
    assert matching.select("port", "direction").rows() == [("NLRTM", "IMPORT"), ("COBUN", "EXPORT"), ("COBUN", "EXPORT")]
    assert ignored.select("port", "direction").rows() == [("COBUN", "IMPORT"), ("NLRTM", "TRANSSHIPMENT")]
