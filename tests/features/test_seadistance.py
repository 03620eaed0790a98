"""Specification of sea-route distances (features.data.seadistance)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from features.data import seadistance
from features.data.reference import haversine_km_np, location_coordinates


def _great_circle_km(a: str, b: str) -> float:
    coords = location_coordinates().filter(location_coordinates()["locode"].is_in([a, b]))
    (lat1, lon1), (lat2, lon2) = [coords.filter(coords["locode"] == c).select("latitude", "longitude").row(0) for c in (a, b)]
    return float(haversine_km_np(lat1, lon1, lat2, lon2))


def test_sea_distance_is_symmetric_whole_metres_and_zero_for_the_same_port() -> None:
    there, back = seadistance.sea_distance_m("NLRTM", "SGSIN"), seadistance.sea_distance_m("SGSIN", "NLRTM")
    assert isinstance(there, int) and there == back
    assert seadistance.sea_distance_m("NLRTM", "NLRTM") == 0


def test_sea_route_through_panama_is_longer_than_the_great_circle_but_not_absurdly() -> None:
    sea = seadistance.sea_distance_m("CNSHA", "USNYC") / 1000.0
    assert 1.0 < sea / _great_circle_km("CNSHA", "USNYC") < 1.8


def test_a_port_without_coordinates_has_no_distance() -> None:
    assert seadistance.sea_distance_m("NLRTM", "XXZZZ") is None


def test_computed_pairs_persist_in_the_cache_file_and_give_the_same_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "sea.csv"
    monkeypatch.setenv("CCP_SEA_DISTANCE_CACHE", str(cache))
    monkeypatch.setattr(seadistance, "_memory", {})
    computed = seadistance.sea_distance_m("ESALG", "MAPTM")
    rows = list(csv.reader(cache.open()))
    assert rows == [["ESALG", "MAPTM", str(computed)]]
    # a fresh process reads the file instead of recomputing: a pair planted in the file is answered from it
    with cache.open("a") as fh:
        fh.write("AAAAA,BBBBB,12345\n")
    monkeypatch.setattr(seadistance, "_memory", {})
    monkeypatch.setattr(seadistance, "_loaded_from", [])
    assert seadistance.sea_distance_m("BBBBB", "AAAAA") == 12345
    assert seadistance.sea_distance_m("MAPTM", "ESALG") == computed


def test_cache_file_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCP_SEA_DISTANCE_CACHE", "off")
    assert seadistance.cache_path() is None


def test_route_features_are_bit_identical_whether_distances_are_computed_or_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from features.routing import route_stats

    route = ("CNSHA", ["SGSIN", "ESALG"], "NLRTM")
    cached = route_stats(*route)
    monkeypatch.setenv("CCP_SEA_DISTANCE_CACHE", "off")
    monkeypatch.setattr(seadistance, "_memory", {})
    monkeypatch.setattr(seadistance, "_loaded_from", [])
    fresh = route_stats(*route)
    assert fresh == cached and not fresh["_unknown"]
