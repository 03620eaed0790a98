"""Specification of the Parquet lake (features.data.lake): layout, atomic commits, crash safety, vacuum."""

from __future__ import annotations

import json
import os
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

from features.data.contracts import CONTRACTS
from features.data.lake import Lake, sha256_file
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


def test_commit_writes_partitioned_files_and_a_log_entry(tmp_path: Path) -> None:
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
        "_quarantine/manifests/date=2024-01-22",
        "manifests/date=2024-01-20",
        "manifests/date=2024-01-21",
    ]
    by_partition = {f["partition"]: f for f in entry.files if f["kind"] == "data"}
    assert by_partition["2024-01-20"]["rows"] == 2 and by_partition["2024-01-21"]["rows"] == 1
    for f in entry.files:
        assert sha256_file(tmp_path / f["path"]) == f["sha256"]
    assert (tmp_path / "_log" / "00000001.json").is_file()
    stored = json.loads((tmp_path / "_log" / "00000001.json").read_text())
    assert stored["table"] == "manifests" and stored["sources"][0]["name"] == "m.csv"
    assert stored["summary"]["reasons"] == {"hs_code: not 6, 8 or 10 digits": 2}
    assert_frame_equal(lake.scan("manifests").sort("manifest_id").collect(), acc.sort("manifest_id"))
    assert lake.scan_quarantine("manifests").collect()["manifest_id"].to_list() == ["B0", "B1"]
    assert lake.verify() == []


def test_unpartitioned_tables_go_under_all(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    entry = lake.commit("ports", accepted("ports", [row("ports")]), pl.DataFrame(), [], {})
    assert [f["path"].split("/")[:2] for f in entry.files] == [["ports", "all"]]
    assert lake.scan("ports").collect()["locode"].to_list() == ["XXABC"]


def test_off_contract_frame_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    bad = accepted("manifests", manifest_rows(2)).with_columns(pl.lit(-1).cast(pl.Int64).alias("packages"))
    with pytest.raises(ContractViolation, match="packages"):
        lake.commit("manifests", bad, pl.DataFrame(), [], {})
    assert lake.log() == []
    assert [p for p in tmp_path.rglob("*.parquet")] == []


def test_entries_accumulate_and_as_of_shows_the_past(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.commit("manifests", accepted("manifests", manifest_rows(2)), pl.DataFrame(), [], {})
    first_hash = lake.data_sha256("manifests")
    lake.commit("manifests", accepted("manifests", manifest_rows(3, start=2)), pl.DataFrame(), [], {})
    assert [e.seq for e in lake.log()] == [1, 2]
    assert lake.scan("manifests").collect().height == 5
    assert lake.scan("manifests", as_of=1).collect().height == 2
    assert lake.data_sha256("manifests", as_of=1) == first_hash != lake.data_sha256("manifests")
    assert lake.key_index("manifests").collect().columns == ["manifest_id"]


def test_a_no_op_commit_leaves_the_visible_data_unchanged(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.commit("manifests", accepted("manifests", manifest_rows(2)), pl.DataFrame(), [], {})
    before = lake.data_sha256("manifests"), lake.files("manifests")
    entry = lake.commit("manifests", accepted("manifests", manifest_rows(1)).clear(), pl.DataFrame(), [], {"accepted": 0})
    assert entry.files == ()
    assert (lake.data_sha256("manifests"), lake.files("manifests")) == before


def test_data_hash_is_independent_of_the_lake_location(tmp_path: Path) -> None:
    a, b = Lake(tmp_path / "a"), Lake(tmp_path / "b")
    lake_a_entry = a.commit("ports", accepted("ports", [row("ports")]), pl.DataFrame(), [], {})
    # Copy the lake byte for byte elsewhere: same committed files, same hash.
    for f in [*lake_a_entry.files, {"path": "_log/00000001.json"}]:
        dst = b.root / f["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes((a.root / f["path"]).read_bytes())
    assert a.data_sha256("ports") == b.data_sha256("ports")
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
    assert list((tmp_path / "_log").glob("*.tmp")) == []


def test_vacuum_removes_only_orphans(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.commit("manifests", accepted("manifests", manifest_rows(2)), rejected_rows(1), [], {})
    orphan = tmp_path / "manifests" / "date=2030-01-01" / "orphan.parquet"
    orphan.parent.mkdir(parents=True)
    accepted("manifests", manifest_rows(1, start=9)).write_parquet(orphan)
    tmp_data = tmp_path / "manifests" / "date=2024-01-20" / ".x.parquet.tmp"
    tmp_data.write_bytes(b"partial")
    tmp_log = tmp_path / "_log" / ".y.json.tmp"
    tmp_log.write_text("{")
    before = snapshot(lake)
    assert lake.scan("manifests").collect().height == 2  # orphans are invisible
    removed = lake.vacuum()
    assert set(removed) == {orphan, tmp_data, tmp_log}
    assert not orphan.parent.exists()
    assert snapshot(lake) == before
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


# --------------------------------------------------------------------------- crash safety (real processes, SIGKILL)

CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {samples!r})
    import polars as pl
    import features.data.lake as lake_mod
    from features.data.lake import Lake
    from features.data.validation import validate
    from ingest_samples import NOW, manifest_rows, raw_frame

    point = sys.argv[2]

    def pause():
        print("READY", flush=True)
        time.sleep(60)

    if point == "before-log":
        original = Lake._append_log
        def _append_log(self, body):
            pause()
            return original(self, body)
        Lake._append_log = _append_log
    elif point == "before-link":
        real_link = os.link
        def link(src, dst, *a, **k):
            pause()
            return real_link(src, dst, *a, **k)
        lake_mod.os.link = link

    result = validate("manifests", raw_frame(manifest_rows(50, start=1000)), now=NOW)
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


@pytest.mark.parametrize("point", ["before-log", "before-link"])
def test_kill_9_before_the_log_entry_leaves_the_lake_as_it_was(tmp_path: Path, point: str) -> None:
    lake_dir = tmp_path / "lake"
    lake = Lake(lake_dir)
    lake.commit("manifests", accepted("manifests", manifest_rows(3)), rejected_rows(1), [], {})
    before = snapshot(lake)
    files_before = set(lake_dir.rglob("*"))

    run_and_kill(tmp_path, lake_dir, point)

    fresh = Lake(lake_dir)
    assert snapshot(fresh) == before
    leftovers = set(lake_dir.rglob("*")) - files_before
    assert any(p.suffix == ".parquet" for p in leftovers)  # the killed writer had written its data
    removed = fresh.vacuum()
    assert {p for p in leftovers if p.is_file()} <= set(removed) | {p for p in leftovers if not p.exists()}
    assert snapshot(fresh) == before
    # The lake still takes writes after the crash.
    entry = fresh.commit("manifests", accepted("manifests", manifest_rows(1, start=7)), pl.DataFrame(), [], {})
    assert entry.seq == 2 and fresh.scan("manifests").collect().height == 4


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
            for k in range(3):
                result = validate("manifests", raw_frame(manifest_rows(5, start=start + 5 * k)), now=NOW)
                lake.commit("manifests", result.accepted, result.rejected, [], {{}})
            """
        )
    )
    procs = [subprocess.Popen([sys.executable, str(script), str(1000 * i)], cwd=REPO) for i in range(3)]
    deadline = time.monotonic() + 60
    for p in procs:
        assert p.wait(timeout=max(1, deadline - time.monotonic())) == 0
    lake = Lake(lake_dir)
    assert [e.seq for e in lake.log()] == list(range(1, 10))
    assert lake.scan("manifests").collect()["manifest_id"].n_unique() == 45
    assert lake.verify() == []
