"""Which stores a command uses, said once on stderr; refusing missing ones; ``targeting init`` to create them.

Every command reads one configuration (``targeting.config``: ``CCP_HOME``,
its ``ccp.toml`` and ``CCP_*`` overrides). A command that reads or updates a
store refuses, exit 2 with one ``error: ...`` line, when that store does not
exist, instead of creating an empty one; only ``init``, ``ingest``,
``simulate`` and ``demo`` create stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from targeting.cli import app
from targeting.config import missing_database, missing_lake, missing_tracking_store


def _say(message: str) -> None:
    typer.echo(message, err=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` (verbatim, one line) on stderr; return the ``typer.Exit`` to raise."""
    _say(f"error: {message}")
    return typer.Exit(code)


def load_settings(**overrides: Any):  # noqa: ANN201 - serve.settings.Settings
    """The one configuration, with command-line overrides (``None`` values ignored); exit 2 when refused."""
    from pydantic import ValidationError

    from serve.settings import Settings

    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise fail("configuration refused: " + "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())) from None
    except ValueError as exc:
        raise fail(f"configuration refused: {exc}") from None
    apply_clock(settings)
    return settings


CLOCK_FROM_CONFIG = False
"""Whether :func:`apply_clock` may set the process clock: true in the ``targeting`` process (:func:`targeting.cli.main`),
false when the application is invoked inside another process (tests), whose clock is not the command's to change."""


def apply_clock(settings: Any) -> None:
    """Start this process's clock at ``settings.clock_at`` (``ccp.toml``), unless ``CCP_CLOCK_AT`` already set it."""
    import os

    from features import clock

    if CLOCK_FROM_CONFIG and settings.clock_at and not os.environ.get(clock.CLOCK_ENV, "").strip():
        clock.set_clock(clock.parse_clock_setting(settings.clock_at))


def announce(settings: Any, *, lake: Path | None = None, database: bool = True, tracking: str | None = None, uses: tuple[str, ...] = ("lake", "database", "MLflow")) -> None:
    """One stderr line naming the stores this command uses (explicit options replace the configured ones)."""
    parts = []
    if "lake" in uses:
        parts.append(f"lake {lake or settings.lake_dir}")
    if "database" in uses and database:
        parts.append(f"database {_shown(settings.database_url)}")
    if "MLflow" in uses:
        parts.append(f"MLflow {_shown(tracking or settings.mlflow_tracking_uri)}")
    source = settings.config_file or f"{settings.home} (no ccp.toml)"
    _say(f"using {' · '.join(parts)}  [config {source}]")


def _shown(url: str) -> str:
    from targeting.config import _redacted

    return _redacted(url)


def require_lake(path: Path) -> Path:
    """``path`` when it is an existing lake directory; else exit 2 naming it."""
    problem = missing_lake(Path(path))
    if problem:
        raise fail(problem)
    return Path(path)


def require_database(database_url: str) -> str:
    """``database_url`` when its store exists (SQLite file present; other servers are checked on connect); else exit 2."""
    problem = missing_database(database_url)
    if problem:
        raise fail(problem)
    return database_url


def require_tracking_store(tracking_uri: str) -> str:
    """``tracking_uri`` when its MLflow store exists; else exit 2."""
    problem = missing_tracking_store(tracking_uri)
    if problem:
        raise fail(problem)
    return tracking_uri


# --------------------------------------------------------------------------- init


def initialise_stores(settings: Any) -> dict[str, str]:
    """Create (idempotently) the lake directory, the migrated operational store and the MLflow store of ``settings``."""
    from models.tracking import configure, ensure_experiment
    from serve.app import open_store
    from targeting.config import _sqlite_path

    Path(settings.lake_dir).mkdir(parents=True, exist_ok=True)
    db_path = _sqlite_path(settings.database_url)
    if db_path:
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    open_store(settings).dispose()
    mlflow_path = _sqlite_path(settings.mlflow_tracking_uri)
    if mlflow_path:
        Path(mlflow_path).parent.mkdir(parents=True, exist_ok=True)
    ensure_experiment(configure(settings.mlflow_tracking_uri))
    return {"lake": str(settings.lake_dir), "database": _shown(settings.database_url), "mlflow": _shown(settings.mlflow_tracking_uri)}


@app.command("init")
def init_command(
    write_config: Annotated[
        bool, typer.Option("--write-config", help="Also write ccp.toml in CCP_HOME with the store locations in use (refused if one exists).")
    ] = False,
) -> None:
    """Create the configured stores (lake directory, operational database, MLflow store) if missing; idempotent."""
    from targeting.config import CONFIG_FILE_NAME, write_config_file

    settings = load_settings()
    announce(settings)
    created = initialise_stores(settings)
    for name, where in created.items():
        typer.echo(f"{name}: {where}")
    if write_config:
        if settings.config_file is not None:
            raise fail(f"{settings.config_file} exists; edit it instead")
        path = write_config_file(
            settings.home,
            {"lake_dir": str(settings.lake_dir), "database_url": settings.database_url, "mlflow_tracking_uri": settings.mlflow_tracking_uri},
        )
        typer.echo(f"wrote {path}")
    elif settings.config_file is None:
        typer.echo(f"(no {CONFIG_FILE_NAME} in {settings.home}: defaults and CCP_* variables apply)")
