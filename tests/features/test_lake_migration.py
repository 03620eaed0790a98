"""Specification of the migration of an old-format lake to Delta tables (features.data.lake_migration, ``targeting lake migrate``)."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.data.contracts import CONTRACTS
from features.data.ingest import ingest
from features.data.lake import Lake, LegacyLakeError
from features.data.lake_migration import MigrationError, migrate, migrate_in_place
from features.data.legacy_lake import LegacyLake
from targeting.cli import _register, app

sys.path.insert(0, str(Path(__file__).parent))
from ingest_samples import NOW, manifest_rows, row  # noqa: E402
from old_format_lake import Lake as OldLake  # noqa: E402

_register()
TABLES = ("manifests", "events", "ports")


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    pl.DataFrame({c: [r.get(c) for r in rows] for c in columns}, schema={c: pl.String for c in columns}).write_csv(path)
    return path


@pytest.fixture
def old_lake(tmp_path: Path) -> Path:
    """An old-format lake written by the old writer through the real ingest: 4 entries, quarantine with an extra column."""
    lake = OldLake(tmp_path / "old")
    at = [datetime(2024, 2, d, tzinfo=timezone.utc) for d in (1, 2, 3, 4)]
    bad = row("manifests", manifest_id="BAD", hs_code="770000", remarks="late filing")
    ingest(lake, "manifests", [write_csv(tmp_path / "m1.csv", [*manifest_rows(4), {**bad}])], now=at[0])
    ingest(lake, "ports", [write_csv(tmp_path / "p.csv", [row("ports")])], now=at[1])
    ingest(lake, "events", [write_csv(tmp_path / "e.csv", [row("events"), row("events", locode="NOWHERE")])], now=at[2])
    ingest(lake, "manifests", [write_csv(tmp_path / "m2.csv", manifest_rows(3, start=3))], now=at[3])  # one unchanged
    assert [e.seq for e in lake.log()] == [1, 2, 3, 4]
    return lake.root


def test_migration_copies_every_entry_with_its_number_rows_and_data_hashes(tmp_path: Path, old_lake: Path) -> None:
    report = migrate(old_lake, tmp_path / "new")
    assert report.ok and (report.entries, report.copied, report.skipped) == (4, 4, 0)
    old, new = LegacyLake(old_lake), Lake(tmp_path / "new")
    assert [(e.seq, e.table, e.committed_at) for e in new.log()] == [(e.seq, e.table, e.committed_at) for e in old.log()]
    for seq in (1, 2, 3, 4):
        for table in CONTRACTS:
            # lists served before the migration keep their input_data_sha256: the digests are carried over
            assert new.data_sha256(table, as_of=seq) == old.data_sha256(table, as_of=seq), (seq, table)
        for table in TABLES:
            key = list(CONTRACTS[table].key)
            assert_frame_equal(new.scan(table, as_of=seq).collect().sort(key), old.scan(table, as_of=seq).sort(key))
    q_old, q_new = old.quarantine("manifests"), new.scan_quarantine("manifests").collect()
    assert q_new.height == q_old.height == 1 and q_new["remarks"].to_list() == ["late filing"]
    assert q_new.select(q_old.columns).rows() == q_old.rows()
    checked = {(t.table, t.kind): t for t in report.tables}
    assert checked["manifests", "data"].rows_new == 6 and checked["events", "quarantine"].rows_new == 1
    assert new.verify() == []


def test_migrating_again_changes_nothing_and_checks_again(tmp_path: Path, old_lake: Path) -> None:
    migrate(old_lake, tmp_path / "new")
    versions = Lake(tmp_path / "new").versions()
    again = migrate(old_lake, tmp_path / "new")
    assert again.ok and (again.copied, again.skipped) == (0, 4)
    assert Lake(tmp_path / "new").versions() == versions


def test_an_interrupted_migration_resumes_where_it_stopped(tmp_path: Path, old_lake: Path) -> None:
    partial = tmp_path / "partial-old"
    partial.mkdir()
    # the old lake as it was after its first two entries: a migration of it is a prefix of the full one
    for entry in LegacyLake(old_lake).log()[:2]:
        for f in entry.files:
            (partial / f["path"]).parent.mkdir(parents=True, exist_ok=True)
            (partial / f["path"]).write_bytes((old_lake / f["path"]).read_bytes())
        (partial / "_log").mkdir(exist_ok=True)
        name = f"{entry.seq:08d}.json"
        (partial / "_log" / name).write_bytes((old_lake / "_log" / name).read_bytes())
    assert migrate(partial, tmp_path / "new").copied == 2
    resumed = migrate(old_lake, tmp_path / "new")
    assert (resumed.copied, resumed.skipped) == (2, 2) and resumed.ok


def test_migration_refuses_a_target_holding_other_data(tmp_path: Path, old_lake: Path) -> None:
    other = Lake(tmp_path / "other")
    ingest(other, "ports", [write_csv(tmp_path / "p.csv", [row("ports")])], now=NOW)
    with pytest.raises(MigrationError, match="is not the migration of old entry 1"):
        migrate(old_lake, other.root)


def test_migration_refuses_a_copy_that_differs(tmp_path: Path, old_lake: Path) -> None:
    migrate(old_lake, tmp_path / "new")
    new = Lake(tmp_path / "new")
    victim = new.files("ports")[0]
    pl.read_parquet(io.BytesIO(victim.read_bytes())).with_columns(pl.lit("Elsewhere").alias("name")).write_parquet(victim)
    with pytest.raises(MigrationError, match=r"differs from .*sha256 mismatch for ports/"):
        migrate(old_lake, tmp_path / "new")


def test_migration_refuses_a_tampered_old_lake(tmp_path: Path, old_lake: Path) -> None:
    victim = next((old_lake / "ports").rglob("*.parquet"))
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(MigrationError, match="fails its own verification"):
        migrate(old_lake, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_in_place_migration_keeps_the_old_lake_as_a_backup_and_is_idempotent(tmp_path: Path, old_lake: Path) -> None:
    with pytest.raises(LegacyLakeError):
        Lake(old_lake).log()
    rows_before = LegacyLake(old_lake).scan("manifests").height
    report = migrate_in_place(old_lake)
    assert report.ok and report.copied == 4
    assert Lake(old_lake).scan("manifests").collect().height == rows_before
    assert LegacyLake(old_lake.with_name("old.legacy")).scan("manifests").height == rows_before
    again = migrate_in_place(old_lake)
    assert again.ok and (again.copied, again.skipped) == (0, 4)


def test_lake_migrate_command_prints_the_checks_and_refuses_with_exit_1(tmp_path: Path, old_lake: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["lake", "migrate", "--from", str(old_lake), "--to", str(tmp_path / "new"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["copied"] == 4 and all(t["ok"] for t in report["tables"])
    assert runner.invoke(app, ["lake", "verify", "--lake", str(tmp_path / "new")]).exit_code == 0
    refused = runner.invoke(app, ["lake", "migrate", "--from", str(tmp_path / "new"), "--to", str(tmp_path / "x")])
    assert refused.exit_code == 1 and "is not a lake in the old format" in refused.output


def test_commands_on_an_old_lake_name_the_migration_command(tmp_path: Path, old_lake: Path) -> None:
    from targeting.config import missing_lake

    assert missing_lake(old_lake) == f"lake {old_lake} is in the old format: migrate it once with `targeting lake migrate --in-place {old_lake}`"
    csv = write_csv(tmp_path / "m.csv", manifest_rows(1))
    result = CliRunner().invoke(app, ["ingest", "--lake", str(old_lake), "manifests", str(csv)])
    assert result.exit_code == 2 and "targeting lake migrate --from" in result.stderr
    assert LegacyLake(old_lake).scan("manifests").height == 6  # untouched
