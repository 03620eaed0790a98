"""Watchlist entries: created and expired by admins, listed by everyone, rebuilt exactly for replays."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from features import clock
from features.data.contracts import ALERTS
from serve.store.watchlist import watchlist_frame_at

ENTRY = {
    "kind": "CONTAINER",
    "value": "csqu3054383",
    "reason": "Intelligence from PCU Guayaquil",
    "issuing_unit": "PCU-ECGYE",
    "severity": 5,
    "valid_from": "2025-01-01T00:00:00Z",
    "valid_to": "2026-01-01T00:00:00Z",
}


@pytest.fixture
def admin(make_key):
    return make_key("admin")


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        ("CONTAINER", "csqu3054383", "CSQU3054383"),
        ("VESSEL", "IMO 9074729", "9074729"),
        ("HS_CODE", "0803", "0803"),
        ("ROUTE", "ec>nlrtm", "EC>NLRTM"),
        ("ROUTE", "*>NLRTM", "*>NLRTM"),
        ("PARTY", "eori-nl123", "EORI-NL123"),
        ("BL", "MAEU123456", "MAEU123456"),
    ],
)
def test_values_are_checked_and_normalised_by_kind(client, admin, kind, value, stored):
    response = client.post("/v1/watchlist", json={**ENTRY, "kind": kind, "value": value}, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["value"] == stored


@pytest.mark.parametrize(
    ("kind", "value"),
    [("CONTAINER", "CSQU3054384"), ("VESSEL", "9074728"), ("HS_CODE", "8"), ("ROUTE", "EC-NLRTM"), ("PARTY", "a b")],
)
def test_bad_values_are_422(client, admin, kind, value):
    assert client.post("/v1/watchlist", json={**ENTRY, "kind": kind, "value": value}, headers=admin).status_code == 422


def test_entry_fields_are_strict(client, admin):
    for bad in ({"severity": 6}, {"severity": "5"}, {"valid_from": "2025-01-01T00:00:00"}, {"valid_to": "2024-01-01T00:00:00Z"}, {"x": 1}):
        assert client.post("/v1/watchlist", json={**ENTRY, **bad}, headers=admin).status_code == 422, bad


def test_expired_entries_leave_the_frame_but_replays_see_them(client, database, admin, make_key):
    created = client.post("/v1/watchlist", json={**ENTRY, "alert_id": "WL-1"}, headers=admin).json()
    assert client.post("/v1/watchlist", json={**ENTRY, "alert_id": "WL-1"}, headers=admin).status_code == 409
    time.sleep(0.002)
    before_expiry = clock.now()
    time.sleep(0.002)
    assert client.post("/v1/watchlist/WL-1/expire", headers=admin).status_code == 200
    assert client.post("/v1/watchlist/WL-1/expire", headers=admin).status_code == 404
    with database.read() as session:
        then = watchlist_frame_at(session, before_expiry)
        now = watchlist_frame_at(session, clock.now())
    assert then.schema == ALERTS.schema == now.schema
    assert then["alert_id"].to_list() == ["WL-1"] and now.is_empty()
    assert then["valid_to"][0] == datetime(2026, 1, 1, tzinfo=timezone.utc)
    officer = make_key("officer", "NLRTM")
    assert client.get("/v1/watchlist", headers=officer).json()["items"] == []
    listed = client.get("/v1/watchlist?include_expired=true", headers=officer).json()
    assert listed["items"][0]["in_force"] is False and listed["items"][0]["created_at"] == created["created_at"]


@pytest.mark.parametrize("character", ["\x00", "\u202e", "\n", "\u2066", "\x9b"])
def test_control_and_invisible_characters_in_watchlist_text_are_422_naming_the_field(client, admin, character):
    for field in ("reason", "issuing_unit", "value"):
        body = {**ENTRY, field: "PCU" + character + "Gye" if field != "value" else ENTRY["value"][:4] + character + ENTRY["value"][4:]}
        response = client.post("/v1/watchlist", json=body, headers=admin)
        assert response.status_code == 422, (field, response.text)
        assert ["body", field] in [e["loc"] for e in response.json()["detail"]], (field, response.text)
