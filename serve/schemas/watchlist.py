"""Schemas of watchlist entries (ALERTS contract)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StrictInt, StrictStr, StringConstraints, model_validator

from features.data.contracts import ALERT_KINDS
from serve.schemas.common import IsoDateTime, InputModel, OutputModel, PageInfo, SafeText, ShortText

AlertId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]


class WatchlistEntryCreate(InputModel):
    """A new watchlist entry; ``alert_id`` is generated when omitted. The value is checked against ``kind``."""

    alert_id: AlertId | None = None
    kind: Literal[ALERT_KINDS]
    value: SafeText = Field(min_length=1, max_length=200)
    reason: SafeText = Field(min_length=1, max_length=500)
    issuing_unit: ShortText = Field(max_length=100)
    severity: StrictInt = Field(ge=1, le=5)
    valid_from: IsoDateTime
    valid_to: IsoDateTime | None = None

    @model_validator(mode="after")
    def _window(self) -> WatchlistEntryCreate:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class WatchlistEntryPublic(OutputModel):
    """A stored watchlist entry; ``in_force`` is false once it was expired in the store."""

    alert_id: str
    kind: str
    value: str
    reason: str
    issuing_unit: str
    severity: int
    valid_from: datetime
    valid_to: datetime | None
    created_at: datetime
    created_by: str
    expired_at: datetime | None
    expired_by: str | None
    in_force: bool


class WatchlistPage(OutputModel):
    """A page of watchlist entries ordered by alert id."""

    items: list[WatchlistEntryPublic]
    page: PageInfo
