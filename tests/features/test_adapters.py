"""Specification of the standard message adapters (features.data.adapters) through the real ingest into a real lake."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from features.data.adapters import read_message, sniff_format
from features.data.ingest import IngestFileError, ingest
from features.data.lake import Lake
from features.history import History
from targeting.policy import candidates_for

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2025, 8, 26, tzinfo=timezone.utc)
CUSCAR = DATA / "cuscar-bogota-duisburg.edi"
DCSA = DATA / "dcsa-events.json"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("cuscar-bogota-duisburg.edi", "cuscar"), ("dcsa-events.json", "dcsa"), ("codeco-gate-in.edi", "codeco"), ("coarri-discharge.edi", "coarri")],
)
def test_format_is_sniffed_from_the_content(name: str, fmt: str) -> None:
    assert sniff_format((DATA / name).read_bytes()) == fmt


def test_cuscar_and_dcsa_files_ingest_end_to_end_and_their_containers_are_list_candidates(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    manifests = ingest(lake, "manifests", [CUSCAR], now=NOW)
    events = ingest(lake, "events", [DCSA], now=NOW)
    assert (manifests.input_rows, manifests.accepted, manifests.quarantined) == (2, 2, 0), manifests.reasons
    assert (events.input_rows, events.accepted, events.quarantined) == (3, 3, 0), events.reasons  # the TRANSPORT event is not a container event

    history = History.from_lake(lake)
    stored = history.manifests.collect().sort("container_number")
    row = stored.row(0, named=True)
    # Bogota to Duisburg: inland place of receipt and delivery, via Buenaventura, Manzanillo (Panama) and Rotterdam
    assert (row["place_of_receipt"], row["port_of_loading"], row["transshipment_ports"], row["port_of_discharge"], row["place_of_delivery"]) == (
        "COBOG", "COBUN", ["PAMIT"], "NLRTM", "DEDUI",
    )
    assert (row["shipper_name"], row["consignee_country"], row["hs_code"], row["vessel_imo"], row["freight_payment"]) == (
        "Café Andino S.A.", "DE", "090111", "9321483", "PP",
    )
    assert (row["declared_value"], row["currency"], row["packages"], row["verified_gross_mass_kg"]) == (48250.0, "USD", 320, 21610.0)
    assert stored["gross_mass_kg"].to_list() == [19400.0, 19150.0]

    candidates = candidates_for(history.manifests, "NLRTM", date(2025, 8, 27)).collect()
    assert sorted(candidates["container_number"].to_list()) == ["MSKU1234565", "TGHU1643396"]
    loaded = history.events.filter(pl.col("event_type") == "LOAD").collect()
    assert sorted(loaded["container_number"].to_list()) == ["MSKU1234565", "TGHU1643396"]
    assert history.events.filter(pl.col("event_type") == "GATE_IN").collect()["event_time"].item() == datetime(2025, 8, 2, 14, 41, tzinfo=timezone.utc)


def test_reingesting_the_same_message_changes_nothing(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    ingest(lake, "manifests", [CUSCAR], now=NOW)
    again = ingest(lake, "manifests", [CUSCAR], now=NOW)
    assert (again.accepted, again.unchanged, again.quarantined) == (0, 2, 0)


def test_a_bad_segment_quarantines_its_row_naming_segment_and_element(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    summary = ingest(lake, "events", [DATA / "coarri-discharge.edi"], now=datetime(2025, 8, 28, tzinfo=timezone.utc))
    assert (summary.input_rows, summary.accepted, summary.quarantined) == (3, 2, 1)
    assert "message: COARRI segment 19 (DTM) element 1 (C507 date/time): '2025082709' is not a date/time in format 203" in summary.reasons
    assert "container_number: ISO 6346 check digit mismatch" in summary.reasons
    kinds = dict(History.from_lake(lake).events.select("container_number", "event_type").collect().iter_rows())
    assert kinds == {"MSCU7654329": "DISCHARGE", "HLXU3000120": "TS_DISCHARGE"}  # equipment status 6: transshipment


def test_a_bad_header_segment_quarantines_every_row_of_the_message(tmp_path: Path) -> None:
    text = CUSCAR.read_text(encoding="utf-8").replace("DTM+137:202508200800:203", "DTM+137:20250820:203")
    bad = tmp_path / "bad.edi"
    bad.write_text(text, encoding="utf-8")
    frame, _ = read_message(bad.read_bytes(), "manifests")
    assert frame["__source_error"].to_list() == ["message: CUSCAR segment 3 (DTM) element 1 (C507 date/time): '20250820' is not a date/time in format 203"] * 2


def test_codeco_gate_in_of_an_empty_container_is_an_empty_return(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    summary = ingest(lake, "events", [DATA / "codeco-gate-in.edi"], now=NOW)
    assert (summary.accepted, summary.quarantined) == (2, 0)
    kinds = dict(History.from_lake(lake).events.select("container_number", "event_type").collect().iter_rows())
    assert kinds == {"TGHU1643396": "GATE_IN", "CSQU3054383": "EMPTY_RETURN"}


def test_dcsa_estimated_and_unused_events_are_quarantined_with_the_event_id(tmp_path: Path) -> None:
    events = json.loads(DCSA.read_text())
    events[1]["eventClassifierCode"] = "EST"
    events[2]["equipmentEventTypeCode"] = "STRP"
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    summary = ingest(Lake(tmp_path / "lake"), "events", [path], now=NOW)
    assert (summary.accepted, summary.quarantined) == (1, 2)
    assert "message: DCSA event 3cecb101-7a1a-43a4-9d62-e88a131651e4 eventClassifierCode 'EST': only actual (ACT) events happened" in summary.reasons


def test_a_message_for_another_table_or_an_unknown_format_is_refused_whole(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    with pytest.raises(IngestFileError, match=r"a CUSCAR message holds manifests, not events: ingest it into manifests"):
        ingest(lake, "events", [CUSCAR], now=NOW)
    junk = tmp_path / "junk.edi"
    junk.write_text("hello")
    with pytest.raises(IngestFileError, match=r"not a CUSCAR, CODECO, COARRI or DCSA Track & Trace message; give --format"):
        ingest(lake, "events", [junk], now=NOW)
    broken = tmp_path / "broken.edi"
    broken.write_text("UNB+UNOA:2+A+B+250101:1000+1'UNH+1+CODECO:D:95B:UN'BGM+34")
    with pytest.raises(IngestFileError, match=r"broken.edi: "):
        ingest(lake, "events", [broken], format="codeco", now=NOW)


def test_format_option_reads_a_message_whatever_its_suffix(tmp_path: Path) -> None:
    copy = tmp_path / "manifest.cus"
    copy.write_bytes(CUSCAR.read_bytes())
    summary = ingest(Lake(tmp_path / "lake"), "manifests", [copy], format="cuscar", now=NOW)
    assert summary.accepted == 2


def test_ingest_command_takes_a_format_option(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from targeting.cli import _register, app

    _register()
    copy = tmp_path / "events.dat.json"
    copy.write_bytes((DATA / "codeco-gate-in.edi").read_bytes())
    args = ["ingest", "events", str(copy), "--lake", str(tmp_path / "lake"), "--format", "codeco", "--now", "2025-08-26T00:00:00Z", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["accepted"] == 2
