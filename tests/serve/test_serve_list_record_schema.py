"""The list record is declared once (the dataclasses of targeting.lists); the response schemas are made from it."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from pydantic import ValidationError, create_model

from serve.schemas.common import OutputModel
from serve.schemas.lists import DeferredItemPublic, InspectionListPublic, ListItemPublic, record_fields
from targeting.lists import DeferredItem, InspectionList, ListItem

STORE_METADATA = ["id", "created_at", "created_by", "content_sha256", "current", "superseded_by", "supersedes", "supersede_reason", "deferred_count"]


def _names(record: type) -> list[str]:
    return [f.name for f in dataclasses.fields(record)]


def test_item_schemas_have_exactly_the_record_fields_in_order():
    assert list(ListItemPublic.model_fields) == _names(ListItem)
    assert list(DeferredItemPublic.model_fields) == _names(DeferredItem)


def test_the_list_schema_is_the_record_without_its_lake_provenance_between_the_store_metadata():
    fields = list(InspectionListPublic.model_fields)
    record = [n for n in _names(InspectionList) if n not in ("data_version", "lake_versions")]
    assert fields == STORE_METADATA[:4] + record + STORE_METADATA[4:]
    assert InspectionListPublic.model_fields["items"].annotation == list[ListItemPublic]


def test_a_field_added_to_a_record_dataclass_is_in_the_schema_with_its_type_and_default():
    @dataclasses.dataclass(frozen=True)
    class Extended:
        rank: int
        note: str = "none"
        tags: tuple[str, ...] = dataclasses.field(default_factory=tuple)
        first_seen: date | None = None

    model = create_model("ExtendedPublic", __base__=OutputModel, **record_fields(Extended))
    assert model(rank=1).model_dump() == {"rank": 1, "note": "none", "tags": (), "first_seen": None}
    assert model(rank=2, first_seen="2025-01-02").first_seen == date(2025, 1, 2)
    with pytest.raises(ValidationError, match="rank"):
        model(note="x")
