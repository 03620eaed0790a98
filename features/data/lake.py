"""The lake: one Delta Lake table per contract table, tied together by a lake log written last.

Layout under the lake directory ``DIR``::

    DIR/<table>/                    Delta table of the accepted rows (contract columns plus
                                    ``partition_date``, the UTC date of the contract's
                                    ``partition_by``, as its partition column; ``ports`` unpartitioned)
    DIR/_quarantine/<table>/        Delta table of the quarantined raw rows: ``__file``, ``__row``,
                                    the contract columns as text, ``__extra`` (the file's other
                                    columns as a JSON object) and ``reasons``
    DIR/_lake_log/<seq:08d>.json    the lake log: one entry per ingest

Any Delta reader (Polars ``scan_delta``, ``deltalake``/PyArrow, Spark, DuckDB,
Dask through :meth:`Lake.active_files`) reads the tables directly.

Why a lake log on top of Delta. One ingest writes two Delta tables (its
accepted rows and its quarantined rows) and a Delta commit is atomic for one
table only. The lake log entry of an ingest is written *last* and names, for
every table, the Delta version that belongs to the lake after it (with the
files each commit added, their sha256 and rows, and each table's
``data_sha256``). Commit protocol (:meth:`Lake.commit`), under the writer lock
(an advisory ``flock``):

0. *recover*: a table whose latest Delta version holds other files than the
   version the last entry names carries the commits of a killed ingest; they
   are rolled back (``DeltaTable.restore`` to the named version: a new Delta
   version with the old content). Only commits the lake wrote (commit metadata
   ``ccp.batch`` of a batch no entry names) are rolled back; any other change
   is refused with :class:`LakeError`;
1. the accepted rows are appended to ``DIR/<table>`` (one Delta commit, with
   the ingest's batch id in its ``custom_metadata``);
2. the quarantined rows are appended to ``DIR/_quarantine/<table>`` (one
   Delta commit, same batch id);
3. the data files and the Delta commit files are fsynced (delta-rs does not
   fsync local files), then the entry is written to a temporary file, fsynced, and the next sequence
   number is claimed with ``os.link(tmp, final)`` (fails if taken: the writer
   tries the next one); ``_lake_log`` is fsynced.

Readers (:meth:`scan`, :meth:`files`, :meth:`data_sha256`, ...) read every table
at the version the last entry (or the entry ``as_of``) names, never "the latest
Delta version". So a ``kill -9`` anywhere before step 3 (inside a Parquet
write, between the two Delta commits, before the entry) leaves every read
exactly as it was, and no batch is ever half visible: the next writer, or
:meth:`vacuum`, rolls the orphan commits back, after which external engines
reading the latest version see the same rows too; :meth:`vacuum` also removes
the orphan Parquet files. Re-running the interrupted ingest then writes it
whole. An ingest that adds nothing (the same file again) writes no Delta
commit and no entry: no new version at all.

Time travel: ``as_of=<seq>`` reads the tables at the versions entry ``seq``
names; :meth:`seq_at` gives the entry in force at a timestamp (entries'
``committed_at``, the project clock at commit). Each table's own Delta
versions and commit timestamps also work directly
(``DeltaTable(uri, version=v)``, ``load_as_version(datetime)``). A served list
records :meth:`versions` of the entry it read and replays from them.
Expired-log clean-up is off on every table, so old versions stay readable;
:meth:`vacuum` keeps every version an entry names.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import polars as pl
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake

from features import clock
from features.data.contracts import TableContract, contract
from features.data.lake_format import (  # noqa: I001 - grouped by kind: constants, types, functions
    BATCH_KEY, COMMIT_HOOKS, EXTRA_COLUMN, FILE_COLUMN, LOCK_NAME, LOG_DIR, LOG_FORMAT, LOG_NAME, PARTITION_COLUMN, TABLE_CONFIGURATION,
    LakeError, LegacyLakeError, LogEntry,
    data_digest, fsync_all, fsync_dir, quarantine_frame, quarantine_key, quarantine_schema,
)
from features.data.legacy_lake import is_legacy_lake, sha256_file
from features.data.schemas import validate_accepted
from features.data.validation import REASONS_COLUMN, reason_counts

__all__ = [
    "BATCH_KEY",
    "EXTRA_COLUMN",
    "FILE_COLUMN",
    "LOG_FORMAT",
    "PARTITION_COLUMN",
    "Lake",
    "LakeError",
    "LegacyLakeError",
    "LogEntry",
    "quarantine_key",
    "quarantine_schema",
    "sha256_file",
]


class Lake:
    """A lake of Delta tables at ``path`` (created on first write).

    Parameters
    ----------
    path
        Lake directory. A directory in the old home-made format raises
        :class:`LegacyLakeError` on first read (``targeting lake migrate``).

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
            self._check_format()
            log_dir = self.root / LOG_DIR
            log_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(log_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
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

    def _check_format(self) -> None:
        if is_legacy_lake(self.root):
            raise LegacyLakeError(
                f"{self.root} is a lake in the old format (_log/ of Parquet files): migrate it once with "
                f"'targeting lake migrate --from {self.root} --to NEW_DIR' (or 'targeting lake migrate --in-place {self.root}')"
            )

    def _log_names(self) -> list[tuple[int, str]]:
        log_dir = self.root / LOG_DIR
        if not log_dir.is_dir():
            self._check_format()
            return []
        return sorted((int(m.group(1)), name) for name in os.listdir(log_dir) if (m := LOG_NAME.match(name)))

    def log(self) -> list[LogEntry]:
        """Committed entries in sequence order (entries are immutable and cached)."""
        out = []
        for seq, name in self._log_names():
            entry = self._entries.get(name)
            if entry is None:
                with open(self.root / LOG_DIR / name, encoding="utf-8") as fh:
                    raw = json.load(fh)
                if raw.get("format") != LOG_FORMAT:
                    raise LakeError(f"{self.root / LOG_DIR / name}: unknown lake log format {raw.get('format')!r}")
                entry = LogEntry(
                    seq=seq,
                    table=raw["table"],
                    committed_at=raw["committed_at"],
                    sources=tuple(raw["sources"]),
                    files=tuple(raw["files"]),
                    summary=raw["summary"],
                    batch=raw["batch"],
                    tables=raw["tables"],
                )
                self._entries[name] = entry
            out.append(entry)
        return out

    def last_seq(self) -> int:
        """Sequence number of the last committed entry (0 for an empty lake)."""
        names = self._log_names()
        return names[-1][0] if names else 0

    def _state(self, as_of: int | None) -> dict[str, dict[str, Any]]:
        """``tables`` of the last entry with ``seq <= as_of`` (the latest when ``None``); ``{}`` before any."""
        entries = self.log()
        if as_of is not None:
            entries = [e for e in entries if e.seq <= as_of]
        return entries[-1].tables if entries else {}

    def versions(self, *, as_of: int | None = None) -> dict[str, int]:
        """Delta version of every table in the lake as of entry ``as_of`` (default: the latest).

        Keys are table names and ``_quarantine/<table>``; a table never
        written is absent (it reads empty). This is what a served list records.
        """
        return {key: int(s["version"]) for key, s in sorted(self._state(as_of).items())}

    def seq_at(self, when: dt.datetime) -> int:
        """The entry in force at ``when``: the last one whose ``committed_at`` is at or before it (0: none).

        ``when`` must be timezone-aware.
        """
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("when must be timezone-aware")
        seq = 0
        for e in self.log():
            if dt.datetime.fromisoformat(e.committed_at.replace("Z", "+00:00")) <= when:
                seq = e.seq
        return seq

    def table_uri(self, table: str, *, quarantine: bool = False) -> str:
        """Path of ``table``'s Delta table (its quarantine's with ``quarantine=True``), for any Delta reader."""
        contract(table)
        return str(self.root / (quarantine_key(table) if quarantine else table))

    def table_version(self, table: str, *, as_of: int | None = None, quarantine: bool = False) -> int | None:
        """Delta version of ``table`` the lake names as of entry ``as_of``; ``None`` when never written."""
        contract(table)
        state = self._state(as_of).get(quarantine_key(table) if quarantine else table)
        return None if state is None else int(state["version"])

    def delta_table(self, table: str, *, as_of: int | None = None, quarantine: bool = False) -> DeltaTable | None:
        """``deltalake.DeltaTable`` of ``table`` loaded at the version the lake names; ``None`` when never written."""
        version = self.table_version(table, as_of=as_of, quarantine=quarantine)
        return None if version is None else DeltaTable(self.table_uri(table, quarantine=quarantine), version=version)

    def active_files(self, table: str, *, as_of: int | None = None, quarantine: bool = False) -> list[Path]:
        """Parquet files of ``table`` at the version the lake names (absolute paths, Delta's order).

        What ``dask.dataframe.read_parquet`` or ``pyarrow.dataset`` need to read
        the table as the lake sees it (``partition_date`` is not in the files:
        it is in their directory names).
        """
        table_dt = self.delta_table(table, as_of=as_of, quarantine=quarantine)
        return [] if table_dt is None else [Path(unquote(u.removeprefix("file://"))) for u in table_dt.file_uris()]

    def files(self, table: str, *, as_of: int | None = None) -> list[Path]:
        """Committed data files of ``table`` (:meth:`active_files`)."""
        return self.active_files(table, as_of=as_of)

    def quarantine_files(self, table: str, *, as_of: int | None = None) -> list[Path]:
        """Committed quarantine files of ``table``."""
        return self.active_files(table, as_of=as_of, quarantine=True)

    # ------------------------------------------------------------------ read

    def scan(self, table: str, *, as_of: int | None = None, at: dt.datetime | None = None) -> pl.LazyFrame:
        """Lazy frame of the committed rows of ``table`` with exactly the contract schema.

        Parameters
        ----------
        as_of
            Lake log entry: the table at the Delta version it names (default:
            the last entry).
        at
            Instead of ``as_of``: the entry in force at this timezone-aware
            time (:meth:`seq_at`).

        An empty frame with the contract schema when nothing was committed.
        Columns added to the contract after a version was written read as null.
        """
        c = contract(table)
        if at is not None:
            if as_of is not None:
                raise ValueError("give as_of or at, not both")
            as_of = self.seq_at(at)
        version = self.table_version(table, as_of=as_of)
        if version is None:
            return pl.LazyFrame(schema=c.schema)
        lf = pl.scan_delta(self.table_uri(table), version=version)
        have = set(lf.collect_schema().names())
        return lf.select([pl.col(n) if n in have else pl.lit(None, dtype).alias(n) for n, dtype in c.schema.items()])

    def scan_quarantine(self, table: str, *, as_of: int | None = None) -> pl.LazyFrame:
        """Lazy frame of the quarantined raw rows of ``table``.

        Columns: ``__file``, ``__row``, the contract columns (String), any
        extra raw columns seen in a quarantined file (String), then ``reasons``;
        rows ordered by source file, then source row.
        """
        schema = dict(quarantine_schema(table))
        del schema[EXTRA_COLUMN]
        version = self.table_version(table, as_of=as_of, quarantine=True)
        if version is None:
            return pl.LazyFrame(schema=schema)
        lf = pl.scan_delta(self.table_uri(table, quarantine=True), version=version)
        packed = lf.select(EXTRA_COLUMN).drop_nulls().unique().collect().to_series().to_list()
        extras = list(dict.fromkeys(k for text in sorted(packed) for k in json.loads(text)))
        extra_type = pl.Struct({n: pl.String for n in extras})
        decoded = [pl.col(EXTRA_COLUMN).str.json_decode(extra_type).struct.field(n).alias(n) for n in extras]
        names = [n for n in schema if n != REASONS_COLUMN]
        # a Delta scan has no row order: source file, then source row, is the order users read them in
        ordered = lf.sort("__file", "__row", maintain_order=True, nulls_last=True)
        return ordered.select([*map(pl.col, names), *decoded, pl.col(REASONS_COLUMN)])

    def key_index(self, table: str) -> pl.LazyFrame:
        """Lazy frame of the key columns of every committed row of ``table``."""
        return self.scan(table).select(list(contract(table).key))

    def data_sha256(self, table: str, *, as_of: int | None = None) -> str:
        """Stable hash of the committed data of ``table``: its file list and their sha256s.

        Recorded in each entry when the table is written (a migrated lake
        keeps the old lake's values). Two lakes (or two points in time) with
        the same value serve the same rows. Audit records store it to prove
        which input data a list used.
        """
        contract(table)
        state = self._state(as_of).get(table)
        return data_digest(table, []) if state is None else state["data_sha256"]

    def verify(self) -> list[str]:
        """Tamper check: every file the lake log recorded exists with its sha256, and each table's
        Delta version named by the last entry lists exactly the files the lake log recorded for it.

        Returns the problems found (empty when the lake is sound).
        """
        problems: list[str] = []
        recorded: dict[str, set[Path]] = {}
        entries = self.log()
        for e in entries:
            for f in e.files:
                p = self.root / f["path"]
                recorded.setdefault(e.table if f["kind"] == "data" else quarantine_key(e.table), set()).add(p)
                if not p.is_file():
                    problems.append(f"entry {e.seq}: missing file {f['path']}")
                elif sha256_file(p) != f["sha256"]:
                    problems.append(f"entry {e.seq}: sha256 mismatch for {f['path']}")
        for key, state in (entries[-1].tables if entries else {}).items():
            try:
                table_dt = DeltaTable(self.root / key, version=int(state["version"]))
                active = {Path(unquote(u.removeprefix("file://"))) for u in table_dt.file_uris()}
            except Exception as exc:  # noqa: BLE001 - any unreadable Delta log is a problem to report
                problems.append(f"{key}: Delta version {state['version']} unreadable: {exc}")
                continue
            expected = recorded.get(key, set())
            for p in sorted(active - expected):
                problems.append(f"{key}: Delta version {state['version']} lists {p.relative_to(self.root)}, which the lake log never recorded")
            for p in sorted(expected - active):
                problems.append(f"{key}: Delta version {state['version']} lacks {p.relative_to(self.root)}, recorded by the lake log")
            latest = DeltaTable(self.root / key)
            if latest.version() != table_dt.version() and {Path(unquote(u.removeprefix("file://"))) for u in latest.file_uris()} != active:
                problems.append(f"{key}: the latest Delta version holds files not named by the lake log (an unfinished ingest, or a writer outside the lake)")
        return problems

    # ------------------------------------------------------------------ write

    def _recover(self, key: str) -> bool:
        """Roll back commits of ``key`` that no entry names (a killed ingest); whether it did.

        Raises :class:`LakeError` when such a commit was not written by the
        lake (no ``ccp.batch`` of an unnamed batch): the lake never discards it.
        """
        uri = self.root / key
        if not (uri / "_delta_log").is_dir():
            return False
        state = self._state(None).get(key)
        target = int(state["version"]) if state else 0
        table_dt = DeltaTable(uri)
        latest = table_dt.version()
        if latest == target:
            return False
        then = DeltaTable(uri, version=target)
        if set(table_dt.file_uris()) == set(then.file_uris()) and table_dt.schema() == then.schema():
            return False  # only maintenance commits (vacuum, an earlier roll-back) since
        named = {e.batch for e in self.log()}
        for commit in table_dt.history(latest - target):
            batch = commit.get(BATCH_KEY)
            if commit["operation"] in ("WRITE", "CREATE TABLE") and (batch is None or batch in named):
                raise LakeError(f"{key}: Delta version {commit['version']} was not written by an unfinished ingest of this lake; refusing to roll it back")
        table_dt.restore(target, commit_properties=CommitProperties(custom_metadata={"ccp.rollback_to": str(target)}), post_commithook_properties=COMMIT_HOOKS)
        return True

    def _append(self, key: str, frame: pl.DataFrame, batch: str, *, partition_by: list[str] | None, kind: str) -> tuple[int, list[dict[str, Any]]]:
        """Append ``frame`` to the Delta table ``key`` in one commit; (new version, records of the files added)."""
        uri = self.root / key
        metadata = CommitProperties(custom_metadata={BATCH_KEY: batch, "ccp.table": key})
        if not (uri / "_delta_log").is_dir():
            DeltaTable.create(
                uri, pl.DataFrame(schema=frame.schema).to_arrow(compat_level=pl.CompatLevel.oldest()).schema, mode="ignore", partition_by=partition_by,
                configuration=TABLE_CONFIGURATION, commit_properties=metadata, post_commithook_properties=COMMIT_HOOKS,
            )
        write_deltalake(  # classic Arrow types (no string views) so every Parquet reader, pandas and Dask included, reads the files
            uri, frame.to_arrow(compat_level=pl.CompatLevel.oldest()), mode="append", partition_by=partition_by, schema_mode="merge",
            commit_properties=metadata, post_commithook_properties=COMMIT_HOOKS, writer_properties=WriterProperties(compression="ZSTD"),
        )
        table_dt = DeltaTable(uri)
        version = table_dt.version()
        if table_dt.history(1)[0].get(BATCH_KEY) != batch:
            raise LakeError(f"{key}: Delta version {version} is not this ingest's commit (another writer outside the lake lock?)")
        records = []
        with open(uri / "_delta_log" / f"{version:020d}.json", encoding="utf-8") as fh:
            for line in fh:
                add = json.loads(line).get("add")
                if add is None:
                    continue
                rel = unquote(add["path"])
                records.append({
                    "path": f"{key}/{rel}",
                    "kind": kind,
                    "partition": (add.get("partitionValues") or {}).get(PARTITION_COLUMN),
                    "rows": json.loads(add["stats"])["numRecords"] if add.get("stats") else None,
                    "sha256": sha256_file(uri / rel),
                })
        # Durable before the lake log names it (delta-rs does not fsync local files): data, then the commit.
        fsync_all([self.root / r["path"] for r in records] + [uri / "_delta_log" / f"{version:020d}.json"])
        return version, sorted(records, key=lambda r: r["path"])

    def _append_log(self, body: dict[str, Any], *, seq: int | None = None) -> int:
        """Claim the next sequence number (exactly ``seq`` when given) for ``body``; return it."""
        log_dir = self.root / LOG_DIR
        log_dir.mkdir(parents=True, exist_ok=True)
        tmp = log_dir / f".{uuid.uuid4().hex}.json.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(body, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            claim = seq if seq is not None else self.last_seq() + 1
            while True:
                try:
                    os.link(tmp, log_dir / f"{claim:08d}.json")
                    break
                except FileExistsError:
                    if seq is not None:
                        raise LakeError(f"lake log entry {seq} already exists") from None
                    claim += 1
            fsync_dir(log_dir)
        finally:
            tmp.unlink(missing_ok=True)
        return claim

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
        """Atomically add accepted and quarantined rows of one ingest, with its lake log entry.

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
            Commit time (``committed_at``); default: the clock.

        Returns
        -------
        LogEntry
            The committed entry. An entry is written even when no row is
            added (no Delta commit then), so every call leaves a trace.

        Raises
        ------
        features.data.schemas.ContractViolation
            If ``accepted`` is off-contract (nothing is written).
        """
        validate_accepted(table, accepted)
        if REASONS_COLUMN not in rejected.columns and rejected.height:
            raise ValueError(f"rejected rows need a {REASONS_COLUMN!r} column")
        now = now or clock.now()
        committed_at = now.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
        summary = dict(summary)
        summary.setdefault("reasons", reason_counts(rejected))
        with self.locked():
            return self.commit_locked(table, accepted, rejected, sources, summary, committed_at=committed_at)

    def commit_locked(
        self,
        table: str,
        accepted: pl.DataFrame,
        rejected: pl.DataFrame,
        sources: Sequence[Mapping[str, Any]],
        summary: Mapping[str, Any],
        *,
        committed_at: str,
        seq: int | None = None,
        digests: Mapping[str, str] | None = None,
    ) -> LogEntry:
        """:meth:`commit` for a caller holding :meth:`locked`, without contract checks.

        ``seq`` claims exactly that entry number and ``digests`` sets the
        ``data_sha256`` of the tables it names (migration carries the old
        lake's numbering and digests); otherwise they are derived.
        """
        c: TableContract = contract(table)
        qkey = quarantine_key(table)
        for key in (table, qkey):
            self._recover(key)
        tables = {k: dict(v) for k, v in self._state(None).items()}
        batch = uuid.uuid4().hex
        files: list[dict[str, Any]] = []
        if accepted.height:
            frame = accepted.select(c.column_names)
            partition = None
            if c.partition_by is not None:
                frame = frame.with_columns(pl.col(c.partition_by).dt.convert_time_zone("UTC").dt.date().alias(PARTITION_COLUMN))
                partition = [PARTITION_COLUMN]
            version, added = self._append(table, frame, batch, partition_by=partition, kind="data")
            files += added
            previous = [(f["path"], f["sha256"]) for e in self.log() if e.table == table for f in e.files if f["kind"] == "data"]
            tables[table] = {"version": version, "data_sha256": data_digest(table, previous + [(f["path"], f["sha256"]) for f in added])}
        if rejected.height:
            version, added = self._append(qkey, quarantine_frame(table, rejected), batch, partition_by=None, kind="quarantine")
            files += added
            tables[qkey] = {"version": version, "data_sha256": data_digest(qkey, [(f["path"], f["sha256"]) for e in self.log() if e.table == table for f in e.files if f["kind"] == "quarantine"] + [(f["path"], f["sha256"]) for f in added])}
        for key, value in (digests or {}).items():
            if key in tables:
                tables[key]["data_sha256"] = value
        body = {
            "format": LOG_FORMAT,
            "table": table,
            "committed_at": committed_at,
            "batch": batch,
            "sources": [dict(s) for s in sources],
            "files": files,
            "summary": dict(summary),
            "tables": tables,
        }
        claimed = self._append_log(body, seq=seq)
        return LogEntry(claimed, table, committed_at, tuple(body["sources"]), tuple(files), body["summary"], batch, tables)

    # ------------------------------------------------------------------ maintenance

    def _table_keys(self) -> list[str]:
        from features.data.contracts import CONTRACTS

        keys = [k for t in CONTRACTS for k in (t, quarantine_key(t))]
        return [k for k in keys if (self.root / k / "_delta_log").is_dir()]

    def vacuum(self) -> list[Path]:
        """Roll back unfinished ingests, then delete every file no named version needs; return them.

        Runs Delta's ``vacuum`` (full, zero retention) on every table, keeping
        every version a lake log entry names, so time travel to any entry
        still works. Holds the writer lock, so files of a commit in progress
        are never removed.
        """
        removed: list[Path] = []
        with self.locked():
            entries = self.log()
            for key in self._table_keys():
                self._recover(key)
                keep = sorted({int(e.tables[key]["version"]) for e in entries if key in e.tables})
                gone = DeltaTable(self.root / key).vacuum(
                    retention_hours=0, dry_run=False, enforce_retention_duration=False, full=True,
                    keep_versions=keep or None, post_commithook_properties=COMMIT_HOOKS,
                )
                removed += [self.root / key / unquote(g) for g in gone]
            log_dir = self.root / LOG_DIR
            for name in os.listdir(log_dir):
                if name.endswith(".tmp"):
                    (log_dir / name).unlink()
                    removed.append(log_dir / name)
        return sorted(removed)
