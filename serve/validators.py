"""Small pure validators of identifiers used by the service's schemas and the CLI.

They reuse :mod:`features.data.checks` so the service accepts exactly what the lake accepts.
"""

from __future__ import annotations

import re

from features.data.checks import imo_is_valid, iso6346_is_valid, locode_shape_ok, normalize_code

_ROUTE_END = r"(?:[A-Z]{2}[A-Z2-9]{3}|[A-Z]{2}|\*)"
_ROUTE_RE = re.compile(rf"^{_ROUTE_END}>{_ROUTE_END}$")
_HS_PREFIX_RE = re.compile(r"^[0-9]{2,10}$")
_REFERENCE_RE = re.compile(r"^[A-Z0-9][A-Z0-9._/:-]{0,63}$")


def normalize_locode(value: str) -> str:
    """Upper-cased, stripped UN/LOCODE; ``ValueError`` unless it has the UN/LOCODE shape.

    Examples
    --------
    >>> normalize_locode(" nlrtm ")
    'NLRTM'
    """
    if not locode_shape_ok(value):
        raise ValueError("port must be a UN/LOCODE (2 letters + 3 of A-Z, 2-9)")
    code = normalize_code(value)
    assert code is not None
    return code


def normalize_container_number(value: str) -> str:
    """Upper-cased, stripped ISO 6346 container number; ``ValueError`` on bad shape or check digit.

    Examples
    --------
    >>> normalize_container_number("csqu3054383")
    'CSQU3054383'
    """
    if not iso6346_is_valid(value):
        raise ValueError("container_number must be an ISO 6346 number with a valid check digit")
    code = normalize_code(value)
    assert code is not None
    return code


def normalize_alert_value(kind: str, value: str) -> str:
    """Validate and normalise the match value of a watchlist entry of ``kind`` (ALERTS contract).

    PARTY and BL values are upper-cased references (letters, digits, ``._/:-``,
    at most 64); CONTAINER an ISO 6346 number; VESSEL an IMO number (stored as
    7 digits); HS_CODE a 2-10 digit prefix; ROUTE ``FROM>TO`` where each end is
    a UN/LOCODE, a country code or ``*``.

    Examples
    --------
    >>> normalize_alert_value("ROUTE", "ec>nlrtm")
    'EC>NLRTM'
    >>> normalize_alert_value("VESSEL", "IMO 9074729")
    '9074729'
    """
    code = normalize_code(value)
    if code is None:
        raise ValueError("value must be a string")
    if kind == "CONTAINER":
        return normalize_container_number(code)
    if kind == "VESSEL":
        if not imo_is_valid(code):
            raise ValueError("value must be an IMO number with a valid check digit")
        return code.removeprefix("IMO").strip()
    if kind == "HS_CODE":
        if not _HS_PREFIX_RE.match(code):
            raise ValueError("value must be an HS code prefix of 2 to 10 digits")
        return code
    if kind == "ROUTE":
        if not _ROUTE_RE.match(code):
            raise ValueError("value must be 'FROM>TO', each a UN/LOCODE, a country code or '*'")
        return code
    if kind in ("PARTY", "BL"):
        if not _REFERENCE_RE.match(code):
            raise ValueError("value must be 1-64 letters, digits or ._/:- characters")
        return code
    raise ValueError(f"unknown alert kind {kind!r}")


LOCODE_PATTERN = r"^[A-Z]{2}[A-Z2-9]{3}$"
"""UN/LOCODE as the API accepts it: 2 letters (country) + 3 of A-Z, 2-9 (location), upper case."""
ISO6346_PATTERN = r"^[A-Z]{3}[UJZ][0-9]{7}$"
"""ISO 6346 container number: owner code, category U/J/Z, 6-digit serial, check digit (the check digit is verified too)."""
ISO_DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})$"
"""A timezone-aware ISO 8601 date-time (offset or ``Z`` required); numbers such as ``0.5`` are refused."""
ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
"""An ISO 8601 calendar date."""
_ISO_DATETIME_RE = re.compile(ISO_DATETIME_PATTERN)
_ISO_DATE_RE = re.compile(ISO_DATE_PATTERN)


def require_iso_datetime_text(value: object) -> object:
    """``value`` when it is a datetime or an ISO 8601 date-time string with an offset; ``ValueError`` otherwise.

    Pydantic alone would read ``"0.5"`` as a Unix time.

    Examples
    --------
    >>> require_iso_datetime_text("2025-03-01T10:15:00Z")
    '2025-03-01T10:15:00Z'
    >>> require_iso_datetime_text("0.5")
    Traceback (most recent call last):
    ...
    ValueError: must be an ISO 8601 date-time with a time zone, e.g. 2025-03-01T10:15:00Z
    """
    if isinstance(value, str) and _ISO_DATETIME_RE.match(value):
        return value
    if hasattr(value, "tzinfo") and hasattr(value, "hour"):
        return value
    raise ValueError("must be an ISO 8601 date-time with a time zone, e.g. 2025-03-01T10:15:00Z")


def require_iso_date_text(value: object) -> object:
    """``value`` when it is a date or an ISO 8601 date string (``YYYY-MM-DD``); ``ValueError`` otherwise."""
    if isinstance(value, str) and _ISO_DATE_RE.match(value):
        return value
    if hasattr(value, "year") and not isinstance(value, (str, int, float)):
        return value
    raise ValueError("must be an ISO 8601 date, e.g. 2025-03-01")
