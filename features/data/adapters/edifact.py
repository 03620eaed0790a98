"""Shared UN/EDIFACT reading (with ``pydifact``) for the message adapters.

Every adapter turns one message file into raw rows of a contract table: all
values as text (the validation canonicalises and checks them) plus
:data:`features.data.validation.SOURCE_ERROR_COLUMN` when a segment of the
row's message is bad, naming the message, the segment (tag and position in
the message) and the element, so the row is quarantined with that reason.

Time semantics: EDIFACT date/times (DTM) carry no time zone; they are read as
UTC (``+00:00``). Formats 203 (CCYYMMDDHHMM), 204 (CCYYMMDDHHMMSS), 102
(CCYYMMDD, read as 00:00) and 201 (YYMMDDHHMM) are understood.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from pydifact.segmentcollection import Interchange

__all__ = ["EdifactError", "Located", "RowErrors", "component", "dtm_value", "messages", "parse_dtm"]


class EdifactError(ValueError):
    """The file is not a readable UN/EDIFACT interchange (file-level fault)."""


@dataclass(frozen=True)
class Located:
    """A segment with its 1-based position in its message (UNH is 1)."""

    position: int
    tag: str
    elements: list

    def where(self, message_type: str, element: int, name: str) -> str:
        """``"CUSCAR segment 7 (EQD) element 2 (container number)"``."""
        return f"{message_type} segment {self.position} ({self.tag}) element {element} ({name})"


@dataclass
class RowErrors:
    """Reasons collected for a header, a consignment or a container."""

    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.items.append(text)


def messages(text: str) -> list[tuple[str, list[Located]]]:
    """``(message type, segments)`` of every message of an interchange, in order.

    Raises
    ------
    EdifactError
        When ``pydifact`` cannot parse the text (unterminated segment, bad service string advice, ...).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            interchange = Interchange.from_str(text.strip())
            out = []
            for message in interchange.get_messages():
                segments = [Located(i, s.tag, list(s.elements)) for i, s in enumerate(message.segments, start=2)]
                out.append((str(message.type), segments))
    except Exception as exc:  # noqa: BLE001 - pydifact raises several unrelated types
        raise EdifactError(f"not a readable UN/EDIFACT interchange: {exc}") from None
    if not out:
        raise EdifactError("no UNH message in the interchange")
    return out


def component(seg: Located, element: int, comp: int = 0) -> str | None:
    """Text of component ``comp`` of data element ``element`` (1-based after the tag); ``None`` when absent or empty."""
    if element > len(seg.elements):
        return None
    value = seg.elements[element - 1]
    if isinstance(value, list):
        value = value[comp] if comp < len(value) else None
    elif comp > 0:
        value = None
    value = None if value is None else str(value).strip()
    return value or None


_FORMATS = {"203": 12, "204": 14, "102": 8, "201": 10}


def parse_dtm(value: str | None, fmt: str | None) -> str | None:
    """ISO 8601 UTC text of an EDIFACT date/time, or ``None`` when it does not fit its format code."""
    fmt = fmt or "203"
    if value is None or fmt not in _FORMATS or len(value) != _FORMATS[fmt] or not value.isdigit():
        return None
    if fmt == "201":
        value = ("20" if int(value[:2]) < 70 else "19") + value
    y, mo, d = value[0:4], value[4:6], value[6:8]
    hh, mi, ss = (value[8:10] or "00"), (value[10:12] or "00"), (value[12:14] or "00")
    if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31 and int(hh) < 24 and int(mi) < 60 and int(ss) < 60):
        return None
    return f"{y}-{mo}-{d}T{hh}:{mi}:{ss}+00:00"


def dtm_value(seg: Located, message_type: str, errors: RowErrors) -> tuple[str | None, str | None]:
    """``(qualifier, ISO time)`` of a DTM segment; a malformed date/time adds an error naming the element."""
    qualifier, value, fmt = component(seg, 1, 0), component(seg, 1, 1), component(seg, 1, 2)
    parsed = parse_dtm(value, fmt)
    if parsed is None:
        errors.add(f"{seg.where(message_type, 1, 'C507 date/time')}: {value!r} is not a date/time in format {fmt or '203'}")
    return qualifier, parsed
