"""Lake commands: ``lake migrate``, ``lake verify``, ``lake vacuum``, ``lake log``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from targeting.cli import app

lake_app = typer.Typer(help="The lake (Delta tables): migrate an old-format lake, verify, vacuum, show the lake log.", no_args_is_help=True)
app.add_typer(lake_app, name="lake")

LakeOption = Annotated[Path | None, typer.Option("--lake", help="Lake directory (default: CCP_LAKE_DIR / ccp.toml in CCP_HOME).")]


def _lake_dir(lake: Path | None) -> Path:
    from targeting.cli.stores import announce, load_settings

    settings = load_settings()
    announce(settings, lake=lake, uses=("lake",))
    return Path(lake or settings.lake_dir)


@lake_app.command("migrate")
def migrate_command(
    source: Annotated[Path | None, typer.Option("--from", help="The old-format lake (only read).")] = None,
    target: Annotated[Path | None, typer.Option("--to", help="The new lake directory (missing, empty, or an earlier migration of the same lake).")] = None,
    in_place: Annotated[Path | None, typer.Option("--in-place", help="Migrate this lake where it is; the old one is kept as <dir>.legacy.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Copy an old-format lake into Delta tables and prove the copy (row counts and content per table).

    Exit 0 when the copy is proven (also when it was already done), 1 when it
    is refused (the reason is printed; the old lake is never changed).
    """
    from features.data.lake_migration import MigrationError, migrate, migrate_in_place

    if (in_place is None) == (source is None or target is None) or (in_place is not None and (source or target)):
        typer.echo("error: give --from OLD --to NEW, or --in-place DIR", err=True)
        raise typer.Exit(2)
    say = (lambda m: None) if as_json else (lambda m: typer.echo(m, err=True))
    try:
        report = migrate_in_place(in_place, progress=say) if in_place is not None else migrate(source, target, progress=say)  # type: ignore[arg-type]
    except MigrationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    typer.echo(f"migrated {report.source} -> {report.target}: {report.entries} entries ({report.copied} copied, {report.skipped} already there)")
    for t in report.tables:
        if t.rows_old:
            typer.echo(f"  {t.table:<26} {t.kind:<10} {t.rows_new:>10} rows  content sha256 {t.content_new[:16]}  equal")
    typer.echo("every table checked: row counts and contents equal, data hashes carried over, lake verify clean")


@lake_app.command("verify")
def verify_command(lake: LakeOption = None) -> None:
    """Check every data file against the lake log and each table's Delta log; exit 1 on any problem."""
    from features.data.lake import Lake

    problems = Lake(_lake_dir(lake)).verify()
    for p in problems:
        typer.echo(p)
    typer.echo(f"{len(problems)} problem(s)" if problems else "lake verified: every file and Delta version as recorded")
    raise typer.Exit(1 if problems else 0)


@lake_app.command("vacuum")
def vacuum_command(lake: LakeOption = None) -> None:
    """Roll back unfinished ingests and delete files no recorded version needs."""
    from features.data.lake import Lake

    removed = Lake(_lake_dir(lake)).vacuum()
    typer.echo(f"removed {len(removed)} file(s)")


@lake_app.command("log")
def log_command(lake: LakeOption = None, as_json: Annotated[bool, typer.Option("--json", help="One JSON object per entry.")] = False) -> None:
    """The lake log: each ingest with its time and the Delta version of every table after it."""
    from features.data.lake import Lake

    for e in Lake(_lake_dir(lake)).log():
        versions = {k: v["version"] for k, v in sorted(e.tables.items())}
        if as_json:
            typer.echo(json.dumps({"seq": e.seq, "table": e.table, "committed_at": e.committed_at, "versions": versions}))
        else:
            typer.echo(f"{e.seq:>6}  {e.committed_at}  {e.table:<24} " + " ".join(f"{k}@{v}" for k, v in versions.items()))
