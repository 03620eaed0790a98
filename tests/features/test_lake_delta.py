"""The lake's tables are plain Delta tables: other engines read them, time travel works, ingest survives kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pyarrow.dataset as pads
import pytest
from deltalake import DeltaTable

from features.data.contracts import CONTRACTS
from features.data.ingest import ingest
from features.data.lake import Lake

sys.path.insert(0, str(Path(__file__).parent))
from ingest_samples import NOW, manifest_rows, row  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
KEY = list(CONTRACTS["manifests"].key)


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    pl.DataFrame({c: [r.get(c) for r in rows] for c in columns}, schema={c: pl.String for c in columns}).write_csv(path)
    return path


@pytest.fixture
def two_ingests(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    first = [*manifest_rows(3), row("manifests", manifest_id="BAD", hs_code="770000")]
    ingest(lake, "manifests", [write_csv(tmp_path / "a.csv", first)], now=datetime(2024, 2, 1, tzinfo=timezone.utc))
    ingest(lake, "manifests", [write_csv(tmp_path / "b.csv", manifest_rows(2, start=3))], now=datetime(2024, 2, 2, tzinfo=timezone.utc))
    return lake


def test_other_engines_read_the_tables_as_the_lake_does(two_ingests: Lake) -> None:
    lake = two_ingests
    ours = lake.scan("manifests").collect().sort(KEY)
    by_deltalake = pl.from_arrow(DeltaTable(lake.table_uri("manifests")).to_pyarrow_table()).drop("partition_date")
    assert by_deltalake.sort(KEY).equals(ours)
    by_pyarrow = pl.from_arrow(pads.dataset([str(p) for p in lake.active_files("manifests")], format="parquet").to_table())
    assert by_pyarrow.select(ours.columns).sort(KEY).equals(ours)
    quarantine = pl.from_arrow(DeltaTable(lake.table_uri("manifests", quarantine=True)).to_pyarrow_table())
    assert quarantine["manifest_id"].to_list() == ["BAD"] and quarantine["reasons"].to_list() == [["hs_code: invalid HS chapter (01-97, not 77)"]]


def test_quarantined_rows_come_back_in_source_file_then_row_order(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    names = ["c.csv", "a.csv", "e.csv", "b.csv", "d.csv"]  # one Delta commit each, in no name order
    for k, name in enumerate(names):
        rows = [row("manifests", manifest_id=f"BAD{k}{i}", hs_code="770000") for i in range(3)]
        ingest(lake, "manifests", [write_csv(tmp_path / name, [*rows[:2], *manifest_rows(1, start=k), rows[2]])], now=NOW)
    seen = lake.scan_quarantine("manifests").collect().select("__file", "__row", "manifest_id").rows()
    expected = [(name, r, f"BAD{k}{i}") for name, k in sorted((n, k) for k, n in enumerate(names)) for i, r in enumerate((0, 1, 3))]
    assert seen == expected


def test_dask_reads_the_active_files_of_a_version(two_ingests: Lake) -> None:
    dd = pytest.importorskip("dask.dataframe")
    files = [str(p) for p in two_ingests.active_files("manifests", as_of=1)]
    frame = dd.read_parquet(files).compute()
    assert sorted(frame["manifest_id"]) == ["M0", "M1", "M2"]


def test_time_travel_by_entry_by_delta_version_and_by_delta_timestamp_agree(two_ingests: Lake) -> None:
    lake = two_ingests
    uri = lake.table_uri("manifests")
    at_first = lake.scan("manifests", as_of=1).collect().sort(KEY)
    assert at_first["manifest_id"].to_list() == ["M0", "M1", "M2"]
    version = lake.table_version("manifests", as_of=1)
    assert pl.scan_delta(uri, version=version).drop("partition_date").collect().sort(KEY).equals(at_first)
    assert lake.delta_table("manifests", as_of=1).version() == version
    # Delta's own timestamps: delta-rs dates a version by its commit file's modification time (the commitInfo
    # timestamp in history() is taken before the file is written), so loading as of that time gives the version
    commit_file = Path(uri) / "_delta_log" / f"{version:020d}.json"
    table = DeltaTable(uri)
    table.load_as_version(datetime.fromtimestamp(commit_file.stat().st_mtime, timezone.utc) + timedelta(milliseconds=1))
    assert table.version() == version
    # and the lake's own clock: the entry in force on 2024-02-01 at noon is the first
    assert lake.scan("manifests", at=datetime(2024, 2, 1, 12, tzinfo=timezone.utc)).collect().sort(KEY).equals(at_first)


def test_reingesting_the_same_file_adds_no_delta_version(tmp_path: Path, two_ingests: Lake) -> None:
    lake = two_ingests
    versions = {key: DeltaTable(str(lake.root / key)).version() for key in lake.versions()}
    again = ingest(lake, "manifests", [tmp_path / "a.csv"], now=NOW)
    assert (again.accepted, again.unchanged, again.quarantined, again.quarantine_unchanged, again.seq) == (0, 3, 1, 1, None)
    assert {key: DeltaTable(str(lake.root / key)).version() for key in lake.versions()} == versions
    assert lake.last_seq() == 2


# --------------------------------------------------------------------------- kill -9 of a real ingest

INGEST_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime
    from features.data.ingest import ingest
    from features.data.lake import Lake

    lake_dir, csv, point = sys.argv[1], sys.argv[2], sys.argv[3]
    if point == "between-commits":
        original = Lake._append
        def _append(self, key, *a, **k):
            if key.startswith("_quarantine/"):
                print("READY", flush=True)
                time.sleep(60)
            return original(self, key, *a, **k)
        Lake._append = _append
    else:
        print("READY", flush=True)
    ingest(Lake(lake_dir), "manifests", [csv], now=datetime.fromisoformat("2024-02-01T00:00:00+00:00"))
    print("DONE", flush=True)
    """
)


def kill_ingest(tmp_path: Path, lake_dir: Path, csv: Path, point: str, delay: float) -> None:
    script = tmp_path / "ingest_script.py"
    script.write_text(INGEST_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(lake_dir), str(csv), point], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "READY", proc.stderr.read()  # type: ignore[union-attr]
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.mark.parametrize(("point", "delay"), [("between-commits", 0.0), ("anywhere", 0.3), ("anywhere", 1.0)])
def test_kill_9_mid_ingest_then_the_same_ingest_again_loses_and_doubles_nothing(tmp_path: Path, point: str, delay: float) -> None:
    lake = Lake(tmp_path / "lake")
    ingest(lake, "manifests", [write_csv(tmp_path / "first.csv", manifest_rows(2))], now=NOW)
    rows = [*manifest_rows(40, start=100), *[row("manifests", manifest_id=f"BAD{i}", hs_code="770000") for i in range(5)]]
    csv = write_csv(tmp_path / "m.csv", rows)

    kill_ingest(tmp_path, lake.root, csv, point, delay)
    seen = Lake(lake.root)
    visible = seen.scan("manifests").collect().height, seen.scan_quarantine("manifests").collect().height
    assert visible in ((2, 0), (42, 5))  # the batch is entirely invisible or entirely there, never half
    if point == "between-commits":
        assert visible == (2, 0)

    again = ingest(seen, "manifests", [csv], now=NOW)  # the operator re-runs the interrupted ingest
    assert again.accepted + again.unchanged + again.quarantined == again.input_rows == 45
    assert sorted(seen.scan("manifests").collect()["manifest_id"]) == sorted(["M0", "M1", *[f"M{i}" for i in range(100, 140)]])
    assert seen.scan_quarantine("manifests").collect()["manifest_id"].sort().to_list() == [f"BAD{i}" for i in range(5)]
    outside = pl.from_arrow(DeltaTable(seen.table_uri("manifests")).to_pyarrow_table())
    assert outside.height == 42 and outside["manifest_id"].n_unique() == 42  # an outside reader sees each row once
    seen.vacuum()
    assert seen.verify() == []
