"""Specification of the UN/LOCODE reference (features.data.unlocode) and the location sets built on it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features.data.reference import known_locodes, location_coordinates, location_locodes, seaport_locodes, searoute_ports
from features.data.unlocode import UnlocodeError, load_unlocode, parse_coordinates, read_release, release_info, write_release

SAMPLE = Path(__file__).resolve().parent / "data" / "unlocode-release-sample.csv"


def test_packaged_list_holds_the_whole_un_locode_code_list_with_its_release() -> None:
    info = release_info()
    frame = load_unlocode()
    assert frame.height == info["locations"] > 115_000
    assert int(frame["is_seaport"].sum()) == info["seaports"] > 17_000
    assert info["release"] and info["source"]
    assert frame["locode"].is_unique().all()


@pytest.mark.parametrize(
    ("locode", "seaport", "rail", "road", "airport"),
    [("COBOG", False, True, True, True), ("DEDUI", True, True, True, True), ("CZPRG", False, True, True, True), ("NLRTM", True, True, True, True)],
)
def test_function_flags_come_from_the_classifier(locode: str, seaport: bool, rail: bool, road: bool, airport: bool) -> None:
    row = load_unlocode().filter(pl.col("locode") == locode).row(0, named=True)
    assert (row["is_seaport"], row["is_rail"], row["is_road"], row["is_airport"]) == (seaport, rail, road, airport)


def test_inland_places_are_locations_but_not_seaports() -> None:
    for inland in ("COBOG", "CZPRG", "CHBSL", "DEDUI"):
        assert inland in location_locodes()
    assert "COBOG" not in seaport_locodes() and "CZPRG" not in seaport_locodes()
    assert {"NLRTM", "SGSIN", "COBUN", "DEDUI"} <= seaport_locodes()


def test_port_reference_and_searoute_ports_are_all_seaports() -> None:
    assert known_locodes() <= seaport_locodes()
    assert set(searoute_ports()["locode"].to_list()) <= seaport_locodes()
    assert searoute_ports().height > 3_800


def test_coordinates_prefer_the_curated_container_port_position() -> None:
    coords = location_coordinates()
    assert coords["locode"].is_unique().all()
    rtm = coords.filter(pl.col("locode") == "NLRTM").row(0, named=True)
    from features.data.reference import load_ports

    curated = load_ports().filter(pl.col("locode") == "NLRTM").row(0, named=True)
    assert (rtm["latitude"], rtm["longitude"]) == (curated["latitude"], curated["longitude"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5128N 00645E", (51.466667, 6.75)), ("0436N 07405W", (4.6, -74.083333)), ("3352S 15112E", (-33.866667, 151.2)), ("26.8128N 89.1903E", (26.8128, 89.1903)), ("", (None, None)), ("99XXN", (None, None))],
)
def test_parse_coordinates(text: str, expected: tuple) -> None:
    assert parse_coordinates(text) == expected


def test_read_release_reads_a_latin1_unece_part_and_skips_country_headers_and_reference_entries() -> None:
    frame = read_release([SAMPLE])
    assert frame["locode"].to_list() == ["BTPDL", "COBOG", "COBUN", "COBUX", "DEDUI"]
    bog = frame.filter(pl.col("locode") == "COBOG").row(0, named=True)
    assert bog["name"] == "Bogotá" and bog["function"] == "-2345---" and bog["status"] == "AI"


def test_read_release_names_the_file_and_line_of_a_broken_row(tmp_path: Path) -> None:
    bad = tmp_path / "part.csv"
    bad.write_text(',"CO","BOG","Bogota"\n', encoding="utf-8")
    with pytest.raises(UnlocodeError, match=r"part.csv line 1: 4 fields"):
        read_release([bad])


def test_written_release_is_byte_identical_for_the_same_input(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    frame = read_release([SAMPLE])
    info = write_release(frame, source="sample", release="test", directory=a)
    write_release(frame, source="sample", release="test", directory=b)
    assert (a / "unlocode.csv.gz").read_bytes() == (b / "unlocode.csv.gz").read_bytes()
    assert info["locations"] == 5 and info["seaports"] == 2
    assert json.loads((a / "unlocode.json").read_text())["sha256"] == info["sha256"]
    assert gzip.decompress((a / "unlocode.csv.gz").read_bytes()).startswith(b"locode,name,subdivision,status,function,latitude,longitude\n")


def test_reference_update_command_writes_the_release_where_asked(tmp_path: Path) -> None:
    from targeting.cli import _register, app

    _register()
    result = CliRunner().invoke(app, ["reference", "update", "--from", str(SAMPLE), "--release", "2099-1", "--to", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "5 locations, 2 seaports" in result.output
    assert json.loads((tmp_path / "unlocode.json").read_text())["release"] == "2099-1"
    missing = CliRunner().invoke(app, ["reference", "update", "--from", str(tmp_path / "nope.csv"), "--release", "x", "--to", str(tmp_path)])
    assert missing.exit_code == 2


def test_port_reference_keeps_the_engines_own_flags_on_top_of_un_locode_functions() -> None:
    from features.data.reference import port_reference

    ref = port_reference()
    assert ref.height == len(location_locodes()) and ref["locode"].is_unique().all()
    rows = {r["locode"]: r for r in ref.filter(pl.col("locode").is_in(["SGSIN", "COBOG", "DEDUI"])).iter_rows(named=True)}
    assert (rows["SGSIN"]["is_seaport"], rows["SGSIN"]["is_container_port"], rows["SGSIN"]["is_transshipment_hub"]) == (True, True, True)
    assert (rows["COBOG"]["is_seaport"], rows["COBOG"]["is_airport"], rows["COBOG"]["is_container_port"]) == (False, True, False)
    assert rows["DEDUI"]["is_seaport"] and rows["DEDUI"]["is_rail"] and not rows["DEDUI"]["is_transshipment_hub"]
    assert int(ref["is_seaport"].sum()) == len(seaport_locodes())
