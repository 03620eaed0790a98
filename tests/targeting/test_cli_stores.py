"""Specification of store handling on the command line: each command names its stores, refuses missing ones
(creating nothing), ``targeting init`` creates them, ``simulate`` refuses an unknown format before generating.

Runs in-process through typer's CliRunner with ``CCP_HOME`` in a temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from targeting.cli import _register, app

_register()
STORE_ENV = ("CCP_LAKE_DIR", "CCP_DATABASE_URL", "CCP_MLFLOW_TRACKING_URI")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CCP_HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    ("args", "store"),
    [
        (("keys", "create", "--role", "auditor"), "database"),
        (("keys", "list"), "database"),
        (("rules", "list"), "database"),
        (("watchlist", "list"), "database"),
        (("audit", "replay", "0b7e2f36-1111-4222-8333-944455556666"), "database"),
        (("serve",), "database"),
        (("models",), "MLflow store"),
        (("compare", "1", "2"), "lake"),
        (("train",), "lake"),
        (("promote", "--version", "1"), "lake"),
    ],
)
def test_a_command_on_a_missing_store_refuses_and_creates_nothing(home: Path, args: tuple[str, ...], store: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    header, *rest = result.stderr.strip().splitlines()
    assert header.startswith("using ") and header.endswith(f"[config {home} (no ccp.toml)]")
    assert rest and rest[-1].startswith(f"error: {store} {home}"), result.stderr
    assert sorted(p.name for p in home.iterdir()) == []


def test_audit_verify_on_a_missing_store_refuses_and_creates_nothing(home: Path) -> None:
    result = invoke("audit", "verify")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and not (home / "var").exists()


def test_init_creates_the_configured_stores_then_commands_use_them(home: Path) -> None:
    (home / "ccp.toml").write_text('lake_dir = "unit/lake"\ndatabase_url = "sqlite:///unit/var/ccp.db"\n')
    result = invoke("init")
    assert result.exit_code == 0, result.output
    assert (home / "unit" / "lake").is_dir() and (home / "unit" / "var" / "ccp.db").is_file() and (home / "mlruns" / "mlflow.db").is_file()
    assert result.stderr.splitlines()[0].endswith(f"[config {home / 'ccp.toml'}]")
    again = invoke("init")
    assert again.exit_code == 0, again.output
    created = invoke("keys", "create", "--role", "auditor")
    assert created.exit_code == 0, created.output
    assert created.stderr.splitlines()[0] == f"using database sqlite:///{home / 'unit' / 'var' / 'ccp.db'}  [config {home / 'ccp.toml'}]"
    verified = invoke("audit", "verify")
    assert verified.exit_code == 0, verified.output
    assert "audit chain intact" in verified.stdout
    listed = invoke("models")
    assert listed.exit_code == 0 and "no registered versions of container-risk yet" in listed.stdout


def test_init_write_config_records_the_stores_in_use_and_never_overwrites(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCP_LAKE_DIR", str(home / "feeds"))
    result = invoke("init", "--write-config")
    assert result.exit_code == 0, result.output
    monkeypatch.delenv("CCP_LAKE_DIR")
    from serve.settings import Settings

    assert Settings().lake_dir == home / "feeds"
    again = invoke("init", "--write-config")
    assert again.exit_code == 2 and again.stderr.strip().endswith(f"error: {home / 'ccp.toml'} exists; edit it instead")


def test_a_bad_ccp_toml_is_refused_naming_the_key(home: Path) -> None:
    (home / "ccp.toml").write_text('lake = "x"\n')
    result = invoke("models")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"error: configuration refused: {home / 'ccp.toml'}: unknown setting(s) lake; known: ")


def test_simulate_refuses_an_unknown_format_before_generating_anything(home: Path) -> None:
    result = invoke("simulate", "--out", home / "world", "--format", "xlsx", "--days", "3")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --format 'xlsx' is not supported; use one of parquet, csv, jsonl (nothing was generated)"
    assert not (home / "world").exists()


def test_simulate_prints_counts_as_whole_numbers(home: Path) -> None:
    result = invoke("simulate", "--out", home / "world", "--days", "3", "--containers-per-day", "50", "--ports", "NLRTM")
    assert result.exit_code == 0, result.output
    numbers = [token for line in result.stdout.splitlines() for token in line.replace(",", "").split() if token[:1].isdigit()]
    counts = [t for t in numbers if not t.endswith("%")]
    assert counts and all(t.isdigit() for t in counts), result.stdout


def test_ingest_defaults_to_the_configured_lake_and_names_it(home: Path) -> None:
    world = invoke("simulate", "--out", home / "world", "--days", "2", "--containers-per-day", "30", "--ports", "NLRTM")
    assert world.exit_code == 0, world.output
    result = invoke("ingest", "alerts", home / "world" / "alerts.parquet", "--json", "--now", "2026-01-01T00:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0].startswith(f"using lake {home / 'lake'}  [config ")
    assert (home / "lake").is_dir()


def test_clock_at_in_ccp_toml_is_every_commands_clock(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from features import clock

    from targeting.cli import stores

    monkeypatch.delenv("CCP_CLOCK_AT", raising=False)
    monkeypatch.setattr(stores, "CLOCK_FROM_CONFIG", True)  # as in the `targeting` process (main)
    (home / "ccp.toml").write_text('clock_at = "2025-08-28T18:00:00+00:00"\n')
    with clock.use_clock(clock.current()):  # the command sets the process clock; restored afterwards
        assert invoke("init").exit_code == 0
        assert invoke("keys", "create", "--role", "auditor", "--label", "dated").exit_code == 0
    assert key_creation_days(home) == ["2025-08-28"]


def test_the_targeting_process_runs_on_the_clock_of_ccp_toml(home: Path) -> None:
    import os
    import subprocess
    import sys

    (home / "ccp.toml").write_text('clock_at = "2025-08-28T18:00:00+00:00"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCP_")} | {"CCP_HOME": str(home)}
    cmd = [sys.executable, "-m", "targeting.cli"]
    assert subprocess.run([*cmd, "init"], env=env, cwd=home, capture_output=True, timeout=120).returncode == 0
    assert subprocess.run([*cmd, "keys", "create", "--role", "auditor"], env=env, cwd=home, capture_output=True, timeout=120).returncode == 0
    assert key_creation_days(home) == ["2025-08-28"]


def key_creation_days(home: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(home / "var" / "ccp.db") as db:
        return [str(day)[:10] for (day,) in db.execute("select created_at from api_keys order by created_at")]
