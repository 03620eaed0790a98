"""Reference-data commands: ``reference show`` and ``reference update`` (the UN/LOCODE list)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from targeting.cli import app

reference_app = typer.Typer(help="Reference data: the UN/LOCODE list and seaports, and the party resolution of a lake.", no_args_is_help=True)
app.add_typer(reference_app, name="reference")


def reference_summary() -> dict:
    """Release info and sizes of the location reference (all from packaged data, no clock)."""
    from features.data.reference import known_locodes, location_locodes, seaport_locodes, searoute_ports
    from features.data.unlocode import release_info

    info = release_info()
    return {
        "unlocode_release": info["release"],
        "unlocode_source": info["source"],
        "unlocode_locations": info["locations"],
        "unlocode_seaports": info["seaports"],
        "searoute_ports": searoute_ports().height,
        "container_ports": len(known_locodes()),
        "known_locations": len(location_locodes()),
        "known_seaports": len(seaport_locodes()),
    }


@reference_app.command("show")
def show_command(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Print the UN/LOCODE release in use and how many locations and seaports the reference knows."""
    summary = reference_summary()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    for key, value in summary.items():
        typer.echo(f"{key.replace('_', ' ')}: {value}")


@reference_app.command("update")
def update_command(
    files: Annotated[
        list[Path],
        typer.Option("--from", help="UNECE release CSV (CodeListPart1..3.csv, a per-country CSV, code-list.csv) or a directory of them; repeat for several."),
    ],
    release: Annotated[str, typer.Option("--release", help="Release label recorded with the list, e.g. 2024-2.")],
    source: Annotated[str, typer.Option("--source", help="Where the files came from (recorded with the list).")] = "UNECE UN/LOCODE release CSV",
    to: Annotated[
        Path | None, typer.Option("--to", help="Write into this directory instead of the installed package (to review a release first).")
    ] = None,
) -> None:
    """Replace the packaged UN/LOCODE list by a UNECE release (all parts at once).

    Writes ``features/data/unlocode.csv.gz`` and ``unlocode.json`` in the
    installed package. Exit code 2, with nothing written, when a file cannot
    be read or a row is not a UN/LOCODE row.
    """
    from features.data.unlocode import UnlocodeError, read_release, write_release

    missing = [str(f) for f in files if not f.exists()]
    if missing:
        typer.echo(f"error: file not found: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    try:
        frame = read_release(files)
    except UnlocodeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    info = write_release(frame, source=source, release=release, directory=to)
    typer.echo(f"UN/LOCODE {info['release']}: {info['locations']} locations, {info['seaports']} seaports (sha256 {info['sha256'][:12]})")


@reference_app.command("parties")
def parties_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the links table (.csv or .parquet).")],
    lake: Annotated[Path | None, typer.Option("--lake", help="Lake directory (default: CCP_LAKE_DIR / ccp.toml in CCP_HOME).")] = None,
    threshold: Annotated[float, typer.Option("--threshold", min=50.0, max=100.0, help="Minimum name similarity (0..100) for a record without identifier.")] = 90.0,
) -> None:
    """Write the party resolution of the lake's manifests: raw id and name -> canonical id, method, similarity."""
    import polars as pl

    from features.data.lake import Lake
    from features.parties import resolve_parties_uncached
    from targeting.cli.stores import announce, load_settings, require_lake

    settings = load_settings()
    announce(settings, lake=lake, uses=("lake",))
    path = require_lake(lake or settings.lake_dir)
    resolution = resolve_parties_uncached(Lake(path).scan("manifests"), threshold=threshold)
    links = resolution.links
    if out.suffix.lower() == ".parquet":
        links.write_parquet(out)
    else:
        links.write_csv(out)
    by_method = ", ".join(f"{m} {n}" for m, n in links.group_by("method").agg(pl.col("rows").sum()).sort("method").iter_rows())
    typer.echo(f"{links.height} party records -> {resolution.parties} canonical parties ({by_method}); wrote {out}")

