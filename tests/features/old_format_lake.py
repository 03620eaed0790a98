"""FROZEN TEST FIXTURE: the home-made lake exactly as it was before the move to Delta tables (commit 75a57fc).

It writes lakes in the old format so the migration tests (``test_lake_migration.py``) start from
real old-format lakes, produced by the real old writer through the current ``ingest``. Not used by
the engine: the engine reads the old format only through :mod:`features.data.legacy_lake`.

A Parquet data lake with an atomic, append-only commit log.

Layout under the lake directory ``DIR``::

    DIR/<table>/date=YYYY-MM-DD/<uuid>.parquet      accepted rows, partitioned by the UTC
                                                    date of the contract's ``partition_by``
    DIR/<table>/all/<uuid>.parquet                  unpartitioned tables (ports)
    DIR/_quarantine/<table>/date=YYYY-MM-DD/<uuid>.parquet
                                                    rejected raw rows (ingest date, UTC)
    DIR/_log/<seq:08d>.json                         one commit per ingest

Commit protocol (:meth:`Lake.commit`):

1. every data and quarantine file is written under a temporary name in its
   final directory, fsynced, then renamed (``os.replace``) to a fresh
   ``<uuid>.parquet`` name, and the directory is fsynced;
2. the log entry (tables, sources with sha256, files with sha256 and row
   counts, counts per reason) is written to a temporary file in ``_log`` and
   fsynced; the next sequence number is claimed with ``os.link(tmp, final)``,
   which fails when the name exists (another writer won it): the writer then
   tries the next number;
3. ``_log`` is fsynced.

Readers only ever see files listed by committed log entries, so a crash at
any point (even ``kill -9``) before step 2 completes leaves the visible lake
exactly as it was; the orphan files are ignored and removed by
:meth:`Lake.vacuum`. Writers in several processes serialise their
read-check-write cycle with :meth:`Lake.locked` (an advisory ``flock``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from features import clock
from features.data.contracts import TableContract, contract
from features.data.schemas import validate_accepted
from features.data.validation import REASONS_COLUMN, ROW_COLUMN, reason_counts

__all__ = [
    "FILE_COLUMN",
    "LOG_FORMAT",
    "Lake",
    "LakeError",
    "LogEntry",
    "quarantine_schema",
    "sha256_file",
]

LOG_FORMAT = 1
"""Version of the log entry layout."""
FILE_COLUMN = "__file"
"""Quarantine column: name of the source file of a rejected row."""

_LOG_DIR = "_log"
_QUARANTINE_DIR = "_quarantine"
_LOG_NAME = re.compile(r"^([0-9]{8})\.json$")
_LOCK_NAME = ".lock"


class LakeError(RuntimeError):
    """The lake on disk is inconsistent (e.g. a committed file is missing or altered)."""


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs_durable(path: Path) -> None:
    """Create ``path`` and missing parents, fsyncing each parent so the new entries survive a power loss."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        _fsync_dir(d.parent)


def quarantine_schema(table: str) -> pl.Schema:
    """Minimal schema of quarantined rows: contract columns as String plus metadata columns.

    Quarantine files also keep any extra raw columns of their source files.
    """
    c = contract(table)
    return pl.Schema(
        {
            FILE_COLUMN: pl.String(),
            ROW_COLUMN: pl.Int64(),
            **{n: pl.String() for n in c.column_names},
            REASONS_COLUMN: pl.List(pl.String()),
        }
    )


@dataclass(frozen=True)
class LogEntry:
    """A committed log entry.

    Attributes
    ----------
    seq
        Sequence number (1, 2, ...), from the file name ``_log/<seq:08d>.json``.
    table
        Table the ingest wrote.
    committed_at
        ISO 8601 UTC time of the commit.
    sources
        Input files: ``{"path", "name", "sha256", "rows"}`` dicts.
    files
        Files added: ``{"path" (relative to the lake), "kind" ("data" or
        "quarantine"), "partition", "rows", "sha256"}`` dicts.
    summary
        Counts given by the writer (accepted, unchanged, quarantined, reasons, ...).
    """

    seq: int
    table: str
    committed_at: str
    sources: tuple[dict[str, Any], ...]
    files: tuple[dict[str, Any], ...]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the stored entry plus ``seq``)."""
        return {
            "seq": self.seq,
            "format": LOG_FORMAT,
            "table": self.table,
            "committed_at": self.committed_at,
            "sources": list(self.sources),
            "files": list(self.files),
            "summary": self.summary,
        }


class Lake:
    """A Parquet data lake at ``path`` (created on first write).

    Parameters
    ----------
    path
        Lake directory.

    Examples
    --------
    >>> lake = Lake("/tmp/lake")                       # doctest: +SKIP
    >>> lake.scan("manifests").collect().height        # doctest: +SKIP
    0
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.root = Path(path)
        self._entries: dict[str, LogEntry] = {}
        self._lock_fd: int | None = None
        self._lock_depth = 0

    def __repr__(self) -> str:
        return f"Lake({str(self.root)!r})"

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lake's exclusive writer lock (re-entrant within this object).

        Ingest holds it across its read-dedup-commit cycle; :meth:`vacuum`
        holds it so it never removes the files of a commit in progress. The
        lock is released by the OS if the process dies.
        """
        if self._lock_depth == 0:
            log_dir = self.root / _LOG_DIR
            log_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(log_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._lock_fd = fd
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    # ------------------------------------------------------------------ log

    def _log_names(self) -> list[tuple[int, str]]:
        log_dir = self.root / _LOG_DIR
        if not log_dir.is_dir():
            return []
        names = []
        for name in os.listdir(log_dir):
            m = _LOG_NAME.match(name)
            if m:
                names.append((int(m.group(1)), name))
        return sorted(names)

    def log(self) -> list[LogEntry]:
        """Committed log entries in sequence order (entries are immutable and cached)."""
        out = []
        for seq, name in self._log_names():
            entry = self._entries.get(name)
            if entry is None:
                with open(self.root / _LOG_DIR / name, encoding="utf-8") as fh:
                    raw = json.load(fh)
                entry = LogEntry(
                    seq=seq,
                    table=raw["table"],
                    committed_at=raw["committed_at"],
                    sources=tuple(raw["sources"]),
                    files=tuple(raw["files"]),
                    summary=raw["summary"],
                )
                self._entries[name] = entry
            out.append(entry)
        return out

    def _file_records(self, table: str, kind: str, as_of: int | None = None) -> list[dict[str, Any]]:
        contract(table)
        return [
            f
            for e in self.log()
            if e.table == table and (as_of is None or e.seq <= as_of)
            for f in e.files
            if f["kind"] == kind
        ]

    def files(self, table: str, *, as_of: int | None = None) -> list[Path]:
        """Committed data files of ``table`` (absolute paths, commit order).

        Parameters
        ----------
        as_of
            Only entries with ``seq <= as_of`` (the lake as it was then).
        """
        return [self.root / f["path"] for f in self._file_records(table, "data", as_of)]

    def quarantine_files(self, table: str, *, as_of: int | None = None) -> list[Path]:
        """Committed quarantine files of ``table`` (absolute paths, commit order)."""
        return [self.root / f["path"] for f in self._file_records(table, "quarantine", as_of)]

    # ------------------------------------------------------------------ read

    def scan(self, table: str, *, as_of: int | None = None) -> pl.LazyFrame:
        """Lazy frame of the committed rows of ``table`` with exactly the contract schema.

        An empty frame with the contract schema when nothing was committed.
        Columns added to the contract after a file was written read as null.
        """
        c = contract(table)
        files = self.files(table, as_of=as_of)
        if not files:
            return pl.LazyFrame(schema=c.schema)
        return pl.scan_parquet(
            [str(f) for f in files],
            schema=dict(c.schema),
            missing_columns="insert",
            extra_columns="ignore",
        ).select(c.column_names)

    def scan_quarantine(self, table: str, *, as_of: int | None = None) -> pl.LazyFrame:
        """Lazy frame of the quarantined raw rows of ``table``.

        Columns: ``__file``, ``__row``, the contract columns (String), any
        extra raw columns seen in a quarantined file, then ``reasons``.
        """
        files = self.quarantine_files(table, as_of=as_of)
        schema: dict[str, pl.DataType] = dict(quarantine_schema(table))
        reasons = schema.pop(REASONS_COLUMN)
        for f in files:
            for name, dtype in pl.read_parquet_schema(f).items():
                schema.setdefault(name, dtype)
        schema[REASONS_COLUMN] = reasons
        if not files:
            return pl.LazyFrame(schema=schema)
        return pl.scan_parquet(
            [str(f) for f in files], schema=schema, missing_columns="insert", extra_columns="ignore"
        ).select(list(schema))

    def key_index(self, table: str) -> pl.LazyFrame:
        """Lazy frame of the key columns of every committed row of ``table``."""
        return self.scan(table).select(list(contract(table).key))

    def data_sha256(self, table: str, *, as_of: int | None = None) -> str:
        """Stable hash of the committed data of ``table``: its file list and their sha256s.

        Two lakes (or two points in time) with the same value serve the same
        rows. Audit records store it to prove which input data a list used.
        """
        records = sorted((f["path"], f["sha256"]) for f in self._file_records(table, "data", as_of))
        h = hashlib.sha256()
        h.update(f"{LOG_FORMAT}\n{table}\n".encode())
        for path, digest in records:
            h.update(f"{path}\t{digest}\n".encode())
        return h.hexdigest()

    def last_seq(self) -> int:
        """Sequence number of the last committed entry (0 for an empty lake)."""
        names = self._log_names()
        return names[-1][0] if names else 0

    def verify(self) -> list[str]:
        """Check that every committed file exists with its recorded sha256; list the problems."""
        problems = []
        for e in self.log():
            for f in e.files:
                p = self.root / f["path"]
                if not p.is_file():
                    problems.append(f"entry {e.seq}: missing file {f['path']}")
                elif sha256_file(p) != f["sha256"]:
                    problems.append(f"entry {e.seq}: sha256 mismatch for {f['path']}")
        return problems

    # ------------------------------------------------------------------ write

    def _write_parquet(self, df: pl.DataFrame, directory: Path) -> dict[str, Any]:
        """Write ``df`` atomically under a fresh unique name in ``directory``."""
        _makedirs_durable(directory)
        name = f"{uuid.uuid4().hex}.parquet"
        tmp = directory / f".{name}.tmp"
        final = directory / name
        df.write_parquet(tmp, statistics=True)
        _fsync_file(tmp)
        digest = sha256_file(tmp)
        os.replace(tmp, final)
        _fsync_dir(directory)
        return {
            "path": final.relative_to(self.root).as_posix(),
            "rows": df.height,
            "sha256": digest,
        }

    def _write_data(self, c: TableContract, accepted: pl.DataFrame) -> list[dict[str, Any]]:
        if accepted.height == 0:
            return []
        base = self.root / c.name
        if c.partition_by is None:
            rec = self._write_parquet(accepted, base / "all")
            return [{**rec, "kind": "data", "partition": None}]
        part = "__ccp_partition"
        keyed = accepted.with_columns(pl.col(c.partition_by).dt.date().dt.to_string("%Y-%m-%d").alias(part))
        out = []
        for (date,), frame in sorted(keyed.partition_by(part, as_dict=True, maintain_order=True).items()):
            rec = self._write_parquet(frame.drop(part), base / f"date={date}")
            out.append({**rec, "kind": "data", "partition": date})
        return out

    def _write_quarantine(self, table: str, rejected: pl.DataFrame, now: dt.datetime) -> list[dict[str, Any]]:
        if rejected.height == 0:
            return []
        date = now.astimezone(dt.timezone.utc).strftime("%Y-%m-%d")
        rec = self._write_parquet(rejected, self.root / _QUARANTINE_DIR / table / f"date={date}")
        return [{**rec, "kind": "quarantine", "partition": date}]

    def _append_log(self, body: dict[str, Any]) -> int:
        """Claim the next sequence number for ``body``; return it."""
        log_dir = self.root / _LOG_DIR
        _makedirs_durable(log_dir)
        tmp = log_dir / f".{uuid.uuid4().hex}.json.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(body, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            seq = self.last_seq() + 1
            while True:
                try:
                    os.link(tmp, log_dir / f"{seq:08d}.json")
                    break
                except FileExistsError:
                    seq += 1
            _fsync_dir(log_dir)
        finally:
            tmp.unlink(missing_ok=True)
        return seq

    def commit(
        self,
        table: str,
        accepted: pl.DataFrame,
        rejected: pl.DataFrame,
        sources: Sequence[Mapping[str, Any]],
        summary: Mapping[str, Any],
        *,
        now: dt.datetime | None = None,
    ) -> LogEntry:
        """Atomically add accepted and quarantined rows of one ingest, with its log entry.

        Parameters
        ----------
        table
            Contract name.
        accepted
            New rows, exactly on contract (checked by
            :func:`features.data.schemas.validate_accepted` before anything is
            written); may be empty.
        rejected
            Quarantined raw rows (String columns, ``__row``, ``reasons``); may be empty.
        sources
            Input files, e.g. ``{"path", "name", "sha256", "rows"}``.
        summary
            JSON-serialisable counts (stored as is; ``reasons`` of the
            rejected frame added when absent).
        now
            Commit time (UTC date of the quarantine partition); default: the clock.

        Returns
        -------
        LogEntry
            The committed entry. An entry is written even when no file is
            added, so every ingest leaves a trace.

        Raises
        ------
        features.data.schemas.ContractViolation
            If ``accepted`` is off-contract (nothing is written).
        """
        c = contract(table)
        validate_accepted(table, accepted)
        if REASONS_COLUMN not in rejected.columns and rejected.height:
            raise ValueError(f"rejected rows need a {REASONS_COLUMN!r} column")
        now = now or clock.now()
        committed_at = now.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        summary = dict(summary)
        summary.setdefault("reasons", reason_counts(rejected))
        with self.locked():
            files = self._write_data(c, accepted) + self._write_quarantine(table, rejected, now)
            body = {
                "format": LOG_FORMAT,
                "table": table,
                "committed_at": committed_at,
                "sources": [dict(s) for s in sources],
                "files": files,
                "summary": summary,
            }
            seq = self._append_log(body)
        return LogEntry(
            seq=seq,
            table=table,
            committed_at=committed_at,
            sources=tuple(body["sources"]),
            files=tuple(files),
            summary=summary,
        )

    # ------------------------------------------------------------------ maintenance

    def vacuum(self) -> list[Path]:
        """Delete files no committed entry lists (orphans of crashed writes); return them.

        Holds the writer lock, so files of a commit in progress are never removed.
        """
        removed: list[Path] = []
        with self.locked():
            referenced = {self.root / f["path"] for e in self.log() for f in e.files}
            roots = [self.root / name for name in (*_table_dirs(), _QUARANTINE_DIR)]
            for top in roots:
                if not top.is_dir():
                    continue
                for dirpath, _dirnames, filenames in os.walk(top, topdown=False):
                    d = Path(dirpath)
                    for name in filenames:
                        p = d / name
                        if p not in referenced and (name.endswith(".parquet") or name.endswith(".tmp")):
                            p.unlink()
                            removed.append(p)
                    if d != top and not any(d.iterdir()):
                        d.rmdir()
            log_dir = self.root / _LOG_DIR
            if log_dir.is_dir():
                for name in os.listdir(log_dir):
                    if name.endswith(".tmp"):
                        (log_dir / name).unlink()
                        removed.append(log_dir / name)
        return sorted(removed)


def _table_dirs() -> list[str]:
    from features.data.contracts import CONTRACTS

    return list(CONTRACTS)
