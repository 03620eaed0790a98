"""Settings refuse unsafe configurations at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serve.settings import PICKLE_ENV, Settings, is_loopback_host


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("CCP_HOST", "CCP_ALLOW_REMOTE", PICKLE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_are_absolute_paths_under_cwd(tmp_path):
    settings = Settings()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'ccp.db'}"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"
    assert settings.model_name == "container-risk"
    assert settings.max_body_bytes == 64 * 1024
    assert settings.host == "127.0.0.1"


def test_settings_read_ccp_environment(monkeypatch):
    monkeypatch.setenv("CCP_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("CCP_MODEL_NAME", "other")
    settings = Settings()
    assert (settings.max_body_bytes, settings.model_name) == (2048, "other")


def test_non_loopback_host_is_refused_without_allow_remote():
    with pytest.raises(ValidationError, match="not a loopback address"):
        Settings(host="0.0.0.0")
    assert Settings(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_pickle_deserialisation_must_be_false(monkeypatch, value):
    monkeypatch.setenv(PICKLE_ENV, value)
    with pytest.raises(ValidationError, match=f"{PICKLE_ENV} must be false"):
        Settings()


def test_pickle_false_is_accepted(monkeypatch):
    monkeypatch.setenv(PICKLE_ENV, "false")
    Settings()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_page_size": 5000}, "max_page_size must be between 1 and 1000"),
        ({"default_page_size": 300, "max_page_size": 200}, "default_page_size must be between 1 and max_page_size"),
        ({"database_url": "sqlite://"}, "in-memory SQLite"),
        ({"database_url": "sqlite:///:memory:"}, "in-memory SQLite"),
        ({"database_url": "mysql://x/y"}, "SQLite or PostgreSQL"),
        ({"engine_factory": "no_colon"}, "engine_factory must look like"),
    ],
)
def test_unsafe_configurations_are_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**kwargs)


def test_body_limit_bounds():
    with pytest.raises(ValidationError):
        Settings(max_body_bytes=10)


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("localhost", True), ("10.0.0.5", False), ("example.org", False)])
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback
