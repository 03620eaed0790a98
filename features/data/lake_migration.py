"""One-command migration of an old-format lake (Parquet commit log) to Delta tables, proven row for row.

Every old log entry becomes one new lake log entry with the same sequence
number, ``committed_at``, sources and summary (plus ``migrated_from``: the old
entry's number and sha256), its rows appended as one Delta commit per table,
and each table's ``data_sha256`` carried over from the old lake. Lists served
before the migration record the old sequence numbers and ``data_sha256``
values, so their replays read the same rows and reproduce their records byte
for byte.

The copy is then checked per table, data and quarantine: row counts and a
content digest (an order-independent sha256 of the rows) of the old lake and
of the new one must be equal, every entry's rows and ``data_sha256`` must
match, and :meth:`features.data.lake.Lake.verify` must pass; otherwise
:class:`MigrationError` refuses it. Migration is idempotent and resumable:
entries already migrated (same number, same old entry hash) are skipped, so
running it again checks and reports; a target holding anything else is
refused. The old lake is only read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from features.data.contracts import CONTRACTS
from features.data.lake import Lake, LegacyLakeError
from features.data.legacy_lake import LEGACY_LOG_DIR, LegacyLake, is_legacy_lake

__all__ = ["MigrationError", "MigrationReport", "TableCheck", "content_sha256", "migrate", "migrate_in_place"]

MIGRATED_FROM = "migrated_from"


class MigrationError(RuntimeError):
    """The migration was refused (message says why; nothing in the source is changed)."""


@dataclass(frozen=True)
class TableCheck:
    """One table of the old and the new lake compared (``kind``: ``data`` or ``quarantine``)."""

    table: str
    kind: str
    rows_old: int
    rows_new: int
    content_old: str
    content_new: str

    @property
    def ok(self) -> bool:
        return self.rows_old == self.rows_new and self.content_old == self.content_new


@dataclass(frozen=True)
class MigrationReport:
    """What :func:`migrate` did and found."""

    source: str
    target: str
    entries: int
    copied: int
    skipped: int
    tables: list[TableCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.ok for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**asdict(self), "ok": self.ok, "tables": [{**asdict(t), "ok": t.ok} for t in self.tables]}


def content_sha256(frame: pl.DataFrame) -> str:
    """Order-independent sha256 of ``frame``'s rows: each row as JSON (columns sorted by name), the texts sorted."""
    ordered = frame.select(sorted(frame.columns))
    h = hashlib.sha256(",".join(f"{n}:{t}" for n, t in ordered.schema.items()).encode())
    if ordered.width:
        for text in ordered.select(pl.struct(pl.all()).struct.json_encode().alias("row")).to_series().sort():
            h.update(text.encode())
            h.update(b"\n")
    return h.hexdigest()


def _aligned(a: pl.DataFrame, b: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both frames over the union of their columns (a missing column reads as null, typed as in the other)."""
    names = sorted(set(a.columns) | set(b.columns))
    types = {**dict(b.schema), **dict(a.schema)}

    def fill(df: pl.DataFrame) -> pl.DataFrame:
        return df.select([(pl.col(n) if n in df.columns else pl.lit(None)).cast(types[n]).alias(n) for n in names])

    return fill(a), fill(b)


def _check(old: pl.DataFrame, new: pl.DataFrame, table: str, kind: str) -> TableCheck:
    old, new = _aligned(old, new)
    return TableCheck(table, kind, old.height, new.height, content_sha256(old), content_sha256(new))


def _marker(legacy: LegacyLake, seq: int) -> dict[str, Any]:
    data = (legacy.root / LEGACY_LOG_DIR / f"{seq:08d}.json").read_bytes()
    return {"seq": seq, "entry_sha256": hashlib.sha256(data).hexdigest()}


def _copy_entries(legacy: LegacyLake, lake: Lake, say: Callable[[str], None]) -> tuple[int, int, list[str]]:
    """Copy every old entry not yet in ``lake``; (copied, skipped, problems)."""
    entries = legacy.log()
    copied = skipped = 0
    with lake.locked():
        done = {e.seq: e for e in lake.log()}
        foreign = sorted(set(done) - {e.seq for e in entries})
        if foreign:
            raise MigrationError(f"{lake.root} holds lake log entries the old lake lacks ({foreign[:5]}): refusing to migrate into it")
        for e in entries:
            marker = _marker(legacy, e.seq)
            if e.seq in done:
                if done[e.seq].summary.get(MIGRATED_FROM) != marker:
                    raise MigrationError(f"{lake.root}: entry {e.seq} is not the migration of old entry {e.seq}: refusing to migrate into it")
                skipped += 1
                continue
            say(f"entry {e.seq}: {e.table}")
            accepted = legacy.read_files(e.table, [f for f in e.files if f["kind"] == "data"])
            rejected = legacy.read_quarantine_files(e.table, [f for f in e.files if f["kind"] == "quarantine"])
            lake.commit_locked(
                e.table, accepted, rejected, e.sources, {**e.summary, MIGRATED_FROM: marker},
                committed_at=e.committed_at, seq=e.seq, digests={e.table: legacy.data_sha256(e.table, as_of=e.seq)},
            )
            copied += 1
    problems = []
    new_entries = {e.seq: e for e in lake.log()}
    for e in entries:
        mine = new_entries[e.seq]
        rows_old = sum(f["rows"] for f in e.files)
        rows_new = sum(f["rows"] for f in mine.files)
        if rows_old != rows_new:
            problems.append(f"entry {e.seq}: {rows_old} rows in the old lake, {rows_new} in the new one")
        for table in CONTRACTS:
            if lake.data_sha256(table, as_of=e.seq) != legacy.data_sha256(table, as_of=e.seq):
                problems.append(f"entry {e.seq}: data_sha256 of {table} differs")
    return copied, skipped, problems


def migrate(source: str | os.PathLike[str], target: str | os.PathLike[str], *, progress: Callable[[str], None] | None = None) -> MigrationReport:
    """Copy the old-format lake ``source`` into the Delta lake ``target`` and prove the copy.

    Parameters
    ----------
    source
        Old-format lake (a ``_log`` of Parquet commit entries); only read.
    target
        New lake directory: missing, empty, or a previous (possibly
        interrupted) migration of the same source.
    progress
        Optional callback receiving one message per copied entry.

    Returns
    -------
    MigrationReport
        Counts and the per-table checks (all equal).

    Raises
    ------
    MigrationError
        The source is not an old-format lake or fails its own verification,
        the target holds other data, or any check differs (the message lists
        them; the target is then not a faithful copy: remove it).
    """
    src, dst = Path(source), Path(target)
    say = progress or (lambda _m: None)
    if not is_legacy_lake(src):
        raise MigrationError(f"{src} is not a lake in the old format (no {LEGACY_LOG_DIR}/ entries)")
    if src.resolve() == dst.resolve():
        raise MigrationError("--from and --to are the same directory: use --in-place")
    legacy = LegacyLake(src)
    broken = legacy.verify()
    if broken:
        raise MigrationError(f"{src} fails its own verification, refusing to migrate it: " + "; ".join(broken[:5]))
    lake = Lake(dst)
    try:
        copied, skipped, problems = _copy_entries(legacy, lake, say)
    except LegacyLakeError:
        raise MigrationError(f"{dst} is itself an old-format lake: choose a new directory") from None
    problems += lake.verify()
    if problems:
        raise MigrationError(f"the copy in {dst} differs from {src}; remove it: " + "; ".join(problems))
    checks = []
    for table in CONTRACTS:
        say(f"checking {table}")
        checks.append(_check(legacy.scan(table), lake.scan(table).collect(), table, "data"))
        checks.append(_check(legacy.quarantine(table), lake.scan_quarantine(table).collect(), table, "quarantine"))
    report = MigrationReport(str(src), str(dst), len(legacy.log()), copied, skipped, checks, problems)
    if not report.ok:
        bad = [f"{t.table} {t.kind}: {t.rows_old} -> {t.rows_new} rows, content {'equal' if t.content_old == t.content_new else 'differs'}" for t in checks if not t.ok]
        raise MigrationError(f"the copy in {dst} differs from {src}; remove it: " + "; ".join(bad + problems))
    return report


def migrate_in_place(path: str | os.PathLike[str], *, progress: Callable[[str], None] | None = None) -> MigrationReport:
    """Migrate the old-format lake at ``path`` so that ``path`` becomes the Delta lake.

    The copy is made and proven in ``<path>.delta-migrating``, then ``path``
    is renamed to ``<path>.legacy`` (the backup, kept) and the copy to
    ``path``. Running it again after any interruption finishes the job; on a
    migrated lake it re-checks the copy against the backup.
    """
    lake_dir = Path(path)
    backup = lake_dir.with_name(lake_dir.name + ".legacy")
    staging = lake_dir.with_name(lake_dir.name + ".delta-migrating")
    if is_legacy_lake(lake_dir):
        if backup.exists():
            raise MigrationError(f"{backup} already exists: move it away first")
        report = migrate(lake_dir, staging, progress=progress)
        os.rename(lake_dir, backup)
        os.rename(staging, lake_dir)
        return MigrationReport(str(lake_dir), str(lake_dir), report.entries, report.copied, report.skipped, report.tables, report.problems)
    if not lake_dir.exists() and is_legacy_lake(backup) and staging.is_dir():
        os.rename(staging, lake_dir)  # interrupted between the two renames
    if is_legacy_lake(backup) and lake_dir.is_dir():
        report = migrate(backup, lake_dir, progress=progress)
        return MigrationReport(str(lake_dir), str(lake_dir), report.entries, report.copied, report.skipped, report.tables, report.problems)
    raise MigrationError(f"{lake_dir} is not a lake in the old format (nothing to migrate)")
