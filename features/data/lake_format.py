"""The lake's on-disk format: names, the quarantine table's schema, the lake log entry, file durability.

See :mod:`features.data.lake` for the layout and the commit protocol.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from deltalake import PostCommitHookProperties

from features.data.contracts import contract
from features.data.validation import REASONS_COLUMN, ROW_COLUMN

LOG_FORMAT = 2
"""Version of the lake log entry layout (1 was the home-made Parquet commit log)."""
FILE_COLUMN = "__file"
"""Quarantine column: name of the source file of a rejected row."""
EXTRA_COLUMN = "__extra"
"""Stored quarantine column: a rejected row's non-contract columns as a JSON object (``null`` when none)."""
PARTITION_COLUMN = "partition_date"
"""Partition column of the Delta tables of partitioned contracts: UTC date of ``partition_by``."""
BATCH_KEY = "ccp.batch"
"""Delta commit metadata key naming the ingest batch a commit belongs to."""
TABLE_CONFIGURATION = {
    "delta.enableExpiredLogCleanup": "false",  # old versions stay readable: lists replay from them
    "delta.logRetentionDuration": "interval 36500 days",
}
COMMIT_HOOKS = PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=False)
_DIGEST_FORMAT = 1  # data_sha256 layout, unchanged since the Parquet log: migrated lakes keep their digests
LOG_DIR = "_lake_log"
QUARANTINE_DIR = "_quarantine"
LOG_NAME = re.compile(r"^([0-9]{8})\.json$")
LOCK_NAME = ".lock"


class LakeError(RuntimeError):
    """The lake on disk is inconsistent (e.g. a committed file is missing or altered)."""


class LegacyLakeError(LakeError):
    """The directory holds a lake in the old home-made format: it must be migrated first."""


def quarantine_key(table: str) -> str:
    """Lake-relative directory (and lake log key) of ``table``'s quarantine Delta table."""
    return f"{QUARANTINE_DIR}/{table}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_all(paths: Sequence[Path]) -> None:
    """fsync each file, then each of their directories once."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    for directory in sorted({p.parent for p in paths}):
        fsync_dir(directory)


def data_digest(table: str, records: Sequence[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    h.update(f"{_DIGEST_FORMAT}\n{table}\n".encode())
    for path, digest in sorted(records):
        h.update(f"{path}\t{digest}\n".encode())
    return h.hexdigest()


def quarantine_schema(table: str) -> pl.Schema:
    """Schema of the quarantine Delta table of ``table`` (contract columns as String).

    :meth:`Lake.scan_quarantine` unpacks ``__extra`` back into columns.
    """
    c = contract(table)
    return pl.Schema(
        {
            FILE_COLUMN: pl.String(),
            ROW_COLUMN: pl.Int64(),
            **{n: pl.String() for n in c.column_names},
            EXTRA_COLUMN: pl.String(),
            REASONS_COLUMN: pl.List(pl.String()),
        }
    )


def quarantine_frame(table: str, rejected: pl.DataFrame) -> pl.DataFrame:
    """``rejected`` (raw String columns, ``__row``, ``reasons``) in the quarantine table's schema."""
    schema = quarantine_schema(table)
    names = set(contract(table).column_names) | set(schema)
    extras = [n for n in rejected.columns if n not in names]
    columns = [
        (pl.col(n).cast(dtype) if n in rejected.columns else pl.lit(None, dtype)).alias(n)
        for n, dtype in schema.items()
        if n != EXTRA_COLUMN
    ]
    extra = pl.struct(extras).struct.json_encode() if extras else pl.lit(None, pl.String)
    columns.insert(len(columns) - 1, extra.alias(EXTRA_COLUMN))
    return rejected.select(columns)


@dataclass(frozen=True)
class LogEntry:
    """A committed lake log entry.

    Attributes
    ----------
    seq
        Sequence number (1, 2, ...), from the file name ``_lake_log/<seq:08d>.json``.
    table
        Table the ingest wrote.
    committed_at
        ISO 8601 UTC time of the commit (the project clock).
    sources
        Input files: ``{"path", "name", "sha256", "rows"}`` dicts.
    files
        Files added: ``{"path" (relative to the lake), "kind" ("data" or
        "quarantine"), "partition", "rows", "sha256"}`` dicts.
    summary
        Counts given by the writer (accepted, unchanged, quarantined, reasons, ...).
    batch
        Batch id, also in the ``ccp.batch`` metadata of the Delta commits.
    tables
        Every table of the lake after this entry: ``{key: {"version",
        "data_sha256"}}`` (``key`` is the table name, or
        ``_quarantine/<table>``).
    """

    seq: int
    table: str
    committed_at: str
    sources: tuple[dict[str, Any], ...]
    files: tuple[dict[str, Any], ...]
    summary: dict[str, Any]
    batch: str = ""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the stored entry plus ``seq``)."""
        return {
            "seq": self.seq,
            "format": LOG_FORMAT,
            "table": self.table,
            "committed_at": self.committed_at,
            "batch": self.batch,
            "sources": list(self.sources),
            "files": list(self.files),
            "summary": self.summary,
            "tables": self.tables,
        }


