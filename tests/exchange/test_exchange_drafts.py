"""Drafts for human approval from an export unit's stored list: notices for high-risk containers deferred or only scanned."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from exchange_helpers import NOW, build_network, ingest_manifests
from ingest_samples import row

from serve.app import open_store
from serve.settings import Settings
from serve.store.exchange import OUT, approve, get_message, list_messages, parsed, pending_deliveries
from serve.store.lists import store_list
from serve.exchange_sender import draft_notices_for_list
from targeting.exchange.network import load_network
from targeting.lists import DeferredItem, InspectionList, ListItem


def export_list() -> InspectionList:
    return InspectionList(
        port="ECGYE", list_date=date(2025, 8, 28), decision_at=NOW.replace(hour=0, minute=0), capacity=2, nii_capacity=2, physical_capacity=0,
        exploration_share=0.0, seed=7, model_name="container-risk", model_version="4", model_artifact_sha256="a" * 64, ruleset_version=1,
        input_data_sha256="b" * 64, candidate_count=40,
        items=(
            ListItem(1, "TEXU3070079", "M-SCANNED", 0.81, "MODEL", 1.0, ("Seal changed between gate-in and loading",), "NII"),
            ListItem(2, "MSKU6011672", "M-LOW", 0.12, "RANDOM", 0.05, (), "NII"),
        ),
        deferred=(DeferredItem("GESU3927660", "M-DEFERRED", 0.66), DeferredItem("CSQU0000070", "M-MINOR", 0.2)),
        mandatory_exceeds_capacity=False, warnings=(),
    )


def test_export_list_drafts_notices_to_the_discharge_unit_for_scanned_and_deferred_high_risk_containers(tmp_path):
    net = build_network(tmp_path / "net", {"A": [("PCU-ECGYE", "ECGYE", "EXPORT")], "B": [("PCU-NLRTM", "NLRTM", "IMPORT")]}, {})
    a = net["A"]
    eta = (NOW + timedelta(days=14)).isoformat()
    common = dict(place_of_receipt="ECGYE", port_of_loading="ECGYE", transshipment_ports=None, port_of_discharge="NLRTM", place_of_delivery="NLRTM",
                  booked_at="2025-08-01T10:00:00Z", filed_at="2025-08-02T10:00:00Z", etd="2025-08-29T10:00:00Z", eta=eta)
    ingest_manifests(a, [row("manifests", manifest_id=m, container_number=c, **common)
                         for m, c in (("M-SCANNED", "TEXU3070079"), ("M-LOW", "MSKU6011672"), ("M-DEFERRED", "GESU3927660"), ("M-MINOR", "CSQU0000070"))])
    network = load_network(a.home / "exchange.toml")
    database = open_store(Settings(home=a.home, database_url=a.database_url, lake_dir=a.home / "lake"))
    try:
        with database.write() as session:
            stored = store_list(session, export_list(), created_by="k-test", watchlist_as_of=NOW, list_id=str(uuid.uuid4()))
            assert draft_notices_for_list(session, network, stored, a.home / "lake") == 2
            assert draft_notices_for_list(session, network, stored, a.home / "lake") == 0  # the same drafts: stable ids
        with database.read() as session:
            drafts = {parsed(r).body.container_number: parsed(r) for r in list_messages(session, direction=OUT, status="DRAFT")}
        assert set(drafts) == {"TEXU3070079", "GESU3927660"}
        assert drafts["TEXU3070079"].body.action_at_origin == "SCANNED" and drafts["GESU3927660"].body.action_at_origin == "DEFERRED"
        assert all(d.recipients == ["PCU-NLRTM"] and d.type == "PRE_ARRIVAL_NOTICE" for d in drafts.values())
        with database.write() as session:
            assert pending_deliveries(session) == []  # nothing leaves before a person approves
            approve(session, drafts["GESU3927660"].message_id, network, actor="k-officer")
            assert get_message(session, drafts["GESU3927660"].message_id, OUT).status == "QUEUED"
            assert [peer for _, peer, _ in pending_deliveries(session)] == ["PCU-NLRTM"]
    finally:
        database.dispose()
