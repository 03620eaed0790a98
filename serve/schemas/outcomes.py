"""Schemas of inspection outcomes (INSPECTION_OUTCOMES contract)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Literal

from pydantic import Field, StrictStr, field_validator, model_validator

from features.data.handling import DIRECTIONS
from features.data.contracts import EXAM_TYPES, RESULTS, SEAL_STATUSES, SEIZURE_CATEGORIES, SELECTION_SOURCES
from serve.db import utcnow
from serve.schemas.common import IsoDateTime, ContainerNumber, InputModel, Locode, OutputModel, Reference, SafeText

FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST_INSPECTION = datetime(2000, 1, 1, tzinfo=timezone.utc)
MAX_QUANTITY_KG = 100_000.0

ExamType = Literal[EXAM_TYPES]
Result = Literal[RESULTS]
SeizureCategory = Literal[SEIZURE_CATEGORIES]
SealStatus = Literal[SEAL_STATUSES]
SelectionSource = Literal[SELECTION_SOURCES]
Direction = Literal[DIRECTIONS]


class OutcomeCreate(InputModel):
    """An exam's outcome as posted by an officer.

    ``inspected_at`` must be timezone-aware, not before 2000 and not more than
    five minutes in the future; it is stored in UTC. ``seizure_category`` is
    required when ``result`` is ``SEIZURE`` and forbidden otherwise;
    ``quantity_kg`` is only allowed with a seizure.
    """

    manifest_id: Reference
    container_number: ContainerNumber
    port: Locode
    inspected_at: IsoDateTime
    exam_type: ExamType
    result: Result
    seizure_category: SeizureCategory | None = None
    quantity_kg: float | None = Field(default=None, ge=0, le=MAX_QUANTITY_KG, allow_inf_nan=False, strict=True)
    concealment_method: SafeText | None = Field(default=None, min_length=1, max_length=200)
    seal_status: SealStatus
    examiner: Reference
    selection_source: SelectionSource
    direction: Direction = Field(
        default="IMPORT",
        description="Direction of the list or population the exam belongs to; the port must handle the manifest that way "
        "(IMPORT: port of discharge, EXPORT: port of loading, TRANSSHIPMENT: a transshipment port)",
    )

    @field_validator("inspected_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        value = value.astimezone(timezone.utc)
        if value < EARLIEST_INSPECTION:
            raise ValueError("inspected_at is before 2000-01-01")
        if value > utcnow() + FUTURE_TOLERANCE:
            raise ValueError("inspected_at is in the future")
        return value

    @model_validator(mode="after")
    def _seizure_fields(self) -> OutcomeCreate:
        if self.result == "SEIZURE" and self.seizure_category is None:
            raise ValueError("seizure_category is required when result is SEIZURE")
        if self.result != "SEIZURE" and self.seizure_category is not None:
            raise ValueError("seizure_category is only allowed when result is SEIZURE")
        if self.result != "SEIZURE" and self.quantity_kg is not None:
            raise ValueError("quantity_kg is only allowed when result is SEIZURE")
        return self

    def contract_fields(self) -> dict[str, object]:
        """The INSPECTION_OUTCOMES columns of this outcome (``inspected_at`` in UTC)."""
        return self.model_dump()


class OutcomePublic(OutputModel):
    """A stored outcome."""

    id: str
    created_at: datetime
    manifest_id: str
    container_number: str
    port: str
    inspected_at: datetime
    exam_type: str
    result: str
    seizure_category: str | None
    quantity_kg: float | None
    concealment_method: str | None
    seal_status: str
    examiner: str
    selection_source: str
    direction: str = "IMPORT"


class SourceHitRate(OutputModel):
    """Inspections and seizures of one selection source (each manifest once, under the source of its first exam)."""

    selection_source: str
    inspections: int
    seizures: int
    hit_rate: float
    seized_kg: float


class DirectionHitRate(OutputModel):
    """Inspections and seizures of one list direction, per selection source within it."""

    direction: str
    inspections: int
    seizures: int
    sources: list[SourceHitRate]


class HitRateReport(OutputModel):
    """Hit rate per selection source of a port's recorded exams from ``since`` (inclusive) to ``until`` (exclusive), UTC days."""

    port: str
    since: date
    until: date
    inspections: int
    seizures: int
    sources: list[SourceHitRate] = Field(description="Every direction together, per selection source")
    directions: list[DirectionHitRate] = Field(description="Per list direction (IMPORT, EXPORT, TRANSSHIPMENT) with exams, and per source within it")
    ignored_outcomes: int = Field(ge=0, description="Recorded outcomes left out because they do not match their manifest")
