"""Schemas of inspection lists."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, StrictStr, StringConstraints, create_model, model_validator

from serve.schemas.common import InputModel, OutputModel, PageInfo, Reference, SafeText
from targeting.lists import DeferredItem, InspectionList, ListItem

MAX_CAPACITY = 5000
MAX_EXPLORATION_SHARE = 0.5
MAX_SEED = 2**63 - 1


Direction = Literal["IMPORT", "EXPORT", "TRANSSHIPMENT"]


class ListCreate(InputModel):
    """What a port control unit asks for (the port is in the path).

    ``nii_capacity`` and ``physical_capacity`` come together or not at all and
    then add up to ``capacity``. One list per port, date and ``direction`` is
    *current*: a new one supersedes the current one (which stays readable and
    names its successor); ``supersede_reason`` records why (stored as null
    when omitted).
    """

    date: dt.date
    capacity: StrictInt = Field(ge=1, le=MAX_CAPACITY)
    nii_capacity: StrictInt | None = Field(default=None, ge=0, le=MAX_CAPACITY)
    physical_capacity: StrictInt | None = Field(default=None, ge=0, le=MAX_CAPACITY)
    exploration_share: float = Field(default=0.10, ge=0.0, le=MAX_EXPLORATION_SHARE, allow_inf_nan=False, strict=True)
    integrity_share: float = Field(default=0.10, ge=0.0, le=MAX_EXPLORATION_SHARE, allow_inf_nan=False, strict=True)
    seed: StrictInt | None = Field(default=None, ge=0, le=MAX_SEED)
    direction: Direction = "IMPORT"
    supersede_reason: Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)] | None = None

    @model_validator(mode="after")
    def _split_capacity(self) -> ListCreate:
        split = (self.nii_capacity, self.physical_capacity)
        if (split[0] is None) != (split[1] is None):
            raise ValueError("give both nii_capacity and physical_capacity, or neither")
        if split[0] is not None and split[0] + split[1] != self.capacity:
            raise ValueError("nii_capacity + physical_capacity must equal capacity")
        if not dt.date(2000, 1, 1) <= self.date <= dt.date(2100, 1, 1):
            raise ValueError("date is out of range")
        return self


def record_fields(record: type, *, exclude: tuple[str, ...] = (), types: dict[str, Any] | None = None) -> dict[str, Any]:
    """Pydantic field definitions of the dataclass ``record``: its fields, in order, with their declared types and defaults.

    The list record is declared once, as the dataclasses of :mod:`targeting.lists`;
    the response schemas are made from them, so a field added there is served
    (and described by the OpenAPI glossary, :mod:`serve.openapi`) without a
    second declaration. ``types`` replaces a field's type (nested records by
    their schemas); ``exclude`` leaves fields out of the response.
    """
    hints, types = typing.get_type_hints(record), types or {}
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        if field.name in exclude:
            continue
        if field.default is not dataclasses.MISSING:
            default: Any = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = Field(default_factory=field.default_factory)
        else:
            default = ...
        fields[field.name] = (types.get(field.name, hints[field.name]), default)
    return fields


ListItemPublic = create_model(
    "ListItemPublic", __base__=OutputModel, __module__=__name__, __doc__="A selected container, with why it was selected.", **record_fields(ListItem)
)
DeferredItemPublic = create_model(
    "DeferredItemPublic", __base__=OutputModel, __module__=__name__, __doc__="A candidate cut by capacity.", **record_fields(DeferredItem)
)


class _StoredListHead(OutputModel):
    """Store metadata that comes before a served list's record in its response."""

    id: str
    created_at: dt.datetime
    created_by: str
    content_sha256: str


class _StoredListTail(OutputModel):
    """Store metadata after the record: succession and the deferred count."""

    current: bool = True
    """False once another list of the same port, date and direction superseded this one."""
    superseded_by: str | None = None
    supersedes: str | None = None
    supersede_reason: str | None = None
    deferred_count: int


InspectionListPublic = create_model(
    "InspectionListPublic",
    __base__=_StoredListHead,
    __module__=__name__,
    __doc__="""A served list: its store metadata and its record (:class:`targeting.lists.InspectionList`, field for field).

    ``deferred`` (the candidates cut by capacity, best score first; thousands
    on a busy port-day) is embedded only when asked for with
    ``?include=deferred`` and is ``null`` otherwise; ``deferred_count`` is
    always there, and ``GET /v1/inspection-lists/{id}/deferred`` pages them.
    ``content_sha256`` is the hash of the whole record, deferred candidates
    included. The lake log entry a list was built from (``data_version``) and the
    Delta table versions it read (``lake_versions``) stay in the stored record
    (replay reads them) and are not served.
    """,
    **record_fields(
        InspectionList,
        exclude=("data_version", "lake_versions"),
        types={"items": list[ListItemPublic], "deferred": list[DeferredItemPublic] | None},
    ),
    **{name: (field.annotation, field) for name, field in _StoredListTail.model_fields.items()},
)


class ListSummary(OutputModel):
    """A served list without its items."""

    id: str
    port: str
    list_date: dt.date
    direction: str = "IMPORT"
    current: bool = True
    superseded_by: str | None = None
    supersedes: str | None = None
    supersede_reason: str | None = None
    created_at: dt.datetime
    created_by: str
    ruleset_version: int
    model_name: str
    model_version: str
    content_sha256: str
    item_count: int
    mandatory_exceeds_capacity: bool


class ListPage(OutputModel):
    """A page of a port's lists, newest first."""

    items: list[ListSummary]
    page: PageInfo


class DeferredPage(OutputModel):
    """A page of a list's deferred candidates, in list order (best score first)."""

    list_id: str
    items: list[DeferredItemPublic]
    page: PageInfo


class AmendmentCreate(InputModel):
    """An officer's addition of a deferred candidate (``ADD``, optionally with its exam type) or removal of a
    selected item (``REMOVE``), with the reason shown to auditors."""

    action: Literal["ADD", "REMOVE"]
    manifest_id: Reference
    reason: Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=3, max_length=200)]
    exam_type: Literal["NII", "PHYSICAL"] | None = None


class AmendmentPublic(OutputModel):
    """An amendment of a served list (selection source ``OFFICER``)."""

    id: str
    list_id: str
    action: str
    manifest_id: str
    container_number: str
    score: float
    source: str = "OFFICER"
    exam_type: str | None
    reason: str
    created_at: dt.datetime
    created_by: str
    direction: str = "IMPORT"
    """The direction of the amended list."""


class AmendmentList(OutputModel):
    """The amendments of a served list, oldest first."""

    list_id: str
    items: list[AmendmentPublic]
