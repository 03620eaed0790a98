"""Ingest input files into the lake: read as strings, validate, deduplicate, commit atomically.

:func:`ingest` reads CSV, Parquet or JSON Lines files (chosen by extension),
validates their rows (:func:`features.data.validation.validate`), compares the
valid rows with what the lake already holds and commits new rows and
quarantined rows as one lake log entry (:meth:`features.data.lake.Lake.commit`:
one Delta commit to the table, one to its quarantine table, the entry last).

Row outcomes (``accepted + unchanged + quarantined == input_rows``):

* ``accepted``: valid rows whose key is new to the lake (written);
* ``unchanged``: valid rows whose key is in the lake with identical content
  (not rewritten), so ingesting the same file twice changes nothing;
* ``quarantined``: rows rejected by a rule, plus valid rows whose key is in
  the lake with different content (``"<key>: conflicts with row already in
  the lake"``). A quarantined raw row already present, identical, in the
  lake's quarantine is not written again (counted in ``quarantine_unchanged``).

An ingest that adds nothing (the same file again) writes no Delta commit and
no lake log entry: no table gets a new version.

File-level faults (unknown extension, missing file, unreadable, truncated
or non-UTF-8 file, empty file, missing required column, duplicate or
reserved column names) raise :class:`IngestFileError` naming the file, and
nothing is written.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from features import clock
from features.data.contracts import TableContract, contract
from features.data.lake import FILE_COLUMN, Lake, LakeError
from features.data.validation import REASONS_COLUMN, ROW_COLUMN, SOURCE_ERROR_COLUMN, key_label, reason_counts, validate

__all__ = [
    "CSV_SUFFIXES",
    "JSONL_SUFFIXES",
    "PARQUET_SUFFIXES",
    "IngestFileError",
    "IngestSummary",
    "ProgressCallback",
    "ingest",
    "lake_conflict_reason",
    "read_raw",
    "to_string_frame",
]

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
_RESERVED = (FILE_COLUMN, ROW_COLUMN, REASONS_COLUMN)

ProgressCallback = Callable[[str], None]
"""Receives one short message per ingest step ("reading x.csv", "validating 10 rows", ...)."""


class IngestFileError(ValueError):
    """A file-level fault: the file cannot be ingested at all (message names the file)."""


def lake_conflict_reason(table_contract: TableContract) -> str:
    """Reason of a valid row whose key is already in the lake with different content."""
    return f"{key_label(table_contract)}: conflicts with row already in the lake"


@dataclass(frozen=True)
class IngestSummary:
    """What one :func:`ingest` did.

    Attributes
    ----------
    table
        Contract name.
    files
        Input file paths as given.
    input_rows
        Data rows read from all files.
    accepted
        New valid rows written to the lake.
    unchanged
        Valid rows already in the lake with identical content (not rewritten).
    quarantined
        Rows rejected in this run (including lake conflicts).
    quarantine_unchanged
        Of ``quarantined``, rows already in the quarantine identically (not rewritten).
    reasons
        Rejected rows per reason text (a row counts once per reason), most frequent first.
    ignored_columns
        Input columns outside the contract (kept only in quarantined rows).
    seq
        Sequence number of the log entry written; ``None`` when the ingest added
        nothing (no new row, no new quarantined row: no Delta commit and no
        lake log entry are written).
    files_added
        Lake files (relative paths) written by this ingest.
    """

    table: str
    files: list[str]
    input_rows: int
    accepted: int
    unchanged: int
    quarantined: int
    quarantine_unchanged: int
    reasons: dict[str, int]
    ignored_columns: list[str]
    seq: int | None = None
    files_added: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return asdict(self)


# --------------------------------------------------------------------------- reading


def _string_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    """Expression turning a typed column into strings as a CSV of the same data would hold them."""
    col = pl.col(name)
    if dtype == pl.String:
        return col
    if isinstance(dtype, pl.Datetime):
        fmt = "%Y-%m-%dT%H:%M:%S%.f%:z" if dtype.time_zone else "%Y-%m-%dT%H:%M:%S%.f"
        return col.dt.to_string(fmt)
    if isinstance(dtype, pl.Date):
        return col.dt.to_string("%Y-%m-%d")
    if isinstance(dtype, pl.Boolean):
        return pl.when(col).then(pl.lit("true")).when(~col).then(pl.lit("false"))
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = dtype.inner
        elements = col.list.eval(_element_string(inner)) if isinstance(dtype, pl.List) else col.arr.to_list().list.eval(_element_string(inner))
        return elements.list.join(";", ignore_nulls=True)
    if isinstance(dtype, pl.Struct):
        return col.struct.json_encode()
    if isinstance(dtype, pl.Binary):
        return col.cast(pl.String, strict=False)
    return col.cast(pl.String, strict=False)


def _element_string(dtype: pl.DataType) -> pl.Expr:
    e = pl.element()
    if dtype == pl.String:
        return e
    if isinstance(dtype, pl.Datetime):
        return e.dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z" if dtype.time_zone else "%Y-%m-%dT%H:%M:%S%.f")
    if isinstance(dtype, pl.Boolean):
        return pl.when(e).then(pl.lit("true")).when(~e).then(pl.lit("false"))
    if isinstance(dtype, (pl.Struct, pl.List, pl.Array)):
        return e.cast(pl.String, strict=False)
    return e.cast(pl.String, strict=False)


def to_string_frame(df: pl.DataFrame) -> pl.DataFrame:
    """Every column of ``df`` as String, the way a CSV export of it would read.

    Timestamps become ISO 8601 (with ``+HH:MM`` when the column has a time
    zone; naive ones stay naive and are later rejected), booleans
    ``true``/``false``, lists are joined with ``;`` and structs JSON-encoded.
    """
    return df.select([_string_expr(name, dtype).alias(name) for name, dtype in df.schema.items()])


def _error_text(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _check_utf8(path: Path, data: bytes, *, chunk: int = 1 << 24) -> None:
    """Raise :class:`IngestFileError` naming the first invalid byte unless ``data`` is UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    pieces = [(o, data[o : o + chunk], False) for o in range(0, len(data), chunk)] + [(len(data), b"", True)]
    for offset, piece, final in pieces:
        base = offset - len(decoder.getstate()[0])  # bytes held back from the previous piece
        try:
            decoder.decode(piece, final=final)
        except UnicodeDecodeError as exc:
            raise IngestFileError(
                f"{path}: not valid UTF-8 (byte {base + exc.start}); convert the file to UTF-8"
            ) from None


def _read_csv(path: Path, data: bytes) -> pl.DataFrame:
    _check_utf8(path, data)
    try:
        df = pl.read_csv(io.BytesIO(data), infer_schema=False, raise_if_empty=True)
    except pl.exceptions.NoDataError:
        raise IngestFileError(f"{path}: file is empty (no header line)") from None
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as exc:
        raise IngestFileError(f"{path}: not a readable CSV file: {_error_text(exc)}") from None
    dups = sorted({n.split("_duplicated_")[0] for n in df.columns if "_duplicated_" in n})
    if dups:
        raise IngestFileError(f"{path}: duplicate column name(s): {', '.join(dups)}")
    return df


def _read_parquet(path: Path, data: bytes) -> pl.DataFrame:
    try:
        df = pl.read_parquet(io.BytesIO(data))
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise IngestFileError(
            f"{path}: not a readable Parquet file (truncated or corrupt?): {_error_text(exc)}"
        ) from None
    if not df.columns:
        raise IngestFileError(f"{path}: file is empty (no columns)")
    try:
        return to_string_frame(df)
    except pl.exceptions.PolarsError as exc:
        raise IngestFileError(f"{path}: cannot convert columns to text: {_error_text(exc)}") from None


def _read_jsonl(path: Path, data: bytes) -> pl.DataFrame:
    _check_utf8(path, data)
    if not data.strip():
        raise IngestFileError(f"{path}: file is empty (no JSON object)")
    try:
        df = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise IngestFileError(f"{path}: not a readable JSON Lines file: {_broken_json_line(data) or _error_text(exc)}") from None
    try:
        return to_string_frame(df)
    except pl.exceptions.PolarsError as exc:
        raise IngestFileError(f"{path}: cannot convert fields to text: {_error_text(exc)}") from None


def _broken_json_line(data: bytes) -> str | None:
    """``"line N: <why>"`` for the first line of ``data`` that is not one JSON object (blank lines are allowed).

    Examples
    --------
    >>> _broken_json_line(b'{"a": 1}\\n\\n{"a": \\n')
    'line 3: invalid JSON (Expecting value at column 7)'
    >>> _broken_json_line(b'{"a": 1}\\n[1, 2]\\n')
    'line 2: a record must be a JSON object, not list'
    """
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"line {number}: invalid JSON ({exc.msg} at column {exc.colno})"
        if not isinstance(value, dict):
            return f"line {number}: a record must be a JSON object, not {type(value).__name__}"
    return None


def read_raw(path: str | os.PathLike[str], table: str) -> pl.DataFrame:
    """Read one input file of ``table`` with every column as String.

    Parameters
    ----------
    path
        A ``.csv``, ``.parquet``/``.pq`` or ``.jsonl``/``.ndjson`` file
        (UTF-8 for text formats; CSV comma-separated with a header line).
    table
        Contract name; its required columns must be present.

    Returns
    -------
    polars.DataFrame
        ``__file`` (the file name), ``__row`` (0-based data row, Int64), then
        the file's columns as String, in file order.

    Raises
    ------
    IngestFileError
        Naming the file: unsupported extension, missing, unreadable,
        truncated, not UTF-8, empty, duplicate or reserved column names, or
        missing required column(s) (named).
    """
    return _load(path, table)[0]


def _read_message(p: Path, data: bytes, table: str, fmt: str | None) -> pl.DataFrame:
    """A standard message file (CUSCAR, CODECO, COARRI, DCSA) as raw rows (:mod:`features.data.adapters`)."""
    from features.data.adapters import MessageFormatError, read_message

    try:
        return read_message(data, table, fmt)[0]
    except MessageFormatError as exc:
        raise IngestFileError(f"{p}: {exc}") from None


def _load(path: str | os.PathLike[str], table: str, fmt: str | None = None) -> tuple[pl.DataFrame, str]:
    """:func:`read_raw` plus the sha256 of the exact bytes that were read.

    ``fmt`` (``cuscar``, ``codeco``, ``coarri``, ``dcsa``) reads the file as
    that standard message whatever its suffix; files with a message suffix
    (``.edi``, ``.json``, ...) have their format sniffed from the content.
    """
    from features.data.adapters import MESSAGE_SUFFIXES

    c = contract(table)
    p = Path(path)
    suffix = p.suffix.lower()
    readers = {
        **{s: _read_csv for s in CSV_SUFFIXES},
        **{s: _read_parquet for s in PARQUET_SUFFIXES},
        **{s: _read_jsonl for s in JSONL_SUFFIXES},
    }
    message = fmt is not None or suffix in MESSAGE_SUFFIXES
    if suffix not in readers and not message:
        raise IngestFileError(
            f"{p}: unsupported file type {suffix or '(none)'!r}; use .csv, .parquet/.pq or .jsonl/.ndjson, "
            "or a standard message (.edi, .json) with --format cuscar|codeco|coarri|dcsa"
        )
    if not p.exists():
        raise IngestFileError(f"{p}: file not found")
    if not p.is_file():
        raise IngestFileError(f"{p}: not a regular file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise IngestFileError(f"{p}: cannot read file: {exc.strerror or exc}") from None
    if not data:
        raise IngestFileError(f"{p}: file is empty")
    df = _read_message(p, data, table, fmt) if message else readers[suffix](p, data)
    reserved = [n for n in df.columns if n in _RESERVED or n.startswith("__ccp_")]
    if reserved:
        raise IngestFileError(f"{p}: reserved column name(s): {', '.join(reserved)}")
    missing = [n for n in c.required_columns if n not in df.columns]
    if missing:
        raise IngestFileError(f"{p}: missing required column(s) for table {table!r}: {', '.join(missing)}")
    framed = df.select(
        pl.lit(p.name, dtype=pl.String).alias(FILE_COLUMN),
        pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_COLUMN),
        pl.all(),
    )
    return framed, hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- dedup


def _identity_expr(columns: Iterable[str]) -> pl.Expr:
    """Canonical text of a raw row: its non-null values as ``{"col":"value"}`` pieces, by column name.

    Independent of column order and of columns that are null, so a row reads
    the same whether or not other files of the batch had extra columns.
    """
    parts = [
        pl.when(pl.col(n).is_not_null()).then(pl.struct(pl.col(n)).struct.json_encode())
        for n in sorted(columns)
    ]
    if not parts:
        return pl.lit("")
    return pl.concat_str(parts, separator=",", ignore_nulls=True)


def _raw_value_columns(columns: Iterable[str]) -> list[str]:
    return [n for n in columns if n not in _RESERVED]


def _split_against_lake(
    lake: Lake, c: TableContract, accepted: pl.DataFrame
) -> tuple[pl.Series, pl.Series]:
    """Masks over ``accepted``: (unchanged, conflicting) with the rows already in the lake."""
    key = list(c.key)
    if accepted.height == 0 or not lake.files(c.name):
        false = pl.Series([False] * accepted.height, dtype=pl.Boolean)
        return false, false
    marker = "__ccp_in_lake"
    existing = (
        lake.scan(c.name)
        .join(accepted.lazy().select(key), on=key, how="semi")
        .with_columns(pl.lit(True).alias(marker))
        .collect()
    )
    others = [n for n in c.column_names if n not in key]
    joined = accepted.join(existing, on=key, how="left", suffix="__ccp_lake", maintain_order="left")
    if joined.height != accepted.height:
        raise LakeError(f"lake table {c.name!r} holds several rows with one key (corrupt lake)")
    in_lake = joined[marker].fill_null(False)
    same = joined.select(
        pl.all_horizontal([pl.col(n).eq_missing(pl.col(f"{n}__ccp_lake")) for n in others] or [pl.lit(True)])
    ).to_series()
    return in_lake & same, in_lake & ~same


def _already_quarantined(lake: Lake, table: str, rejected: pl.DataFrame) -> pl.Series:
    """Mask over ``rejected``: raw rows already in the lake's quarantine with the same values."""
    if rejected.height == 0 or not lake.quarantine_files(table):
        return pl.Series([False] * rejected.height, dtype=pl.Boolean)
    q = lake.scan_quarantine(table)
    columns = _raw_value_columns(q.collect_schema().names())
    existing = q.select(_identity_expr(columns)).unique().collect().to_series()
    mine = rejected.select(_identity_expr(_raw_value_columns(rejected.columns))).to_series()
    return mine.is_in(existing.implode())


# --------------------------------------------------------------------------- ingest


def _known_locodes(lake: Lake, table: str) -> tuple[frozenset[str], frozenset[str] | None]:
    """(every known location, the seaports): the UN/LOCODE list and port reference, plus the lake's ``ports`` table."""
    if table == "ports":
        return frozenset(), None
    from features.data.reference import location_locodes, seaport_locodes

    lake_ports = frozenset(lake.scan("ports").select("locode").collect().to_series().to_list())
    return location_locodes() | lake_ports, seaport_locodes() | lake_ports


def ingest(
    lake: Lake,
    table: str,
    files: Sequence[str | os.PathLike[str]],
    *,
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
    format: str | None = None,  # noqa: A002 - the user-facing name of the option
) -> IngestSummary:
    """Ingest ``files`` into ``table`` of ``lake`` in one atomic commit.

    Parameters
    ----------
    lake
        Target lake.
    table
        Contract name: ``manifests``, ``events``, ``outcomes``, ``alerts`` or ``ports``.
    files
        Input files (``.csv``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``),
        validated together (duplicates across files are detected).
    now
        Timezone-aware reference time of the "not in the future" rules and
        of the quarantine partition; default: the clock.
    progress
        Optional callback receiving a message per step.
    format
        Read every file as this standard message: ``cuscar`` (manifests),
        ``codeco``, ``coarri`` or ``dcsa`` (events); ``None``: by suffix,
        sniffing the content of ``.edi``/``.edifact``/``.json`` files. A bad
        segment quarantines its row with a reason naming the segment and
        element.

    Returns
    -------
    IngestSummary
        Counts with ``accepted + unchanged + quarantined == input_rows``.

    Raises
    ------
    IngestFileError
        On a file-level fault; nothing is written.
    ValueError
        Unknown table, no files, or a naive ``now``.

    Notes
    -----
    UN/LOCODEs must be in the UN/LOCODE list, the packaged port reference or
    the lake's ``ports`` table; a port of loading, discharge or transshipment
    must be a seaport (UN/LOCODE function 1, a ``searoute`` port, the port
    reference or the lake's ``ports``). The whole read-check-write cycle holds the lake's
    writer lock, so concurrent ingests cannot both add the same key.
    """
    c = contract(table)
    if not files:
        raise ValueError("no input files")
    now = now or clock.now()
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    say = progress or (lambda _msg: None)

    raws, sources = [], []
    for f in files:
        say(f"reading {Path(f).name}")
        raw, digest = _load(f, table, format)
        raws.append(raw)
        sources.append({"path": str(Path(f).resolve()), "name": Path(f).name, "sha256": digest, "rows": raw.height})
    raw = pl.concat(raws, how="diagonal") if len(raws) > 1 else raws[0]
    contract_cols = set(c.column_names)
    ignored = sorted({n for r in raws for n in _raw_value_columns(r.columns) if n not in contract_cols and n != SOURCE_ERROR_COLUMN})

    with lake.locked():
        say(f"validating {raw.height} rows")
        locations, seaports = _known_locodes(lake, table)
        result = validate(table, raw, now=now, known_locodes=locations, seaports=seaports)

        say("comparing with the lake")
        unchanged_mask, conflict_mask = _split_against_lake(lake, c, result.accepted)
        new_rows = result.accepted.filter(~unchanged_mask & ~conflict_mask)
        conflict_pos = result.accepted_index.filter(conflict_mask)
        conflicts = raw[conflict_pos].with_columns(
            pl.lit([lake_conflict_reason(c)], dtype=pl.List(pl.String)).alias(REASONS_COLUMN)
        )
        rejected = pl.concat([result.rejected, conflicts], how="vertical")
        seen = _already_quarantined(lake, table, rejected)
        new_quarantine = rejected.filter(~seen)

        summary = IngestSummary(
            table=table,
            files=[str(f) for f in files],
            input_rows=raw.height,
            accepted=new_rows.height,
            unchanged=int(unchanged_mask.sum()),
            quarantined=rejected.height,
            quarantine_unchanged=int(seen.sum()),
            reasons=reason_counts(rejected),
            ignored_columns=ignored,
        )
        total = summary.accepted + summary.unchanged + summary.quarantined
        if total != summary.input_rows:
            raise AssertionError(f"ingest lost rows: {total} accounted for, {summary.input_rows} read")

        if new_rows.height == 0 and new_quarantine.height == 0:
            say("nothing new: no log entry written")
            return summary  # seq None, files_added []: an ingest that adds nothing leaves no trace in the log
        say(f"writing {new_rows.height} new and {new_quarantine.height} quarantined rows")
        counts = {k: v for k, v in summary.to_dict().items() if k not in ("table", "files", "seq", "files_added")}
        entry = lake.commit(table, new_rows, new_quarantine, sources, counts, now=now)
    return IngestSummary(**{**summary.to_dict(), "seq": entry.seq, "files_added": [f["path"] for f in entry.files]})
