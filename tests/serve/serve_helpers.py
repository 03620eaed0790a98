"""Helpers shared by the service tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, datetime, timezone

from features import clock
from serve.audit import record_event
from serve.db import Database
from serve.seals import seal_detail
from serve.store.lists import store_list
from targeting.lists import DeferredItem, InspectionList, ListItem

TODAY = date(2025, 8, 28)
"""The tests' "today": every service test runs with the process clock anchored at :data:`NOW` (conftest.py)."""
NOW = datetime(2025, 8, 28, 9, 30, tzinfo=timezone.utc)
"""The instant the tests' clock starts at (it then runs at the real pace); subprocess services get it as ``CCP_CLOCK_AT``."""


def clock_env() -> dict[str, str]:
    """The environment that starts a subprocess's clock at the tests' "now" (``CCP_CLOCK_AT``)."""
    return {clock.CLOCK_ENV: NOW.isoformat()}


PORT = "NLRTM"
OTHER_PORT = "BEANR"
VALID_CONTAINERS = ("CSQU3054383", "TEXU3070079", "MSKU6011672", "GESU3927660", "CSQU0000070")


def sample_list(port: str = PORT, *, list_date: date = date(2025, 3, 1), ruleset_version: int = 1) -> InspectionList:
    """A small, realistic list record (a real value object, not a fake engine)."""
    return InspectionList(
        port=port,
        list_date=list_date,
        decision_at=datetime(2025, 2, 28, 18, 0, tzinfo=timezone.utc),
        capacity=3,
        nii_capacity=2,
        physical_capacity=1,
        exploration_share=0.1,
        seed=7,
        model_name="container-risk",
        model_version="4",
        model_artifact_sha256="a" * 64,
        ruleset_version=ruleset_version,
        input_data_sha256="b" * 64,
        candidate_count=120,
        items=(
            ListItem(1, "CSQU3054383", "M-1", 0.97, "WATCHLIST", 1.0, ("Watchlist: consignee alert", "=cmd|x"), "PHYSICAL"),
            ListItem(2, "TEXU3070079", "M-2", 0.81, "RULE", 1.0, ("Reefer with bananas from EC",), "NII"),
            ListItem(3, "MSKU6011672", "M-3", 0.12, "RANDOM", 0.05, (), "NII"),
        ),
        deferred=(DeferredItem("GESU3927660", "M-4", 0.55),),
        mandatory_exceeds_capacity=False,
        warnings=(),
    )


def insert_list(database: Database, record: InspectionList | None = None, *, created_by: str = "k-test") -> str:
    """Store a list through the store API with its sealed ``list.create`` audit event (as the service does); its id."""
    record = record or sample_list()
    with database.write() as session:
        row = store_list(
            session, record, created_by=created_by, watchlist_as_of=clock.now(), list_id=str(uuid.uuid4())
        )
        record_event(
            session, action="list.create", actor=created_by, port=row.port, object_type="inspection_list", object_id=row.id,
            status_code=201, detail={"content_sha256": row.content_sha256, **seal_detail(row)},
        )
        return row.id


POOL_CONTAINER = "CSQU3054383"
"""The container of every manifest of the service tests' lake."""
POOL_SIZES = {PORT: 20_000, OTHER_PORT: 2_000}
"""Manifests discharged at each port in the service tests' lake (``M-<PORT>-<n>``)."""
SHARED_MANIFESTS = 200
"""Manifests loaded at OTHER_PORT and discharged at PORT (``M-SHARED-<n>``): both ports handle them."""
_pool_next = {port: itertools.count() for port in POOL_SIZES}


def pool_manifest(port: str = PORT) -> str:
    """A manifest of the service tests' lake discharged at ``port``, never handed out before in this process."""
    n = next(_pool_next[port])
    if n >= POOL_SIZES[port]:
        raise RuntimeError(f"the service tests' lake has only {POOL_SIZES[port]} manifests for {port}")
    return f"M-{port}-{n:05d}"


def service_lake_manifests() -> list[dict[str, str | None]]:
    """Raw manifest rows (MANIFESTS contract) of the service tests' lake: the pools and the shared manifests."""
    from ingest_samples import row

    rows = []
    for port, size in POOL_SIZES.items():
        rows += [row("manifests", manifest_id=f"M-{port}-{n:05d}", port_of_discharge=port, place_of_delivery=port) for n in range(size)]
    rows += [
        row("manifests", manifest_id=f"M-SHARED-{n:05d}", port_of_loading=OTHER_PORT, place_of_receipt=OTHER_PORT, port_of_discharge=PORT)
        for n in range(SHARED_MANIFESTS)
    ]
    return rows


def outcome_body(**overrides) -> dict:
    """A valid outcome of a fresh pool manifest of ``overrides["port"]`` (default PORT) with its container."""
    port = overrides.get("port", PORT)
    body = {
        "manifest_id": pool_manifest(port if port in POOL_SIZES else PORT) if "manifest_id" not in overrides else None,
        "container_number": POOL_CONTAINER,
        "port": PORT,
        "inspected_at": "2025-03-01T10:15:00+01:00",
        "exam_type": "PHYSICAL",
        "result": "SEIZURE",
        "seizure_category": "COCAINE",
        "quantity_kg": 120.5,
        "concealment_method": "rip-on/rip-off in reefer",
        "seal_status": "MISMATCH",
        "examiner": "EX-17",
        "selection_source": "MODEL",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def idem() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}
