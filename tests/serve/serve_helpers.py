"""Helpers shared by the service tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

from features import clock
from serve.db import Database
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
    """Store a list through the store API and return its id."""
    record = record or sample_list()
    with database.write() as session:
        row = store_list(
            session, record, created_by=created_by, watchlist_as_of=clock.now(), list_id=str(uuid.uuid4())
        )
        return row.id


def outcome_body(**overrides) -> dict:
    body = {
        "manifest_id": f"M-{uuid.uuid4().hex[:12]}",
        "container_number": "CSQU3054383",
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
