"""Feature commands: ``features`` (the feature table of a day's arrivals) and ``docs features`` (docs/features.md)."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from targeting.cli import app

docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")

_LOCODE = re.compile(r"^[A-Z]{2}[A-Z2-9]{3}$")


class FeatureCommandError(ValueError):
    """A bad argument or unusable input of ``targeting features``; printed as one ``error: ...`` line."""


# --------------------------------------------------------------------------- docs features


def render_features_doc() -> str:
    """``docs/features.md``: the registry rendered after every feature module has registered its features."""
    import features.pipeline  # noqa: F401  (registers every feature family)
    from features.registry import render_markdown

    return render_markdown()


@docs_app.command("features")
def docs_features(
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of standard output.")] = None,
) -> None:
    """Print (or write with --out) docs/features.md, generated from the feature registry."""
    text = render_features_doc()
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        _write_atomically(out, text.encode("utf-8"))
    except OSError as exc:
        typer.echo(f"error: cannot write {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {out}")


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureRun:
    """What ``targeting features`` produced."""

    rows: int
    features: int
    decision_at: dt.datetime
    stats_source: str
    seconds: float
    out: Path


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise FeatureCommandError(f"--as-of {value!r} is not a date (YYYY-MM-DD)") from None


def _load_stats(path: Path):  # noqa: ANN202 - features.stats.FeatureStats
    from features.stats import FeatureStats

    try:
        return FeatureStats.load(path)
    except FileNotFoundError:
        raise FeatureCommandError(f"feature statistics file {path} does not exist") from None
    except OSError as exc:
        raise FeatureCommandError(f"cannot read feature statistics {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise FeatureCommandError(f"cannot read feature statistics {path}: {exc}") from None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def run_features(lake_dir: Path, as_of: str, out: Path, *, stats_path: Path | None = None, port: str | None = None) -> FeatureRun:
    """Write the feature table of the arrivals of ``as_of`` (serving path) to ``out`` as Parquet.

    Candidates are the lake's manifests with ETA on ``as_of`` (UTC) at their
    port of discharge (only ``port`` when given), filed before ``as_of`` 00:00
    UTC, which is their decision time. Without ``stats_path`` the feature
    statistics are fitted on the lake's history strictly before that time.

    Raises
    ------
    FeatureCommandError
        On a bad argument or an unusable lake or statistics file.
    """
    import io

    import polars as pl

    from features.candidates import decision_time
    from features.history import History, with_derived_columns
    from features.data.lake import Lake
    from features.pipeline import build_features, entity_state
    from features.registry import computed_columns
    from features.stats import fit_stats

    started = time.perf_counter()
    day = _parse_date(as_of)
    if port is not None:
        port = port.strip().upper()
        if not _LOCODE.match(port):
            raise FeatureCommandError(f"--port {port!r} is not a UN/LOCODE (e.g. NLRTM)")
    if not lake_dir.is_dir():
        raise FeatureCommandError(f"lake directory {lake_dir} does not exist")
    lake = Lake(lake_dir)
    if not lake.files("manifests"):
        raise FeatureCommandError(f"the lake {lake_dir} has no manifests")
    at = decision_time(day)
    history = History.from_lake(lake)

    if stats_path is not None:
        stats = _load_stats(stats_path)
        stats_source = f"statistics from {stats_path}"
    else:
        before = with_derived_columns(history.manifests.filter(pl.col("filed_at") < at)).collect()
        if before.height == 0:
            raise FeatureCommandError(f"no manifests filed before {day.isoformat()} to fit feature statistics on; pass --stats")
        outcomes = history.outcomes.filter(pl.col("inspected_at") < at).collect()
        stats = fit_stats(before, outcomes)
        stats_source = (
            f"statistics fitted on the lake's history before {day.isoformat()} "
            f"({before.height:,} manifests, {outcomes.height:,} outcomes); pass --stats to use a model's"
        )

    arriving = (pl.col("eta") >= at) & (pl.col("eta") < at + dt.timedelta(days=1)) & (pl.col("filed_at") < at)
    if port is not None:
        arriving &= pl.col("port_of_discharge") == port
    candidates = (
        history.manifests.filter(arriving)
        .sort("port_of_discharge", "eta", "manifest_id")
        .with_columns(pl.lit(at, dtype=pl.Datetime("us", "UTC")).alias("decision_at"))
        .collect()
    )
    state = entity_state(history, at)
    feats = build_features(candidates, history, stats, state=state)
    buffer = io.BytesIO()
    feats.write_parquet(buffer)
    _write_atomically(out, buffer.getvalue())
    return FeatureRun(feats.height, len(computed_columns()), at, stats_source, time.perf_counter() - started, out)


@app.command("features")
def features_command(
    as_of: Annotated[str, typer.Option("--as-of", help="Arrival date (YYYY-MM-DD): features of the arrivals of that day, scored at its 00:00 UTC.")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write the feature table to.")],
    lake: Annotated[Path | None, typer.Option("--lake", help="Lake directory (default: CCP_LAKE_DIR / ccp.toml in CCP_HOME).")] = None,
    stats: Annotated[
        Path | None,
        typer.Option("--stats", help="Feature statistics JSON (the model's); default: fitted on the lake's history before the date."),
    ] = None,
    port: Annotated[str | None, typer.Option("--port", help="Only arrivals at this port of discharge (UN/LOCODE).")] = None,
) -> None:
    """Write the feature table (Parquet) of the arrivals of --as-of, using only data available before that day.

    Exit code 0 on success, 2 on a bad argument or unusable input, with a
    one-line ``error: ...`` on stderr.
    """
    import polars as pl

    from features.data.lake import LakeError
    from targeting.cli.stores import announce, load_settings

    settings = load_settings()
    announce(settings, lake=lake, uses=("lake",))
    lake = lake or settings.lake_dir
    try:
        run = run_features(lake, as_of, out, stats_path=stats, port=port)
    except (FeatureCommandError, LakeError, pl.exceptions.PolarsError) as exc:
        typer.echo(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}: {exc.filename or out}", err=True)
        raise typer.Exit(2) from None
    where = f" at {port.strip().upper()}" if port else ""
    typer.echo(f"{run.stats_source}")
    typer.echo(
        f"features: {run.rows:,} rows x {run.features} features for the arrivals of {run.decision_at.date().isoformat()}{where} "
        f"(decision time {run.decision_at.isoformat()}) -> {run.out} in {run.seconds:.2f} s"
    )
