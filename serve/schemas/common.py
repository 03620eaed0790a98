"""Shared schema pieces: the strict input base model, bounded scalar types, error bodies."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

from fastapi import HTTPException
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, WithJsonSchema, ConfigDict, Field, StrictStr, StringConstraints

from serve.validators import (
    ISO6346_PATTERN,
    ISO_DATETIME_PATTERN,
    LOCODE_PATTERN,
    normalize_container_number,
    normalize_locode,
    require_iso_datetime_text,
)


class InputModel(BaseModel):
    """Base of every request body: unknown fields rejected, inputs not echoed in errors."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


class OutputModel(BaseModel):
    """Base of every response body."""

    model_config = ConfigDict(frozen=True)


Locode = Annotated[StrictStr, StringConstraints(pattern=LOCODE_PATTERN), AfterValidator(normalize_locode)]
"""A UN/LOCODE (:data:`serve.validators.LOCODE_PATTERN`: upper case, as the schema says)."""
ContainerNumber = Annotated[StrictStr, StringConstraints(pattern=ISO6346_PATTERN), AfterValidator(normalize_container_number)]
"""An ISO 6346 container number (:data:`serve.validators.ISO6346_PATTERN`) with a valid check digit."""
Reference = Annotated[StrictStr, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
"""An identifier such as a manifest id or examiner id."""

_UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
"""C0 controls (TAB, CR and LF included), DEL, C1 controls, zero-width characters, line/paragraph
separators, bidirectional embeddings, overrides and isolates (U+202A-E, U+2066-9) and the BOM."""


def refuse_unsafe_characters(value: str) -> str:
    """``value`` unchanged; ``ValueError`` naming the first control or invisible formatting character.

    Free text (rule, watchlist, amendment, outcome text) flows into officers'
    lists and CSV exports, where such characters hide or reorder what is shown.

    Examples
    --------
    >>> refuse_unsafe_characters("Reefer, bananas")
    'Reefer, bananas'
    >>> refuse_unsafe_characters("abc\u202edef")
    Traceback (most recent call last):
    ...
    ValueError: contains the control or invisible formatting character U+202E at position 3
    """
    found = _UNSAFE_CHARACTERS.search(value)
    if found is not None:
        raise ValueError(f"contains the control or invisible formatting character U+{ord(found.group()):04X} at position {found.start()}")
    return value


IsoDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(require_iso_datetime_text),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": ISO_DATETIME_PATTERN}),
]
"""A timezone-aware ISO 8601 date-time written as text; numbers (Unix times such as ``0.5``) are refused."""

SafeText = Annotated[StrictStr, AfterValidator(refuse_unsafe_characters)]
"""Free text without control or invisible formatting characters (the one text validator of every schema)."""
ShortText = Annotated[SafeText, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def field_error(field: str, message: str, *, location: str = "body", error_type: str = "value_error") -> HTTPException:
    """A 422 shaped like request-validation errors, naming ``field``."""
    return HTTPException(status_code=422, detail=[{"loc": [location, field], "msg": message, "type": error_type}])


def field_errors(errors: Sequence[tuple[str, str]], *, location: str = "body") -> HTTPException:
    """A 422 naming several ``(field, message)`` problems."""
    return HTTPException(status_code=422, detail=[{"loc": [location, f], "msg": m, "type": "value_error"} for f, m in errors])


class ErrorBody(OutputModel):
    """Body of an error response (``request_id`` on 5xx)."""

    detail: str
    request_id: str | None = None


class PageInfo(OutputModel):
    """Offset pagination of a response."""

    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
