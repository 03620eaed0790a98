"""Shared schema pieces: the strict input base model, bounded scalar types, error bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from serve.validators import normalize_container_number, normalize_locode


class InputModel(BaseModel):
    """Base of every request body: unknown fields rejected, inputs not echoed in errors."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class OutputModel(BaseModel):
    """Base of every response body."""

    model_config = ConfigDict(frozen=True)


Locode = Annotated[StrictStr, StringConstraints(min_length=5, max_length=16), AfterValidator(normalize_locode)]
"""A UN/LOCODE, normalised to upper case."""
ContainerNumber = Annotated[
    StrictStr, StringConstraints(min_length=11, max_length=20), AfterValidator(normalize_container_number)
]
"""An ISO 6346 container number with a valid check digit, normalised to upper case."""
Reference = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
"""An identifier such as a manifest id or examiner id."""
ShortText = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ErrorBody(OutputModel):
    """Body of an error response (``request_id`` on 5xx)."""

    detail: str
    request_id: str | None = None


class PageInfo(OutputModel):
    """Offset pagination of a response."""

    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
