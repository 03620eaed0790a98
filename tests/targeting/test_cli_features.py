"""Specification of ``targeting features`` (targeting.cli.features) on a real lake ingested from a simulated world."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.history import History, with_derived_columns
from features.data.ingest import ingest
from features.data.lake import Lake
from features.pipeline import KEY_COLUMNS, build_features
from features.registry import categorical_columns, computed_columns
from features.stats import fit_stats
from targeting.cli import _register, app
from targeting.sim.feeds import FEED_TABLES
from targeting.sim.run import simulate_to_directory
from targeting.sim.world import WorldConfig

_register()
CONFIG = WorldConfig(days=24, containers_per_day=120, seed=11)
DAY = "2025-01-20"
AT = dt.datetime(2025, 1, 20, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("features-cli")
    summary = simulate_to_directory(CONFIG, root / "world")
    lake = Lake(root / "lake")
    after_the_world = CONFIG.start_at + dt.timedelta(days=CONFIG.days + 30)
    for table in FEED_TABLES:
        ingest(lake, table, [root / "world" / summary["files"][table]["path"]], now=after_the_world)
    return root / "lake"


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, list(args))


def expected_candidates(lake_dir: Path, port: str | None = None) -> pl.DataFrame:
    manifests = Lake(lake_dir).scan("manifests").collect()
    keep = (pl.col("eta").dt.date() == AT.date()) & (pl.col("filed_at") < AT)
    if port:
        keep &= pl.col("port_of_discharge") == port
    return manifests.filter(keep)


def test_writes_the_feature_table_of_the_days_arrivals(lake_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "features.parquet"
    result = invoke("features", "--lake", str(lake_dir), "--as-of", DAY, "--out", str(out))
    assert result.exit_code == 0, result.output
    feats = pl.read_parquet(out)
    expected = expected_candidates(lake_dir)
    assert expected.height > 50
    assert feats.columns == [*KEY_COLUMNS, *computed_columns()]
    assert sorted(feats["manifest_id"].to_list()) == sorted(expected["manifest_id"].to_list())
    assert (feats["decision_at"] == AT).all()
    assert all(feats.schema[c] == pl.Int32 for c in categorical_columns())
    assert feats.null_count().sum_horizontal().item() == 0
    assert f"{feats.height:,} rows x {len(computed_columns())} features" in result.stdout
    assert "statistics fitted on the lake's history before 2025-01-20" in result.stdout
    assert " s\n" in result.stdout  # time taken


def test_features_equal_the_training_path_with_statistics_fitted_before_the_day(lake_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.parquet"
    assert invoke("features", "--lake", str(lake_dir), "--as-of", DAY, "--out", str(out)).exit_code == 0
    lake = Lake(lake_dir)
    history = History.from_lake(lake)
    stats = fit_stats(
        with_derived_columns(history.manifests.filter(pl.col("filed_at") < AT)).collect(),
        history.outcomes.filter(pl.col("inspected_at") < AT).collect(),
    )
    cands = expected_candidates(lake_dir).with_columns(pl.lit(AT).alias("decision_at"))
    batch = build_features(cands, history, stats)
    assert_frame_equal(pl.read_parquet(out).sort("manifest_id"), batch.sort("manifest_id"))


def test_port_filter_and_given_statistics(lake_dir: Path, tmp_path: Path) -> None:
    stats = fit_stats(with_derived_columns(Lake(lake_dir).scan("manifests")).collect(), Lake(lake_dir).scan("outcomes").collect())
    stats_path = stats.save(tmp_path / "stats.json")
    out = tmp_path / "nl.parquet"
    result = invoke("features", "--lake", str(lake_dir), "--as-of", DAY, "--out", str(out), "--stats", str(stats_path), "--port", "nlrtm")
    assert result.exit_code == 0, result.output
    feats = pl.read_parquet(out)
    assert sorted(feats["manifest_id"].to_list()) == sorted(expected_candidates(lake_dir, "NLRTM")["manifest_id"].to_list())
    assert (feats["port_of_discharge"] == "NLRTM").all() and feats.height > 0
    assert f"statistics from {stats_path}" in result.stdout
    assert " at NLRTM " in result.stdout


def test_a_day_without_arrivals_writes_an_empty_table(lake_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "none.parquet"
    result = invoke("features", "--lake", str(lake_dir), "--as-of", "2025-06-01", "--out", str(out))
    assert result.exit_code == 0, result.output
    feats = pl.read_parquet(out)
    assert feats.height == 0 and feats.columns == [*KEY_COLUMNS, *computed_columns()]
    assert "features: 0 rows" in result.stdout


def _bad_stats(path: Path) -> Path:
    path.write_text(json.dumps({"format": "ccp-feature-stats/9"}))
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda d, t: ["--lake", str(d), "--as-of", "20-01-2025"], "--as-of '20-01-2025' is not a date (YYYY-MM-DD)"),
        (lambda d, t: ["--lake", str(t / "nowhere"), "--as-of", DAY], "lake directory"),
        (lambda d, t: ["--lake", str(t), "--as-of", DAY], "has no manifests"),
        (lambda d, t: ["--lake", str(d), "--as-of", DAY, "--port", "ROTTERDAM"], "--port 'ROTTERDAM' is not a UN/LOCODE"),
        (lambda d, t: ["--lake", str(d), "--as-of", DAY, "--stats", str(t / "missing.json")], "does not exist"),
        (lambda d, t: ["--lake", str(d), "--as-of", DAY, "--stats", str(_bad_stats(t / "bad.json"))], "unsupported feature statistics format"),
        (lambda d, t: ["--lake", str(d), "--as-of", "2024-06-01"], "no manifests filed before 2024-06-01 to fit feature statistics on; pass --stats"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(lake_dir: Path, tmp_path: Path, args, message: str) -> None:  # noqa: ANN001
    out = tmp_path / "x.parquet"
    result = invoke("features", *args(lake_dir, tmp_path), "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("using lake ")]  # the stores header
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()
