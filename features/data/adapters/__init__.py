"""Standard message adapters: UN/EDIFACT CUSCAR manifests, CODECO/COARRI and DCSA Track & Trace container events.

:func:`read_message` turns one message file into raw rows of a contract table
(every column as text, like a CSV), with the reason of any bad segment in
:data:`features.data.validation.SOURCE_ERROR_COLUMN` so validation
quarantines that row with it (``message: CUSCAR segment 12 (EQD) element 2
(8260 container number): missing``). The format is given (``--format``) or
sniffed from the content (:func:`sniff_format`).
"""

from __future__ import annotations

import json
import re

import polars as pl

from features.data.contracts import contract
from features.data.validation import SOURCE_ERROR_COLUMN

__all__ = ["FORMATS", "MESSAGE_SUFFIXES", "TABLE_OF_FORMAT", "MessageFormatError", "read_message", "sniff_format"]

FORMATS = ("cuscar", "codeco", "coarri", "dcsa")
TABLE_OF_FORMAT = {"cuscar": "manifests", "codeco": "events", "coarri": "events", "dcsa": "events"}
MESSAGE_SUFFIXES = (".edi", ".edifact", ".json", ".cuscar", ".codeco", ".coarri")
"""File suffixes whose format is sniffed from the content (tabular suffixes keep their readers)."""

_UNH = re.compile(r"UNH\+[^+']*\+([A-Z]{6})")


class MessageFormatError(ValueError):
    """A message file that cannot be read as its format (file-level fault: nothing is ingested)."""


def sniff_format(data: bytes) -> str | None:
    """``cuscar``, ``codeco``, ``coarri`` or ``dcsa`` from a file's first bytes; ``None`` when none fits."""
    head = data.lstrip()[:8192].decode("utf-8", "replace")
    if head.startswith(("UNA", "UNB", "UNH")):
        match = _UNH.search(head)
        kind = match.group(1).lower() if match else None
        return kind if kind in ("cuscar", "codeco", "coarri") else None
    if head.startswith(("[", "{")) and ('"equipmentEventTypeCode"' in head or '"eventType"' in head):
        return "dcsa"
    return None


def _edifact_rows(text: str, fmt: str) -> list[dict[str, object]]:
    from features.data.adapters.container_events import container_event_rows
    from features.data.adapters.cuscar import cuscar_rows
    from features.data.adapters.edifact import EdifactError, messages

    try:
        found = messages(text)
    except EdifactError as exc:
        raise MessageFormatError(str(exc)) from None
    other = sorted({mt for mt, _ in found if mt.lower() != fmt})
    if other:
        raise MessageFormatError(f"interchange holds {', '.join(other)} message(s), not only {fmt.upper()}")
    return cuscar_rows(found) if fmt == "cuscar" else container_event_rows(found)


def read_message(data: bytes, table: str, fmt: str | None = None) -> tuple[pl.DataFrame, int]:
    """Raw rows of ``table`` from one message file's bytes, and how many records were not rows of it.

    Parameters
    ----------
    data
        The file's bytes (UTF-8; EDIFACT UNOA/UNOB/UNOC text).
    table
        The contract table being ingested; must be the format's table
        (CUSCAR -> manifests; CODECO, COARRI, DCSA -> events).
    fmt
        One of :data:`FORMATS`; ``None`` sniffs it from the content.

    Returns
    -------
    (polars.DataFrame, int)
        Every contract column of ``table`` as String (absent values null; a
        list column ``;``-joined) plus :data:`SOURCE_ERROR_COLUMN`; and the
        number of ignored records (DCSA transport/shipment events).

    Raises
    ------
    MessageFormatError
        Unknown or unsniffable format, a format for another table, or a file
        that is not a readable message of its format.
    """
    fmt = (fmt or sniff_format(data) or "").lower()
    if fmt not in FORMATS:
        raise MessageFormatError(f"not a CUSCAR, CODECO, COARRI or DCSA Track & Trace message; give --format ({', '.join(FORMATS)})")
    if TABLE_OF_FORMAT[fmt] != table:
        raise MessageFormatError(f"a {fmt.upper()} message holds {TABLE_OF_FORMAT[fmt]}, not {table}: ingest it into {TABLE_OF_FORMAT[fmt]}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # UNOB/UNOC interchanges in ISO 8859-1
    ignored = 0
    if fmt == "dcsa":
        from features.data.adapters.dcsa import dcsa_rows

        try:
            rows, ignored = dcsa_rows(json.loads(text))
        except (json.JSONDecodeError, ValueError) as exc:
            raise MessageFormatError(f"not a DCSA Track & Trace event file: {exc}") from None
    else:
        rows = _edifact_rows(text, fmt)
    columns = contract(table).column_names
    frame = pl.DataFrame(
        {
            **{name: [None if r.get(name) is None else str(r[name]) for r in rows] for name in columns},
            SOURCE_ERROR_COLUMN: [None if r.get("__errors") is None else f"message: {r['__errors']}" for r in rows],
        },
        schema={**{name: pl.String for name in columns}, SOURCE_ERROR_COLUMN: pl.String},
    )
    return frame, ignored
