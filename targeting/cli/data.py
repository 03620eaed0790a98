"""Data commands: ``simulate`` and ``ingest``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from targeting.cli import app  # noqa: F401


def _ensure_command_group() -> None:
    """Keep ``targeting <command>`` a command group even while it has a single command.

    Typer runs an app with one command and no callback as that command itself
    (``targeting TABLE FILE...``); a no-op callback keeps the subcommand name.
    """
    if app.registered_callback is None:

        @app.callback()
        def _root() -> None:
            pass


_ensure_command_group()


# --------------------------------------------------------------------------- ingest


def _parse_now(value: str | None) -> dt.datetime | None:
    """Parse ``--now`` (ISO 8601 with an offset); ``None`` means the clock."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--now {value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"--now {value!r} has no UTC offset (e.g. 2024-05-01T00:00:00Z)")
    return parsed


def _render_ingest_summary(summary: dict) -> None:
    """Print an ingest summary as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    counts = Table(title=f"ingest {summary['table']}", show_header=True)
    counts.add_column("rows")
    counts.add_column("count", justify="right")
    for label in ("input_rows", "accepted", "unchanged", "quarantined", "quarantine_unchanged"):
        counts.add_row(label.replace("_", " "), str(summary[label]))
    console.print(counts)
    if summary["reasons"]:
        reasons = Table(title="quarantine reasons", show_header=True)
        reasons.add_column("reason")
        reasons.add_column("rows", justify="right")
        for reason, n in summary["reasons"].items():
            reasons.add_row(reason, str(n))
        console.print(reasons)
    if summary["ignored_columns"]:
        console.print("ignored columns: " + ", ".join(summary["ignored_columns"]))
    if summary["seq"] is None:
        console.print("nothing new: no log entry written")
    else:
        console.print(f"log entry {summary['seq']}, {len(summary['files_added'])} file(s) added")


def run_ingest(lake_dir: Path, table: str, files: list[Path], *, as_json: bool, now: str | None, fmt: str | None = None) -> int:
    """Run an ingest and print its summary; return the process exit code.

    0 on success (quarantined rows included), 2 on a file-level fault or a
    bad argument, with a one-line ``error: ...`` on stderr.
    """
    from features.data.ingest import IngestFileError, ingest
    from features.data.lake import Lake, LakeError

    try:
        when = _parse_now(now)
        progress = None
        if not as_json and sys.stderr.isatty():
            from rich.console import Console

            err = Console(stderr=True)
            progress = lambda msg: err.log(msg)  # noqa: E731
        summary = ingest(Lake(lake_dir), table, files, now=when, progress=progress, format=fmt).to_dict()
    except (IngestFileError, ValueError, LakeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}: {exc.filename or lake_dir}", err=True)
        return 2
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        _render_ingest_summary(summary)
    return 0


@app.command("ingest")
def ingest_command(
    table: Annotated[str, typer.Argument(help="Table: manifests, events, outcomes, alerts or ports.")],
    files: Annotated[
        list[Path],
        typer.Argument(help="Input files: .csv, .parquet/.pq, .jsonl/.ndjson, or standard messages (.edi CUSCAR/CODECO/COARRI, .json DCSA events)."),
    ],
    lake: Annotated[
        Path | None, typer.Option("--lake", help="Lake directory, created if missing (default: CCP_LAKE_DIR / ccp.toml in CCP_HOME).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Reference time for the future-timestamp rules (ISO 8601 with offset)."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="Read the files as this standard message: cuscar (manifests), codeco, coarri or dcsa (events); default: by suffix, sniffing .edi/.json content."),
    ] = None,
) -> None:
    """Validate FILE... and add them to TABLE of the lake; bad rows go to quarantine with reasons.

    Exit code 0 on success (even with quarantined rows), 2 on a file-level
    fault (unreadable file, missing column, ...), with nothing written.
    """
    from targeting.cli.stores import announce, load_settings

    settings = load_settings()
    announce(settings, lake=lake, uses=("lake",))
    raise typer.Exit(run_ingest(lake or settings.lake_dir, table, files, as_json=as_json, now=now, fmt=fmt))
