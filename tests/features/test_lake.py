"""Specification of the lake (features.data.lake): Delta tables, the lake log, atomic commits, crash safety, vacuum."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from deltalake import DeltaTable, write_deltalake

from features.data.contracts import CONTRACTS
from features.data.lake import BATCH_KEY, Lake, LakeError, LegacyLakeError, sha256_file
from features.data.schemas import ContractViolation
from features.data.validation import validate

sys.path.insert(0, str(Path(__file__).parent))
from ingest_samples import NOW, manifest_rows, raw_frame, row  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def accepted(table: str, rows: list[dict]) -> pl.DataFrame:
    result = validate(table, raw_frame(rows), now=NOW)
    assert result.rejected.height == 0, result.rejected["reasons"].to_list()
    return result.accepted


def rejected_rows(n: int) -> pl.DataFrame:
    result = validate("manifests", raw_frame([row("manifests", manifest_id=f"B{i}", hs_code="77") for i in range(n)]), now=NOW)
    return result.rejected


def snapshot(lake: Lake, table: str = "manifests") -> tuple:
    """Everything a reader can see of ``table``."""
    return (
        lake.scan(table).sort(CONTRACTS[table].key).collect().rows(),
        lake.scan_quarantine(table).collect().rows(),
        [e.to_dict() for e in lake.log()],
        lake.data_sha256(table),
    )


# --------------------------------------------------------------------------- reading an empty lake


@pytest.mark.parametrize("table", list(CONTRACTS))
def test_empty_lake_scans_to_empty_frames_with_the_contract_schema(tmp_path: Path, table: str) -> None:
    lake = Lake(tmp_path / "lake")
    frame = lake.scan(table).collect()
    assert frame.height == 0
    assert frame.schema == CONTRACTS[table].schema
    q = lake.scan_quarantine(table).collect()
    assert q.height == 0 and "reasons" in q.columns and "__row" in q.columns
    assert lake.log() == [] and lake.files(table) == []
    assert not (tmp_path / "lake").exists()


def test_unknown_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown table 'cargo'"):
        Lake(tmp_path).scan("cargo")


# --------------------------------------------------------------------------- commit


def test_commit_appends_to_delta_tables_and_writes_a_lake_log_entry_last(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    rows = [
        row("manifests", manifest_id="M1", eta="2024-01-20T23:30:00-02:00"),  # 2024-01-21 in UTC
        row("manifests", manifest_id="M2", eta="2024-01-20T06:00:00Z"),
        row("manifests", manifest_id="M3", eta="2024-01-21T01:00:00+02:00"),  # 2024-01-20 in UTC
    ]
    acc = accepted("manifests", rows)
    rej = rejected_rows(2)
    committed_at = datetime(2024, 1, 22, 8, 0, tzinfo=timezone.utc)
    entry = lake.commit("manifests", acc, rej, [{"name": "m.csv", "sha256": "x", "rows": 5}], {"accepted": 3}, now=committed_at)
    assert entry.seq == 1
    assert sorted(f["path"].rsplit("/", 1)[0] for f in entry.files) == [
        "_quarantine/manifests",
        "manifests/partition_date=2024-01-20",
        "manifests/partition_date=2024-01-21",
    ]
    by_partition = {f["partition"]: f for f in entry.files if f["kind"] == "data"}
    assert by_partition["2024-01-20"]["rows"] == 2 and by_partition["2024-01-21"]["rows"] == 1
    for f in entry.files:
        assert sha256_file(tmp_path / f["path"]) == f["sha256"]
    # version 0 creates each table (empty), version 1 is the ingest's commit, tagged with its batch
    assert lake.versions() == {"_quarantine/manifests": 1, "manifests": 1}
    for uri in (lake.table_uri("manifests"), lake.table_uri("manifests", quarantine=True)):
        assert DeltaTable(uri).history(1)[0][BATCH_KEY] == entry.batch
    stored = json.loads((tmp_path / "_lake_log" / "00000001.json").read_text())
    assert stored["table"] == "manifests" and stored["sources"][0]["name"] == "m.csv"
    assert stored["summary"]["reasons"] == {"hs_code: not 6, 8 or 10 digits": 2}
    assert stored["tables"]["manifests"] == {"version": 1, "data_sha256": lake.data_sha256("manifests")}
    assert_frame_equal(lake.scan("manifests").sort("manifest_id").collect(), acc.sort("manifest_id"))
    assert sorted(lake.scan_quarantine("manifests").collect()["manifest_id"].to_list()) == ["B0", "B1"]  # a Delta scan is not in write order
    assert lake.verify() == []


def test_unpartitioned_tables_have_no_partition_column(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    entry = lake.commit("ports", accepted("ports", [row("ports")]), pl.DataFrame(), [], {})
    assert [f["path"].count("/") for f in entry.files] == [1] and entry.files[0]["partition"] is None
    assert lake.scan("ports").collect()["locode"].to_list() == ["XXABC"]
    assert pl.scan_delta(lake.table_uri("ports")).collect_schema().names() == list(CONTRACTS["ports"].column_names)


def test_off_contract_frame_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    bad = accepted("manifests", manifest_rows(2)).with_columns(pl.lit(-1).cast(pl.Int64).alias("packages"))
    with pytest.raises(ContractViolation, match="packages"):
        lake.commit("manifests", bad, pl.DataFrame(), [], {})
    assert lake.log() == []
    assert [p for p in tmp_path.rglob("*.parquet")] == []


def test_entries_accumulate_and_as_of_reads_the_versions_an_entry_names(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.commit("manifests", accepted("manifests", manifest_rows(2)), pl.DataFrame(), [], {}, now=datetime(2024, 1, 1, tzinfo=timezone.utc))
    first_hash = lake.data_sha256("manifests")
    lake.commit("manifests", accepted("manifests", manifest_rows(3, start=2)), pl.DataFrame(), [], {}, now=datetime(2024, 1, 2, tzinfo=timezone.utc))
    assert [e.seq for e in lake.log()] == [1, 2]
    assert lake.versions(as_of=1) == {"manifests": 1} and lake.versions() == {"manifests": 2}
    assert lake.scan("manifests").collect().height == 5
    assert lake.scan("manifests", as_of=1).collect().height == 2
    assert lake.data_sha256("manifests", as_of=1) == first_hash != lake.data_sha256("manifests")
    assert lake.key_index("manifests").collect().columns == ["manifest_id"]
    # by time: the entry in force at a moment (committed_at, the project clock)
    assert lake.seq_at(datetime(2023, 12, 31, tzinfo=timezone.utc)) == 0
    assert lake.scan("manifests", at=datetime(2024, 1, 1, 12, tzinfo=timezone.utc)).collect().height == 2
    assert lake.scan("manifests", at=datetime(2024, 1, 2, tzinfo=timezone.utc)).collect().height == 5
    assert len(lake.files("manifests", as_of=1)) == 1 and len(lake.active_files("manifests")) == 2


def test_a_no_op_commit_leaves_the_visible_data_unchanged(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.commit("manifests", accepted("manifests", manifest_rows(2)), pl.DataFrame(), [], {})
    before = lake.data_sha256("manifests"), lake.files("manifests"), lake.versions()
    entry = lake.commit("manifests", accepted("manifests", manifest_rows(1)).clear(), pl.DataFrame(), [], {"accepted": 0})
    assert entry.files == ()
    assert (lake.data_sha256("manifests"), lake.files("manifests"), lake.versions()) == before
    assert DeltaTable(lake.table_uri("manifests")).version() == 1  # no Delta commit either


def test_data_hash_is_independent_of_the_lake_location(tmp_path: Path) -> None:
    a = Lake(tmp_path / "a")
    a.commit("ports", accepted("ports", [row("ports")]), pl.DataFrame(), [], {})
    shutil.copytree(a.root, tmp_path / "b")  # the lake byte for byte elsewhere: same files, same hash
    b = Lake(tmp_path / "b")
    assert a.data_sha256("ports") == b.data_sha256("ports") and b.verify() == []
    assert a.data_sha256("ports") != a.data_sha256("manifests")


def test_a_taken_sequence_number_moves_the_commit_to_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = Lake(tmp_path)
    lake.commit("manifests", accepted("manifests", manifest_rows(1)), pl.DataFrame(), [], {})
    # A writer that read the log before entry 1 existed tries 1 first and must not overwrite it.
    monkeypatch.setattr(Lake, "last_seq", lambda self: 0)
    entry = lake.commit("manifests", accepted("manifests", manifest_rows(1, start=1)), pl.DataFrame(), [], {})
    assert entry.seq == 2
    assert [e.seq for e in lake.log()] == [1, 2]
    assert lake.scan("manifests").collect().height == 2
    assert list((tmp_path / "_lake_log").glob("*.tmp")) == []


def test_vacuum_removes_only_orphans(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.commit("manifests", accepted("manifests", manifest_rows(2)), rejected_rows(1), [], {})
    lake.commit("manifests", accepted("manifests", manifest_rows(1, start=5)), pl.DataFrame(), [], {})
    orphan = tmp_path / "manifests" / "partition_date=2030-01-01" / "orphan.parquet"
    orphan.parent.mkdir(parents=True)
    accepted("manifests", manifest_rows(1, start=9)).write_parquet(orphan)
    tmp_log = tmp_path / "_lake_log" / ".y.json.tmp"
    tmp_log.write_text("{")
    before = snapshot(lake)
    assert lake.scan("manifests").collect().height == 3  # orphans are invisible
    removed = lake.vacuum()
    assert set(removed) == {orphan, tmp_log}
    assert snapshot(lake) == before
    assert lake.scan("manifests", as_of=1).collect().height == 2  # every named version stays readable
    assert lake.verify() == []


def test_verify_reports_missing_or_altered_files(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    entry = lake.commit("manifests", accepted("manifests", manifest_rows(1)), rejected_rows(1), [], {})
    data, quarantine = (tmp_path / f["path"] for f in entry.files)
    data.write_bytes(data.read_bytes() + b"x")
    quarantine.unlink()
    problems = lake.verify()
    assert len(problems) == 2
    assert any("sha256 mismatch" in p for p in problems) and any("missing file" in p for p in problems)


def test_a_delta_commit_made_outside_the_lake_is_reported_and_never_rolled_back(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.commit("manifests", accepted("manifests", manifest_rows(1)), pl.DataFrame(), [], {})
    outsider = accepted("manifests", manifest_rows(1, start=5)).with_columns(pl.col("eta").dt.date().alias("partition_date"))
    write_deltalake(lake.table_uri("manifests"), outsider, mode="append")
    assert lake.scan("manifests").collect().height == 1  # readers see the lake's version, not the outsider's
    assert [p for p in lake.verify() if "not named by the lake log" in p] == [
        "manifests: the latest Delta version holds files not named by the lake log (an unfinished ingest, or a writer outside the lake)"
    ]
    with pytest.raises(LakeError, match="not written by an unfinished ingest"):
        lake.commit("manifests", accepted("manifests", manifest_rows(1, start=7)), pl.DataFrame(), [], {})
    assert DeltaTable(lake.table_uri("manifests")).to_pyarrow_table().num_rows == 2  # left as found


def test_an_old_format_lake_is_refused_with_the_migration_command(tmp_path: Path) -> None:
    (tmp_path / "_log").mkdir()
    (tmp_path / "_log" / "00000001.json").write_text("{}")
    with pytest.raises(LegacyLakeError, match="targeting lake migrate --from"):
        Lake(tmp_path).scan("manifests")


# --------------------------------------------------------------------------- crash safety (real processes, SIGKILL)

CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {samples!r})
    import polars as pl
    import features.data.lake as lake_mod
    from features.data.lake import Lake
    from features.data.validation import validate
    from ingest_samples import NOW, manifest_rows, raw_frame, row

    point = sys.argv[2]

    def pause():
        print("READY", flush=True)
        time.sleep(60)

    if point == "between-commits":  # the accepted rows are committed to Delta, the quarantine rows not yet
        original_append = Lake._append
        def _append(self, key, *a, **k):
            if key.startswith("_quarantine/"):
                pause()
            return original_append(self, key, *a, **k)
        Lake._append = _append
    elif point == "before-log":  # both Delta commits done, no lake log entry yet
        original = Lake._append_log
        def _append_log(self, body, **k):
            pause()
            return original(self, body, **k)
        Lake._append_log = _append_log
    elif point == "before-link":
        real_link = os.link
        def link(src, dst, *a, **k):
            pause()
            return real_link(src, dst, *a, **k)
        lake_mod.os.link = link

    raw = raw_frame(manifest_rows(50, start=1000) + [row("manifests", manifest_id="BAD", hs_code="77")])
    result = validate("manifests", raw, now=NOW)
    Lake(sys.argv[1]).commit("manifests", result.accepted, result.rejected, [], {{}})
    print("DONE", flush=True)
    """
)


def run_and_kill(tmp_path: Path, lake_dir: Path, point: str) -> None:
    """Run a commit in a real subprocess, SIGKILL it at ``point``."""
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT.format(samples=str(Path(__file__).parent)))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(lake_dir), point],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "READY", proc.stderr.read()  # type: ignore[union-attr]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def latest_rows(uri: str) -> list[tuple]:
    """What an outside Delta reader sees at the table's latest version."""
    return sorted(pl.from_arrow(DeltaTable(uri).to_pyarrow_table()).drop("partition_date", strict=False).rows(), key=str)


@pytest.mark.parametrize("point", ["between-commits", "before-log", "before-link"])
def test_kill_9_before_the_lake_log_entry_leaves_every_table_as_it_was(tmp_path: Path, point: str) -> None:
    lake_dir = tmp_path / "lake"
    lake = Lake(lake_dir)
    lake.commit("manifests", accepted("manifests", manifest_rows(3)), rejected_rows(1), [], {})
    before = snapshot(lake)
    outside_before = latest_rows(lake.table_uri("manifests")), latest_rows(lake.table_uri("manifests", quarantine=True))
    files_before = set(lake_dir.rglob("*"))

    run_and_kill(tmp_path, lake_dir, point)

    fresh = Lake(lake_dir)
    assert snapshot(fresh) == before  # the lake reads every table at the versions its last entry names
    assert DeltaTable(fresh.table_uri("manifests")).version() > fresh.versions()["manifests"]  # the orphan commit
    leftovers = {p for p in set(lake_dir.rglob("*")) - files_before if p.suffix == ".parquet"}
    assert leftovers  # the killed writer had written its data files
    removed = fresh.vacuum()  # rolls the unfinished batch back (Delta restore), then deletes its files
    assert leftovers <= set(removed)
    assert snapshot(fresh) == before and fresh.verify() == []
    outside = latest_rows(fresh.table_uri("manifests")), latest_rows(fresh.table_uri("manifests", quarantine=True))
    assert outside == outside_before  # an outside reader of the latest versions sees no half batch either
    # The lake still takes writes after the crash.
    entry = fresh.commit("manifests", accepted("manifests", manifest_rows(1, start=7)), pl.DataFrame(), [], {})
    assert entry.seq == 2 and fresh.scan("manifests").collect().height == 4


def test_the_next_commit_rolls_back_an_unfinished_batch_without_vacuum(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    Lake(lake_dir).commit("manifests", accepted("manifests", manifest_rows(3)), rejected_rows(1), [], {})
    run_and_kill(tmp_path, lake_dir, "before-log")
    fresh = Lake(lake_dir)
    fresh.commit("manifests", accepted("manifests", manifest_rows(1, start=7)), rejected_rows(2), [], {})
    assert sorted(fresh.scan("manifests").collect()["manifest_id"]) == ["M0", "M1", "M2", "M7"]
    assert fresh.scan_quarantine("manifests").collect().height == 3  # 1 + 2: nothing of the killed batch
    assert latest_rows(fresh.table_uri("manifests")) == sorted(fresh.scan("manifests").collect().rows(), key=str)
    assert fresh.verify() == []


def test_concurrent_writers_get_distinct_sequence_numbers(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from features.data.lake import Lake
            from features.data.validation import validate
            from ingest_samples import NOW, manifest_rows, raw_frame
            start = int(sys.argv[1])
            lake = Lake({str(lake_dir)!r})
            for k in range(2):
                result = validate("manifests", raw_frame(manifest_rows(5, start=start + 5 * k)), now=NOW)
                lake.commit("manifests", result.accepted, result.rejected, [], {{}})
            """
        )
    )
    procs = [subprocess.Popen([sys.executable, str(script), str(1000 * i)], cwd=REPO) for i in range(2)]
    deadline = time.monotonic() + 60
    for p in procs:
        assert p.wait(timeout=max(1, deadline - time.monotonic())) == 0
    lake = Lake(lake_dir)
    assert [e.seq for e in lake.log()] == list(range(1, 5))
    assert lake.scan("manifests").collect()["manifest_id"].n_unique() == 20
    assert lake.verify() == []
