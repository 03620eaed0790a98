"""Calibrated risk through the API: every list row's calibrated probability and band in JSON and CSV, set by the champion's own calibrator; day-one lists say not rated; lists recorded before bands keep their record."""

from __future__ import annotations

import csv
import hashlib
import io

import numpy as np
import pytest

from features import clock
from models.calibration import BANDS, NOT_RATED, risk_band
from models.tracking import CHAMPION, MODEL_NAME, configure
from serve_helpers import PORT, insert_list, sample_list
from targeting.lake_engine import LakeEngine
from targeting.lists import list_to_dict

pytestmark = pytest.mark.slow


def _create(service, capacity: int = 12) -> dict:
    response = service.client.post(
        f"/v1/ports/{PORT}/inspection-lists", params={"include": "deferred"},
        json={"date": clock.today().isoformat(), "capacity": capacity}, headers=service.as_("officer_own"),
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_every_item_and_deferred_candidate_carries_the_champions_calibrated_probability_and_band(e2e_service, e2e_engine) -> None:
    body = _create(e2e_service)
    calibrator = e2e_engine.models.champion().calibrator
    assert calibrator is not None and body["model_version"] == e2e_engine.models.champion().version
    rows = body["items"] + body["deferred"]
    assert len(body["deferred"]) > 0
    expected = calibrator.predict(np.array([r["score"] for r in rows]))
    assert [r["risk_probability"] for r in rows] == pytest.approx(expected.tolist(), rel=1e-12)
    assert [r["risk_band"] for r in rows] == [risk_band(p) for p in expected]
    assert {r["risk_band"] for r in rows} <= set(BANDS) - {NOT_RATED}
    assert body["calibrator_sha256"] == hashlib.sha256(calibrator.to_json().encode()).hexdigest()


def test_csv_export_has_the_band_and_probability_of_every_item(e2e_service) -> None:
    body = _create(e2e_service)
    response = e2e_service.client.get(f"/v1/inspection-lists/{body['id']}.csv", headers=e2e_service.as_("officer_own"))
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["risk_band"], float(r["risk_probability"])) for r in rows] == [(i["risk_band"], i["risk_probability"]) for i in body["items"]]


def test_the_api_schema_describes_the_risk_fields(e2e_service) -> None:
    schema = e2e_service.client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("ListItemPublic", "DeferredItemPublic"):
        assert "Calibrated probability" in schema[name]["properties"]["risk_probability"]["description"]
        assert "NOT_RATED" in schema[name]["properties"]["risk_band"]["description"]
    assert "calibrator" in schema["InspectionListPublic"]["properties"]["calibrator_sha256"]["description"]


def test_a_day_one_list_is_not_rated_and_invents_no_probability(e2e_world, e2e_service_over, tmp_path) -> None:
    world = e2e_world.private_copy(tmp_path / "world")
    configure(world.tracking_uri).delete_registered_model_alias(MODEL_NAME, CHAMPION)
    engine = LakeEngine(lake_dir=world.lake_dir, tracking_uri=world.tracking_uri, cache_dir=tmp_path / "cache")
    with e2e_service_over(world, engine, tmp_path / "store") as service:
        body = _create(service, capacity=5)
        assert body["model_version"] == "none" and body["calibrator_sha256"] == ""
        assert body["items"] and all(r["risk_band"] == NOT_RATED and r["risk_probability"] is None for r in body["items"] + body["deferred"])
        exported = service.client.get(f"/v1/inspection-lists/{body['id']}.csv", headers=service.as_("officer_own")).text
        assert {(r["risk_band"], r["risk_probability"]) for r in csv.DictReader(io.StringIO(exported))} == {(NOT_RATED, "")}


def test_a_list_recorded_before_bands_keeps_its_record_and_reads_as_not_rated(e2e_service) -> None:
    legacy = sample_list(PORT)
    data = list_to_dict(legacy)
    assert "calibrator_sha256" not in data and all("risk_band" not in i and "risk_probability" not in i for i in data["items"])
    list_id = insert_list(e2e_service.database, legacy)
    served = e2e_service.client.get(f"/v1/inspection-lists/{list_id}", headers=e2e_service.as_("officer_own")).json()
    assert served["content_sha256"] == legacy.content_sha256()
    assert served["calibrator_sha256"] is None and all(i["risk_band"] is None for i in served["items"])
    exported = e2e_service.client.get(f"/v1/inspection-lists/{list_id}.csv", headers=e2e_service.as_("officer_own")).text
    assert {r["risk_band"] for r in csv.DictReader(io.StringIO(exported))} == {NOT_RATED}


def test_the_risk_check_of_a_listed_container_gives_the_band_and_probability_of_its_list_row(e2e_service) -> None:
    body = _create(e2e_service, capacity=6)
    for item in (body["items"][0], body["items"][-1]):
        risk = e2e_service.client.get(f"/v1/containers/{item['container_number']}/risk", headers=e2e_service.as_("officer_own")).json()
        assert risk["manifest_id"] == item["manifest_id"]
        assert risk["risk_band"] == item["risk_band"] and risk["risk_probability"] == pytest.approx(item["risk_probability"], rel=1e-9)
