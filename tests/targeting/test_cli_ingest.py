"""Specification of ``targeting ingest`` (targeting.cli.data): output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from features.data.lake import Lake
from targeting.cli import _register, app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "features"))
from ingest_samples import manifest_rows, row  # noqa: E402

NOW = "2024-02-01T00:00:00Z"
_register()


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    pl.DataFrame({c: [r.get(c) for r in rows] for c in columns}, schema={c: pl.String for c in columns}).write_csv(path)
    return path


@pytest.fixture
def sample_csv(tmp_path: Path) -> Path:
    rows = manifest_rows(3) + [row("manifests", manifest_id="BAD", hs_code="770000")]
    return write_csv(tmp_path / "m.csv", rows)


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, list(args))


def test_json_output_reports_counts_and_reasons(tmp_path: Path, sample_csv: Path) -> None:
    result = invoke("ingest", "--lake", str(tmp_path / "lake"), "manifests", str(sample_csv), "--json", "--now", NOW)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["input_rows"], summary["accepted"], summary["unchanged"], summary["quarantined"]) == (4, 3, 0, 1)
    assert summary["reasons"] == {"hs_code: invalid HS chapter (01-97, not 77)": 1}
    assert Lake(tmp_path / "lake").scan("manifests").collect().height == 3

    again = invoke("ingest", "--lake", str(tmp_path / "lake"), "manifests", str(sample_csv), "--json", "--now", NOW)
    assert again.exit_code == 0
    assert json.loads(again.stdout)["unchanged"] == 3 and json.loads(again.stdout)["accepted"] == 0


def test_table_output_for_people(tmp_path: Path, sample_csv: Path) -> None:
    result = invoke("ingest", "--lake", str(tmp_path / "lake"), "manifests", str(sample_csv), "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "quarantined" in result.stdout and "hs_code: invalid HS chapter (01-97, not 77)" in result.stdout


@pytest.mark.parametrize(
    ("make", "table", "message"),
    [
        (lambda p: p.write_bytes(b""), "manifests", "file is empty"),
        (lambda p: p.write_bytes("manifest_id\ncaf\xe9\n".encode("latin-1")), "manifests", "not valid UTF-8"),
        (lambda p: p.write_text("manifest_id\nM1\n"), "manifests", "missing required column(s) for table 'manifests'"),
        (lambda p: p.write_text("x\n"), "cargo", "unknown table 'cargo'"),
    ],
)
def test_file_level_fault_exits_2_with_one_line_error(tmp_path: Path, make, table: str, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "m.csv"
    make(path)
    result = invoke("ingest", "--lake", str(tmp_path / "lake"), table, str(path), "--now", NOW)
    assert result.exit_code == 2
    header, *lines = result.stderr.strip().splitlines()
    assert header.startswith(f"using lake {tmp_path / 'lake'}")
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "lake" / "_lake_log").exists() or not list((tmp_path / "lake" / "_lake_log").glob("*.json"))


def test_naive_now_is_refused(tmp_path: Path, sample_csv: Path) -> None:
    result = invoke("ingest", "--lake", str(tmp_path / "lake"), "manifests", str(sample_csv), "--now", "2024-02-01T00:00:00")
    assert result.exit_code == 2 and "no UTC offset" in result.stderr


def test_real_console_script_runs(tmp_path: Path, sample_csv: Path) -> None:
    exe = Path(sys.executable).parent / "targeting"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from targeting.cli import main; main()"]
    ok = subprocess.run(
        [*cmd, "ingest", "--lake", str(tmp_path / "lake"), "manifests", str(sample_csv), "--json", "--now", NOW],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["accepted"] == 3
    bad = subprocess.run(
        [*cmd, "ingest", "--lake", str(tmp_path / "lake"), "manifests", str(tmp_path / "missing.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[1:] == [f"error: {tmp_path / 'missing.csv'}: file not found"]
