"""Read-only access to a lake in the old home-made format (format 1), for migration only.

Before the lake moved to Delta Lake tables (:mod:`features.data.lake`) it was a
commit log over Parquet files::

    DIR/<table>/date=YYYY-MM-DD/<uuid>.parquet       accepted rows (``all/`` when unpartitioned)
    DIR/_quarantine/<table>/date=YYYY-MM-DD/<uuid>.parquet
    DIR/_log/<seq:08d>.json                          one entry per ingest: files with sha256 and rows

Only files listed by a log entry are part of the lake. :class:`LegacyLake`
reads such a lake exactly as the old reader did (same rows, same
``data_sha256``) so :mod:`features.data.lake_migration` can copy it entry by
entry and prove the copy. Nothing here writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from features.data.contracts import contract
from features.data.validation import REASONS_COLUMN

__all__ = ["LEGACY_LOG_DIR", "LegacyEntry", "LegacyLake", "is_legacy_lake", "sha256_file"]

LEGACY_LOG_DIR = "_log"
_LOG_NAME = re.compile(r"^([0-9]{8})\.json$")


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def is_legacy_lake(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds an old-format lake (a ``_log`` directory with committed entries)."""
    log_dir = Path(path) / LEGACY_LOG_DIR
    return log_dir.is_dir() and any(_LOG_NAME.match(n) for n in os.listdir(log_dir))


@dataclass(frozen=True)
class LegacyEntry:
    """One committed entry of the old log (see :class:`features.data.lake.LogEntry` for the fields)."""

    seq: int
    table: str
    committed_at: str
    sources: tuple[dict[str, Any], ...]
    files: tuple[dict[str, Any], ...]
    summary: dict[str, Any]


class LegacyLake:
    """An old-format lake at ``path``, read only."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path)
        self._log: list[LegacyEntry] | None = None

    def log(self) -> list[LegacyEntry]:
        """Committed entries in sequence order (read once: the old lake is not written any more)."""
        if self._log is None:
            self._log = self._read_log()
        return self._log

    def _read_log(self) -> list[LegacyEntry]:
        log_dir = self.root / LEGACY_LOG_DIR
        names = sorted((int(m.group(1)), n) for n in os.listdir(log_dir) if (m := _LOG_NAME.match(n))) if log_dir.is_dir() else []
        out = []
        for seq, name in names:
            raw = json.loads((log_dir / name).read_text(encoding="utf-8"))
            out.append(LegacyEntry(seq, raw["table"], raw["committed_at"], tuple(raw["sources"]), tuple(raw["files"]), raw["summary"]))
        return out

    def _records(self, table: str, kind: str, as_of: int | None) -> list[dict[str, Any]]:
        return [f for e in self.log() if e.table == table and (as_of is None or e.seq <= as_of) for f in e.files if f["kind"] == kind]

    def read_files(self, table: str, records: list[dict[str, Any]]) -> pl.DataFrame:
        """Rows of the data files ``records`` (log file records) with exactly the contract schema."""
        c = contract(table)
        if not records:
            return pl.DataFrame(schema=c.schema)
        paths = [str(self.root / f["path"]) for f in records]
        return pl.scan_parquet(paths, schema=dict(c.schema), missing_columns="insert", extra_columns="ignore").select(c.column_names).collect()

    def read_quarantine_files(self, table: str, records: list[dict[str, Any]]) -> pl.DataFrame:
        """Quarantined raw rows of ``records``: their own columns (String, ``__row``, ``reasons``), diagonally concatenated."""
        frames = [pl.read_parquet(self.root / f["path"]) for f in records]
        if not frames:
            return pl.DataFrame(schema={REASONS_COLUMN: pl.List(pl.String)})
        return pl.concat(frames, how="diagonal")

    def scan(self, table: str, *, as_of: int | None = None) -> pl.DataFrame:
        """Every committed row of ``table`` (as of ``as_of``), contract schema."""
        return self.read_files(table, self._records(table, "data", as_of))

    def quarantine(self, table: str, *, as_of: int | None = None) -> pl.DataFrame:
        """Every committed quarantined raw row of ``table``."""
        return self.read_quarantine_files(table, self._records(table, "quarantine", as_of))

    def data_sha256(self, table: str, *, as_of: int | None = None) -> str:
        """The old reader's ``data_sha256`` (file list and sha256s), bit for bit."""
        records = sorted((f["path"], f["sha256"]) for f in self._records(table, "data", as_of))
        h = hashlib.sha256()
        h.update(f"1\n{table}\n".encode())
        for path, digest in records:
            h.update(f"{path}\t{digest}\n".encode())
        return h.hexdigest()

    def verify(self) -> list[str]:
        """Every committed file present with its recorded sha256; the problems found."""
        problems = []
        for e in self.log():
            for f in e.files:
                p = self.root / f["path"]
                if not p.is_file():
                    problems.append(f"entry {e.seq}: missing file {f['path']}")
                elif sha256_file(p) != f["sha256"]:
                    problems.append(f"entry {e.seq}: sha256 mismatch for {f['path']}")
        return problems
