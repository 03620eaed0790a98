"""Specification of the one configuration (targeting.config): CCP_HOME, its ccp.toml, CCP_* overrides, shared with the service."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.settings import Settings
from targeting.config import ConfigFileError, StoreSettings, missing_database, missing_lake, missing_tracking_store, write_config_file

STORE_ENV = ("CCP_HOME", "CCP_LAKE_DIR", "CCP_DATABASE_URL", "CCP_MLFLOW_TRACKING_URI", "CCP_PORT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in STORE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_under_ccp_home_not_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "unit"
    home.mkdir()
    monkeypatch.setenv("CCP_HOME", str(home))
    settings = StoreSettings()
    assert settings.home == home.resolve()
    assert settings.lake_dir == home.resolve() / "lake"
    assert settings.database_url == f"sqlite:///{home.resolve() / 'var' / 'ccp.db'}"
    assert settings.mlflow_tracking_uri == f"sqlite:///{home.resolve() / 'mlruns' / 'mlflow.db'}"
    assert settings.config_file is None


def test_without_ccp_home_the_current_directory_is_home(tmp_path: Path) -> None:
    assert StoreSettings().home == tmp_path.resolve()
    assert Settings().lake_dir == tmp_path.resolve() / "lake"


def test_ccp_toml_paths_are_relative_to_ccp_home_and_read_by_the_service_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "unit"
    home.mkdir()
    (home / "ccp.toml").write_text('lake_dir = "demo/lake"\ndatabase_url = "sqlite:///demo/var/ccp.db"\nport = 8123\n')
    monkeypatch.setenv("CCP_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # elsewhere: relative paths still start at CCP_HOME
    settings = Settings()
    assert settings.lake_dir == home.resolve() / "demo" / "lake"
    assert settings.database_url == f"sqlite:///{home.resolve() / 'demo' / 'var' / 'ccp.db'}"
    assert settings.port == 8123
    assert settings.config_file == home.resolve() / "ccp.toml"
    assert settings.mlflow_tracking_uri == f"sqlite:///{home.resolve() / 'mlruns' / 'mlflow.db'}"


def test_environment_overrides_the_file_and_arguments_override_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ccp.toml").write_text('lake_dir = "from-file"\nmlflow_tracking_uri = "sqlite:///from-file.db"\n')
    monkeypatch.setenv("CCP_LAKE_DIR", "from-env")
    settings = Settings()
    assert settings.lake_dir == tmp_path.resolve() / "from-env"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / 'from-file.db'}"
    assert Settings(lake_dir=Path("/srv/explicit")).lake_dir == Path("/srv/explicit")


def test_an_unknown_key_in_ccp_toml_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "ccp.toml").write_text('lake_directory = "x"\n')
    with pytest.raises(ConfigFileError, match=r"ccp\.toml: unknown setting\(s\) lake_directory; known: "):
        Settings()


def test_postgres_and_http_urls_are_kept_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCP_DATABASE_URL", "postgresql+psycopg://ccp:secret@db:5432/ccp")
    monkeypatch.setenv("CCP_MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://ccp:secret@db:5432/ccp"
    assert settings.mlflow_tracking_uri == "http://mlflow.internal:5000"
    assert "secret" not in settings.describe() and "postgresql+psycopg://ccp:***@db:5432/ccp" in settings.describe()


def test_missing_stores_are_named_and_existing_ones_pass(tmp_path: Path) -> None:
    assert missing_lake(tmp_path / "lake").startswith(f"lake {tmp_path / 'lake'} does not exist")
    assert missing_database(f"sqlite:///{tmp_path / 'ccp.db'}").startswith(f"database {tmp_path / 'ccp.db'} does not exist")
    assert missing_tracking_store(f"sqlite:///{tmp_path / 'm.db'}").startswith(f"MLflow store {tmp_path / 'm.db'} does not exist")
    (tmp_path / "lake").mkdir()
    (tmp_path / "ccp.db").touch()
    assert missing_lake(tmp_path / "lake") is None and missing_database(f"sqlite:///{tmp_path / 'ccp.db'}") is None
    assert missing_database("postgresql+psycopg://u@h/db") is None  # a server is checked when connecting


def test_a_written_config_file_round_trips(tmp_path: Path) -> None:
    path = write_config_file(tmp_path, {"lake_dir": 'odd "name"/lake', "database_url": "sqlite:///var/ccp.db"})
    assert path == tmp_path / "ccp.toml"
    settings = StoreSettings()
    assert settings.lake_dir == tmp_path.resolve() / 'odd "name"' / "lake"
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'ccp.db'}"


def test_clock_at_must_be_an_instant_with_an_offset(tmp_path: Path) -> None:
    (tmp_path / "ccp.toml").write_text('clock_at = "2025-08-28"\n')
    with pytest.raises(ValueError, match="CCP_CLOCK_AT"):
        Settings()
    (tmp_path / "ccp.toml").write_text('clock_at = "2025-08-28T18:00:00+00:00"\n')
    assert Settings().clock_at == "2025-08-28T18:00:00+00:00"
