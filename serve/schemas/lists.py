"""Schemas of inspection lists."""

from __future__ import annotations

import datetime as dt

from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr, StringConstraints, model_validator

from serve.schemas.common import InputModel, OutputModel, PageInfo, Reference, SafeText

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


class ListItemPublic(OutputModel):
    """A selected container, with why it was selected."""

    rank: int
    container_number: str
    manifest_id: str
    score: float
    source: str
    selection_probability: float
    reasons: list[str]
    exam_type: str | None


class DeferredItemPublic(OutputModel):
    """A candidate cut by capacity."""

    container_number: str
    manifest_id: str
    score: float
    source_if_selected: str


class InspectionListPublic(OutputModel):
    """A served list: its store metadata and its record.

    ``deferred`` (the candidates cut by capacity, best score first; thousands
    on a busy port-day) is embedded only when asked for with
    ``?include=deferred`` and is ``null`` otherwise; ``deferred_count`` is
    always there, and ``GET /v1/inspection-lists/{id}/deferred`` pages them.
    ``content_sha256`` is the hash of the whole record, deferred candidates
    included.
    """

    id: str
    created_at: dt.datetime
    created_by: str
    content_sha256: str
    port: str
    list_date: dt.date
    direction: str = "IMPORT"
    current: bool = True
    """False once another list of the same port, date and direction superseded this one."""
    superseded_by: str | None = None
    supersedes: str | None = None
    supersede_reason: str | None = None
    decision_at: dt.datetime
    capacity: int
    nii_capacity: int | None
    physical_capacity: int | None
    exploration_share: float
    seed: int
    model_name: str
    model_version: str
    model_artifact_sha256: str
    ruleset_version: int
    input_data_sha256: str
    candidate_count: int
    items: list[ListItemPublic]
    deferred_count: int
    deferred: list[DeferredItemPublic] | None
    mandatory_exceeds_capacity: bool
    warnings: list[str]


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
