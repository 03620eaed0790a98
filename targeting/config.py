"""One configuration for every command and the service: the working directory ``CCP_HOME`` and its ``ccp.toml``.

Where the stores are (the lake of Delta tables, the operational database, the MLflow
store) is read, in this order of precedence, from: explicit arguments,
``CCP_*`` environment variables, the optional ``ccp.toml`` in ``CCP_HOME``,
then the defaults ``<CCP_HOME>/lake``, ``<CCP_HOME>/var/ccp.db`` and
``<CCP_HOME>/mlruns/mlflow.db``. ``CCP_HOME`` itself comes from the
environment (default: the current directory). Relative paths, in the file or
the environment, are relative to ``CCP_HOME``, never to wherever a command
happens to run.

``serve.settings.Settings`` extends :class:`StoreSettings` with the service's
own fields, so the command line and the service read one configuration. This
module imports neither ``serve`` nor the engine: it only locates stores and
says whether they exist; it never creates one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

CONFIG_FILE_NAME = "ccp.toml"
"""Name of the optional configuration file in ``CCP_HOME``."""
HOME_ENV = "CCP_HOME"


class ConfigFileError(ValueError):
    """``ccp.toml`` names a setting that does not exist (a typo would otherwise be ignored silently)."""


def home_directory(explicit: str | Path | None = None) -> Path:
    """``explicit``, else ``$CCP_HOME``, else the current directory; absolute."""
    chosen = explicit if explicit not in (None, "") else os.environ.get(HOME_ENV) or Path.cwd()
    return Path(chosen).expanduser().resolve()


def _sqlite_path(url: str) -> str | None:
    """The file path of an ``sqlite:///path`` URL (``None`` for other URLs and in-memory databases)."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            path = url[len(prefix):].split("?", 1)[0]
            return None if path in ("", ":memory:") else path
    return None


def _anchor_sqlite_url(url: str, home: Path) -> str:
    """``sqlite:///relative/path`` made absolute under ``home``; other URLs unchanged."""
    path = _sqlite_path(url)
    if path is None or Path(path).is_absolute():
        return url
    prefix, rest = url.split(":///", 1)
    query = "?" + rest.split("?", 1)[1] if "?" in rest else ""
    return f"{prefix}:///{(home / path).resolve()}{query}"


class _CheckedTomlSource(TomlConfigSettingsSource):
    """The ``ccp.toml`` source, refusing keys that are not settings (and ``home``, which the file cannot move)."""

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        known = set(self.settings_cls.model_fields) - {"home"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigFileError(
                f"{self.toml_file_path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return values


class StoreSettings(BaseSettings):
    """Where the lake, the operational store and the MLflow store are (see the module docstring for precedence)."""

    model_config = SettingsConfigDict(env_prefix="CCP_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: home_directory())
    """The working directory (``CCP_HOME``): ``ccp.toml`` is read from it and relative paths start from it."""
    database_url: str = Field(default_factory=lambda data: f"sqlite:///{data['home'] / 'var' / 'ccp.db'}", min_length=1)
    """SQLAlchemy URL of the operational store (SQLite file or PostgreSQL)."""
    lake_dir: Path = Field(default_factory=lambda data: data["home"] / "lake")
    """Directory of the data lake the engine reads."""
    mlflow_tracking_uri: str = Field(default_factory=lambda data: f"sqlite:///{data['home'] / 'mlruns' / 'mlflow.db'}", min_length=1)
    """MLflow tracking and registry URI."""
    clock_at: str | None = Field(default=None, max_length=64)
    """Start the clock of every command and of the service at this instant (ISO 8601 with an offset; the
    ``CCP_CLOCK_AT`` of :mod:`features.clock`). ``make demo`` sets it to the simulated world's last day, which is in
    the past; unset, the clock is the machine's."""

    dask_scheduler: str | None = Field(default=None, max_length=256)
    """Run features and training on a Dask cluster: the scheduler's address (``tcp://host:8786``), or ``local`` to start a
    LocalCluster on this machine for the run. Unset: one machine, as always (``pip install -e '.[cluster]'`` to use it)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        home = home_directory(getattr(init_settings, "init_kwargs", {}).get("home"))
        toml = _CheckedTomlSource(settings_cls, toml_file=home / CONFIG_FILE_NAME)
        return init_settings, env_settings, toml

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return home_directory(value)

    @field_validator("clock_at", mode="after")
    @classmethod
    def _clock_instant(cls, value: str | None) -> str | None:
        if value is not None:
            from features.clock import parse_clock_setting

            parse_clock_setting(value)  # ValueError naming CCP_CLOCK_AT and the value
        return value

    @field_validator("dask_scheduler", mode="after")
    @classmethod
    def _scheduler_address(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and value != "local" and "://" not in value:
            raise ValueError(f"dask_scheduler {value!r} must be a scheduler address such as tcp://host:8786, or 'local'")
        return value

    @field_validator("lake_dir", mode="after")
    @classmethod
    def _lake_under_home(cls, value: Path, info: ValidationInfo) -> Path:
        home = info.data.get("home") or home_directory()
        return (home / value.expanduser()).resolve()

    @field_validator("database_url", "mlflow_tracking_uri", mode="after")
    @classmethod
    def _sqlite_under_home(cls, value: str, info: ValidationInfo) -> str:
        return _anchor_sqlite_url(value.strip(), info.data.get("home") or home_directory())

    @property
    def config_file(self) -> Path | None:
        """The ``ccp.toml`` these settings were read with, when there is one."""
        path = self.home / CONFIG_FILE_NAME
        return path if path.is_file() else None

    def describe(self) -> str:
        """One line naming every store, for a command's header on stderr."""
        source = f"{self.config_file}" if self.config_file else f"{self.home} (no {CONFIG_FILE_NAME})"
        return (
            f"stores: lake {self.lake_dir} · database {_redacted(self.database_url)} · "
            f"MLflow {_redacted(self.mlflow_tracking_uri)}  [config {source}]"
        )


def _redacted(url: str) -> str:
    """``url`` with any password hidden."""
    if "@" not in url or "://" not in url:
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not an SQLAlchemy URL (e.g. http MLflow); show the host part only
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


# --------------------------------------------------------------------------- missing stores


def missing_lake(lake_dir: Path) -> str | None:
    """Why ``lake_dir`` cannot be read (it does not exist, is not a directory, or is in the old format); ``None`` when it can."""
    from features.data.legacy_lake import is_legacy_lake

    if not Path(lake_dir).is_dir():
        return f"lake {lake_dir} does not exist: ingest data first (`targeting ingest --lake {lake_dir} TABLE FILE...`) or set CCP_HOME / ccp.toml"
    if is_legacy_lake(lake_dir):
        return f"lake {lake_dir} is in the old format: migrate it once with `targeting lake migrate --in-place {lake_dir}`"
    return None


def missing_database(database_url: str) -> str | None:
    """Why the operational store cannot be opened without creating it (an SQLite file that does not exist); ``None`` otherwise."""
    path = _sqlite_path(database_url)
    if path is not None and not Path(path).is_file():
        return f"database {path} does not exist: run `targeting init` to create it, or set CCP_HOME / ccp.toml to an existing one"
    return None


def missing_tracking_store(tracking_uri: str) -> str | None:
    """Why the MLflow store cannot be opened without creating it (an SQLite file that does not exist); ``None`` otherwise."""
    path = _sqlite_path(tracking_uri)
    if path is not None and not Path(path).is_file():
        return f"MLflow store {path} does not exist: train after `targeting init` (or `make demo`), or set CCP_HOME / ccp.toml to an existing one"
    return None


def write_config_file(home: Path, values: dict[str, str]) -> Path:
    """Write ``home/ccp.toml`` with ``values`` (string settings; paths relative to ``home`` where possible)."""
    lines = ["# ccp-targeting configuration: read by every `targeting` command and the service.",
             "# Relative paths are relative to this directory (CCP_HOME). CCP_* environment variables override.", ""]
    for key, value in values.items():
        escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key} = "{escaped}"')
    path = Path(home) / CONFIG_FILE_NAME
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
