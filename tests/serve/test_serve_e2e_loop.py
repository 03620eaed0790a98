"""End to end through the real app over HTTP with the real engine: the daily loop, list structure,
determinism, replay, container risk, readiness and the model fallback.

The world, lake and champion are built once per session (``e2e_world`` in conftest.py); every test
gets a fresh SQLite store with one key per role. Tests that change the lake or the registry work on
a private copy of the world.
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from features import clock
from features.data.lake import Lake
from models.tracking import CHAMPION, MODEL_NAME, configure
from models.workflow import promote, train_and_register
from serve.audit import verify_chain
from serve.tables import AuditEvent
from serve_helpers import OTHER_PORT, PORT
from targeting.cli import _register, app as cli_app
from targeting.cli.models import sync_outcomes
from targeting.lake_engine import LakeEngine
from targeting.lists import SOURCES
from targeting.policy import candidates_for

pytestmark = pytest.mark.slow
_register()

VOLATILE = ("id", "created_at", "current", "superseded_by", "supersedes", "supersede_reason")
"""Fields of a served list that differ between two identical requests (store metadata: the second supersedes the first)."""
UNKNOWN_CONTAINER = "CSQU3054383"


def today():  # noqa: ANN201 - datetime.date
    return clock.today()


def create_list(service, role: str = "officer_own", port: str = PORT, **body) -> dict:
    payload = {"date": today().isoformat(), "capacity": 12, **body}
    response = service.client.post(
        f"/v1/ports/{port}/inspection-lists", params={"include": "deferred"}, json=payload, headers=service.as_(role)
    )
    assert response.status_code == 201, response.text
    return response.json()


def without(body: dict, *fields: str) -> dict:
    return {k: v for k, v in body.items() if k not in fields}


def outcome_for(item: dict, port: str, truth: dict | None, inspected_at: datetime) -> dict:
    """The exam outcome of a list item; the simulator's hidden truth decides what the exam finds."""
    found = bool(truth and truth["illicit"])
    return {
        "manifest_id": item["manifest_id"],
        "container_number": item["container_number"],
        "port": port,
        "inspected_at": inspected_at.isoformat(),
        "exam_type": item["exam_type"] or "PHYSICAL",
        "result": "SEIZURE" if found else "NO_FINDING",
        "seizure_category": (truth["category"] or "OTHER") if found else None,
        "quantity_kg": float(truth["quantity_kg"] or 0.0) if found else None,
        "seal_status": "INTACT",
        "examiner": f"EX-{port}-001",
        "selection_source": item["source"],
    }


def audit_actions(database) -> Counter:
    with database.read() as session:
        return Counter(session.scalars(select(AuditEvent.action)).all())


def cli_env(service, world) -> dict[str, str]:
    return {
        "CCP_DATABASE_URL": service.settings.database_url,
        "CCP_LAKE_DIR": str(world.lake_dir),
        "CCP_MLFLOW_TRACKING_URI": world.tracking_uri,
    }


# --------------------------------------------------------------------------- the daily loop


def test_full_loop_list_outcomes_retrain_promote_reload(e2e_world, e2e_service_over, tmp_path):
    world = e2e_world.private_copy(tmp_path / "world")
    engine = LakeEngine(lake_dir=world.lake_dir, tracking_uri=world.tracking_uri, cache_dir=tmp_path / "model-cache")
    oracle = pl.read_parquet(e2e_world.world_dir / "oracle.parquet")
    with e2e_service_over(world, engine, tmp_path / "store") as service:
        officer = service.as_("officer_own")
        # 1. the officer's list, fetched back, as CSV and in the port's listing
        body = create_list(service, capacity=12, nii_capacity=8, physical_capacity=4)
        assert body["model_version"] == world.champion_version and body["items"]
        fetched = service.client.get(f"/v1/inspection-lists/{body['id']}", params={"include": "deferred"}, headers=officer)
        assert fetched.status_code == 200 and fetched.json() == body
        exported = service.client.get(f"/v1/inspection-lists/{body['id']}.csv", headers=officer)
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(int(r["rank"]), r["container_number"], r["source"]) for r in rows] == [
            (i["rank"], i["container_number"], i["source"]) for i in body["items"]
        ]
        listing = service.client.get(f"/v1/ports/{PORT}/inspection-lists", headers=officer, params={"date": today().isoformat()})
        assert [s["id"] for s in listing.json()["items"]] == [body["id"]]

        # 2. outcomes, each POST idempotent
        truth = {r["manifest_id"]: r for r in oracle.filter(pl.col("manifest_id").is_in([i["manifest_id"] for i in body["items"]])).iter_rows(named=True)}
        inspected_at = min(clock.now() - timedelta(minutes=1), datetime.combine(today(), datetime.min.time(), tzinfo=UTC) + timedelta(hours=14))
        inspected_at = max(inspected_at, datetime.combine(today(), datetime.min.time(), tzinfo=UTC))
        posted = []
        for item in body["items"]:
            outcome = outcome_for(item, PORT, truth.get(item["manifest_id"]), inspected_at)
            key = {"Idempotency-Key": f"loop-{body['id']}-{item['rank']}"}
            first = service.client.post("/v1/inspection-outcomes", json=outcome, headers={**officer, **key})
            again = service.client.post("/v1/inspection-outcomes", json=outcome, headers={**officer, **key})
            assert first.status_code == again.status_code == 201 and first.content == again.content
            posted.append(first.json())
        changed = {**outcome, "seal_status": "BROKEN"}
        clash = service.client.post("/v1/inspection-outcomes", json=changed, headers={**officer, **key})
        assert clash.status_code == 422

        # 3. the outcomes reach the lake (idempotently), then retrain and promote
        lake = Lake(world.lake_dir)
        seq_before = lake.last_seq()
        assert sync_outcomes(lake, service.settings.database_url) == len(posted)
        assert sync_outcomes(lake, service.settings.database_url) == 0
        in_lake = lake.scan("outcomes").filter(pl.col("manifest_id").is_in([p["manifest_id"] for p in posted])).filter(
            pl.col("examiner") == f"EX-{PORT}-001"
        )
        assert in_lake.select(pl.len()).collect().item() == len(posted)
        client = configure(world.tracking_uri)
        _, logged = train_and_register(lake, client, world.train_config())
        assert logged.version != world.champion_version
        decision = promote(lake, client, logged.version)
        if not decision.promoted:  # the challenger may score lower on the same test period: promote it anyway, with a reason
            decision = promote(lake, client, logged.version, force=True, reason="end-to-end test of the reload path")
        assert decision.promoted, decision.message

        # 4. the service picks the new champion up on reload; new lists record it
        assert service.client.get("/v1/models", headers=officer).json()["version"] == world.champion_version
        assert service.client.post("/v1/models/reload", headers=officer).status_code == 403
        reloaded = service.client.post("/v1/models/reload", headers=service.as_("data_scientist"))
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["version"] == logged.version and reloaded.json()["artifact_sha256"] == logged.model_sha256
        assert reloaded.json()["source"] == "registry"
        newer = create_list(service, capacity=12, nii_capacity=8, physical_capacity=4)
        assert newer["model_version"] == logged.version and newer["model_artifact_sha256"] == logged.model_sha256
        assert newer["input_data_sha256"] != body["input_data_sha256"]  # the synced outcomes are part of its input

        # 5. the first list still replays byte-identically (its model version, rule set, watchlist and lake commit)
        replayed = CliRunner().invoke(cli_app, ["audit", "replay", body["id"]], env=cli_env(service, world))
        assert replayed.exit_code == 0, replayed.output
        assert f"replay identical: {body['content_sha256']}" in " ".join(replayed.output.split())
        assert lake.last_seq() > seq_before

        actions = audit_actions(service.database)
        for action in ("list.create", "list.fetch", "list.export_csv", "list.search", "outcome.create", "outcome.replay", "model.reload", "list.replay"):
            assert actions[action] >= 1, action
        assert actions["list.create"] == 2 and actions["outcome.create"] == len(posted) + 1  # + the refused clash
        with service.database.read() as session:
            assert verify_chain(session).ok


# --------------------------------------------------------------------------- a list's structure


def check_structure(body: dict) -> None:
    """Precondition: ``body`` was fetched with ``?include=deferred``."""
    items, deferred = body["items"], body["deferred"]
    assert body["deferred_count"] == len(deferred)
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    order = [SOURCES.index(i["source"]) for i in items]
    assert order == sorted(order), "sources must come in the documented order"
    assert all(1 <= len(i["reasons"]) <= 5 for i in items)
    assert len(items) + len(deferred) == body["candidate_count"]
    ids = [i["manifest_id"] for i in items] + [d["manifest_id"] for d in deferred]
    assert len(ids) == len(set(ids))
    for i in items + deferred:
        assert math.isfinite(i["score"]) and 0.0 <= i["score"] <= 1.0
    scores = [d["score"] for d in deferred]
    assert scores == sorted(scores, reverse=True)
    for source in ("WATCHLIST", "MODEL", "RANDOM"):
        within = [i["score"] for i in items if i["source"] == source]
        assert within == sorted(within, reverse=True), source
    for i in items:
        if i["source"] == "RANDOM":
            assert 0.0 < i["selection_probability"] < 1.0
        else:
            assert i["selection_probability"] == 1.0


def test_list_structure_with_exam_types_and_random_slice(e2e_service):
    body = create_list(e2e_service, capacity=20, nii_capacity=14, physical_capacity=6, exploration_share=0.2)
    check_structure(body)
    items = body["items"]
    assert body["candidate_count"] > 20 and len(items) == 20 and not body["mandatory_exceeds_capacity"]
    sources = Counter(i["source"] for i in items)
    assert sources["RANDOM"] == min(4, 20 - sources["WATCHLIST"])  # round(20 x 0.2) slots, after the mandatory hits
    eligible = body["candidate_count"] - (len(items) - sources["RANDOM"])
    assert all(i["selection_probability"] == pytest.approx(sources["RANDOM"] / eligible) for i in items if i["source"] == "RANDOM")
    assert Counter(i["exam_type"] for i in items) == {"PHYSICAL": 6, "NII": 14}
    if sources["WATCHLIST"] == 0:  # physical exams go to the highest-risk items
        physical = [i["score"] for i in items if i["exam_type"] == "PHYSICAL"]
        assert min(physical) >= max(i["score"] for i in items if i["exam_type"] == "NII")
    for i in items:
        if i["source"] == "RULE":
            assert i["reasons"][0] and not i["reasons"][0].startswith("Watchlist")
    plain = create_list(e2e_service, capacity=5)
    assert all(i["exam_type"] is None for i in plain["items"])
    assert (plain["nii_capacity"], plain["physical_capacity"]) == (None, None)


def test_created_watchlist_entry_flooding_capacity_is_mandatory(e2e_world, e2e_service):
    candidates = candidates_for(Lake(e2e_world.lake_dir).scan("manifests"), PORT, today()).collect()
    vessel, count = candidates.group_by("vessel_imo").len().sort("len", "vessel_imo", descending=[True, False]).row(0)
    capacity = min(count - 1, 10)
    assert capacity >= 2, "the world needs a vessel bringing several containers today"
    entry = {
        "alert_id": f"WL-E2E-{uuid.uuid4().hex[:8]}",
        "kind": "VESSEL",
        "value": vessel,
        "reason": "Vessel reported by MAOC-N for a suspected rip-on/rip-off",
        "issuing_unit": "MAOC-N",
        "severity": 5,
        "valid_from": (clock.now() - timedelta(days=2)).isoformat(),
    }
    created = e2e_service.client.post("/v1/watchlist", json=entry, headers=e2e_service.as_("admin"))
    assert created.status_code == 201, created.text
    body = create_list(e2e_service, capacity=capacity, nii_capacity=capacity - 1, physical_capacity=1)
    check_structure(body)
    watch = [i for i in body["items"] if i["source"] == "WATCHLIST"]
    assert body["mandatory_exceeds_capacity"] is True
    assert len(watch) >= count > capacity and len(body["items"]) == len(watch)
    assert any("exceed the capacity" in w for w in body["warnings"])
    flagged = set(candidates.filter(pl.col("vessel_imo") == vessel)["manifest_id"].to_list())
    assert flagged <= {i["manifest_id"] for i in watch}
    for item in watch:
        if item["manifest_id"] in flagged:
            assert any(r.startswith("Watchlist alert (severity 5/5): Vessel reported by MAOC-N") for r in item["reasons"])
    assert sum(i["exam_type"] == "PHYSICAL" for i in body["items"]) == 1
    summary = e2e_service.client.get(f"/v1/ports/{PORT}/inspection-lists", headers=e2e_service.as_("auditor")).json()["items"][0]
    assert summary["id"] == body["id"] and summary["mandatory_exceeds_capacity"] is True

    expired = e2e_service.client.post(f"/v1/watchlist/{entry['alert_id']}/expire", headers=e2e_service.as_("admin"))
    assert expired.status_code == 200
    after = create_list(e2e_service, capacity=capacity)
    assert after["mandatory_exceeds_capacity"] is False and len(after["items"]) == capacity


# --------------------------------------------------------------------------- determinism and replay


def test_same_request_twice_gives_the_same_list(e2e_service):
    request = {"capacity": 15, "nii_capacity": 10, "physical_capacity": 5, "exploration_share": 0.2}
    first = create_list(e2e_service, **request)
    second = create_list(e2e_service, **request)
    assert first["id"] != second["id"]
    assert without(first, *VOLATILE) == without(second, *VOLATILE)
    seeded = create_list(e2e_service, **request, seed=12345)
    assert seeded["seed"] == 12345
    assert [i for i in seeded["items"] if i["source"] != "RANDOM"] == [i for i in first["items"] if i["source"] != "RANDOM"]


def test_served_list_replays_identically_through_the_cli(e2e_world, e2e_service):
    body = create_list(e2e_service, capacity=10, exploration_share=0.3)
    result = CliRunner().invoke(cli_app, ["audit", "replay", body["id"]], env=cli_env(e2e_service, e2e_world))
    assert result.exit_code == 0, result.output
    assert f"replay identical: {body['content_sha256']}" in " ".join(result.output.split())
    with e2e_service.database.read() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "list.replay")).one()
    assert (event.object_id, event.result, event.port) == (body["id"], "ok", PORT)
    missing = CliRunner().invoke(cli_app, ["audit", "replay", str(uuid.uuid4())], env=cli_env(e2e_service, e2e_world))
    assert missing.exit_code == 2


# --------------------------------------------------------------------------- container risk


def test_container_risk_of_a_listed_container_matches_the_list(e2e_world, e2e_service):
    body = create_list(e2e_service, capacity=8, exploration_share=0.25)
    officer = e2e_service.as_("officer_own")
    for item in (body["items"][0], body["items"][-1]):
        response = e2e_service.client.get(f"/v1/containers/{item['container_number']}/risk", headers=officer)
        assert response.status_code == 200, response.text
        risk = response.json()
        assert (risk["container_number"], risk["manifest_id"], risk["port"]) == (item["container_number"], item["manifest_id"], PORT)
        assert risk["score"] == pytest.approx(item["score"], rel=1e-9)
        assert risk["reasons"] == item["reasons"] and risk["model_version"] == body["model_version"]
    listed = body["items"][0]["container_number"]
    by_admin = e2e_service.client.get(f"/v1/containers/{listed.lower()}/risk", params={"port": PORT}, headers=e2e_service.as_("admin"))
    assert by_admin.status_code == 200 and by_admin.json()["container_number"] == listed

    known = set(Lake(e2e_world.lake_dir).scan("manifests").select("container_number").collect().to_series().to_list())
    assert UNKNOWN_CONTAINER not in known
    unknown = e2e_service.client.get(f"/v1/containers/{UNKNOWN_CONTAINER}/risk", headers=officer)
    assert unknown.status_code == 404 and unknown.json() == {"detail": "no manifest for this container is due at this port"}
    other = e2e_service.client.get(f"/v1/containers/{listed}/risk", params={"port": PORT}, headers=e2e_service.as_("officer_other"))
    assert other.status_code == 404 and other.json() == unknown.json()
    own_port_of_other = e2e_service.client.get(f"/v1/containers/{listed}/risk", headers=e2e_service.as_("officer_other"))
    assert own_port_of_other.status_code == 404  # not due at BEANR
    assert e2e_service.client.get(f"/v1/containers/{listed}/risk", headers=e2e_service.as_("auditor")).status_code == 422  # port needed
    assert e2e_service.client.get("/v1/containers/CSQU3054384/risk", headers=officer).status_code == 422  # bad check digit


# --------------------------------------------------------------------------- readiness and the model


def test_readyz_is_200_with_engine_and_champion(e2e_service):
    ready = e2e_service.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"store": True, "engine": True, "model_loaded": True, "lake_readable": True}}
    model = e2e_service.client.get("/v1/models", headers=e2e_service.as_("auditor")).json()
    assert model["name"] == "container-risk" and model["source"] == "registry" and len(model["artifact_sha256"]) == 64


def test_without_a_champion_the_service_is_ready_and_lists_come_from_rules_and_random_with_a_warning(e2e_world, e2e_service_over, tmp_path):
    world = e2e_world.private_copy(tmp_path / "world")
    configure(world.tracking_uri).delete_registered_model_alias(MODEL_NAME, CHAMPION)  # versions exist, none is champion
    engine = LakeEngine(lake_dir=world.lake_dir, tracking_uri=world.tracking_uri, cache_dir=tmp_path / "cache")
    with e2e_service_over(world, engine, tmp_path / "store") as service:
        ready = service.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"store": True, "engine": True, "model_loaded": False, "lake_readable": True}
        officer = service.as_("officer_own")
        created = service.client.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": today().isoformat(), "capacity": 5}, headers=officer)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["model_version"] == "none" and "model" in body["warnings"][0].lower()
        assert {item["source"] for item in body["items"]} <= {"WATCHLIST", "RULE", "RANDOM"}
        assert service.client.get("/v1/models", headers=officer).status_code == 503
        assert service.client.post("/v1/models/reload", headers=service.as_("admin")).status_code == 503
        with service.database.read() as session:
            reload_event = session.scalars(select(AuditEvent).where(AuditEvent.action == "model.reload")).one()
        assert (reload_event.result, reload_event.status_code) == ("error", 503)


def test_reload_falls_back_to_the_verified_local_copy(e2e_world, e2e_service_over, tmp_path):
    engine = LakeEngine(lake_dir=e2e_world.lake_dir, tracking_uri=e2e_world.tracking_uri, cache_dir=tmp_path / "cache")
    with e2e_service_over(e2e_world, engine, tmp_path / "store") as service:
        scientist = service.as_("data_scientist")
        loaded = service.client.get("/v1/models", headers=scientist).json()
        assert loaded["source"] == "registry" and (tmp_path / "cache" / "champion.json").exists()
        before = create_list(service, capacity=10)

        (tmp_path / "registry-is-a-file").touch()
        engine.models.tracking_uri = f"sqlite:///{tmp_path / 'registry-is-a-file' / 'mlflow.db'}"  # the registry cannot be opened
        try:
            reloaded = service.client.post("/v1/models/reload", headers=scientist)
            assert reloaded.status_code == 200, reloaded.text
            assert reloaded.json() == {**loaded, "source": "local-copy"}
            assert service.client.get("/readyz").status_code == 200
            after = create_list(service, capacity=10)
            assert without(after, *VOLATILE) == without(before, *VOLATILE)
        finally:
            configure(e2e_world.tracking_uri)  # MLflow's tracking URI is process-global
