"""``targeting simulate``: generate a simulated port world."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

from targeting.cli import app

WORLD_FORMATS = ("parquet", "csv", "jsonl")
"""File formats ``simulate`` writes; anything else is refused before a row is generated."""


@app.command("simulate")
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the feeds into.")],
    days: Annotated[int, typer.Option(min=1, max=3660, help="Number of arrival days.")] = 120,
    ports: Annotated[str, typer.Option(help="Comma-separated UN/LOCODEs of the ports with a control unit.")] = "NLRTM,BEANR,DEHAM",
    export_ports: Annotated[
        Optional[str],
        typer.Option("--export-ports", help="Comma-separated UN/LOCODEs of source ports whose unit inspects departures ('' for none; default ECGYE,COCTG,BRSSZ,PECLL,PAMIT)."),
    ] = None,
    containers_per_day: Annotated[int, typer.Option("--containers-per-day", min=1, max=1_000_000, help="Mean arrivals per day over all ports.")] = 600,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same world.")] = 7,
    start: Annotated[str, typer.Option(help="First arrival day (YYYY-MM-DD).")] = "2025-01-01",
    illicit_rate: Annotated[float, typer.Option("--illicit-rate", help="Share of containers carrying contraband.")] = 0.004,
    malformed_rate: Annotated[float, typer.Option("--malformed-rate", help="Share of rows written malformed on purpose.")] = 0.005,
    spelling_variant_rate: Annotated[
        float,
        typer.Option("--spelling-variant-rate", help="Share of party mentions rewritten as another filer would (name spelling, identifier); default 0."),
    ] = 0.0,
    scenario: Annotated[
        Optional[str],
        typer.Option(
            "--scenario",
            help="Drift scenario: a known organisation changes its modus operandi at a known day (moved-origin-cover, new-hub, "
            "fronts-to-rip-on, new-precursor-code, new-concealment); its shipments after the change are pattern '<scenario>:new' in the oracle.",
        ),
    ] = None,
    change_day: Annotated[
        Optional[int],
        typer.Option("--change-day", min=1, help="0-based arrival day of the scenario's change (default: the scenario's own, day 90)."),
    ] = None,
    legit_churn: Annotated[
        str,
        typer.Option(
            "--legit-churn",
            help="Novelty of legitimate trade: 'static' (default; the historical world) or 'realistic' (spot suppliers, re-routings, "
            "seasonal and sporadic importers, carrier service changes, 6/8/10-digit HS codes, several currencies and spellings).",
        ),
    ] = "static",
    fmt: Annotated[str, typer.Option("--format", help="File format of the feeds: parquet, csv or jsonl.")] = "parquet",
    as_json: Annotated[bool, typer.Option("--json", help="Print the world summary as JSON.")] = False,
) -> None:
    """Generate a deterministic simulated world: manifests, events, outcomes, alerts and the hidden oracle."""
    from rich.console import Console
    from rich.progress import Progress

    from targeting.sim.run import simulate_to_directory
    from targeting.sim.world import WorldConfig

    console = Console(stderr=True)
    if fmt not in WORLD_FORMATS:
        typer.echo(f"error: --format {fmt!r} is not supported; use one of {', '.join(WORLD_FORMATS)} (nothing was generated)", err=True)
        raise typer.Exit(2)
    try:
        config = WorldConfig(
            seed=seed,
            start=date.fromisoformat(start),
            days=days,
            ports=tuple(p.strip().upper() for p in ports.split(",") if p.strip()),
            **({} if export_ports is None else {"export_ports": tuple(p.strip().upper() for p in export_ports.split(",") if p.strip())}),
            containers_per_day=containers_per_day,
            illicit_rate=illicit_rate,
            malformed_rate=malformed_rate,
            spelling_variant_rate=spelling_variant_rate,
            scenario=scenario,
            change_day=change_day,
            legit_churn=legit_churn,
        )
    except ValueError as exc:
        console.print(f"error: {exc}")
        raise typer.Exit(2) from None
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("simulating days", total=days)
        summary = simulate_to_directory(config, out, fmt=fmt, progress=lambda day: bar.update(task, completed=day + 1))
    if as_json:
        typer.echo(json.dumps(summary, indent=2, sort_keys=True, default=str))
        return
    _print_summary(out, summary)


def _print_summary(out: Path, summary: dict) -> None:
    """The world's headline figures, one line per selection source, export port and the drift scenario."""
    from rich.console import Console

    console = Console()
    console.print(
        f"[bold]world[/bold] {out}: {int(summary['manifests']):,} manifests, {int(summary['events']):,} events, "
        f"{int(summary['outcomes']):,} inspections, {int(summary['alerts']):,} alerts; base rate {summary['base_rate']:.4%}, "
        f"{int(summary['seizures']):,} seizures"
    )
    for row in summary["by_source"]:
        console.print(f"  {row['selection_source']:<10} inspected {int(row['inspected']):>6,}  seizures {int(row['seizures']):>5,}")
    for row in summary["exports"]:
        console.print(
            f"  export {row['port']} departures {int(row['departures']):>7,} inspected {int(row['inspected']):>5,} "
            f"seizures {int(row['seizures']):>4,}, contraband loaded there {int(row['illicit_loaded_here']):,}"
        )
    console.print(f"  malformed on purpose: {int(sum(summary['faults'].values())):,} rows; legitimate trade churn: {summary['legit_churn']}")
    drift = summary.get("scenario")
    if drift:
        console.print(
            f"  scenario {drift['name']}: change on day {drift['change_day']} ({drift['change_date']}); "
            f"{int(drift['new_pattern_shipments']):,} shipments of pattern {drift['new_pattern']}, {int(drift['new_pattern_seized']):,} seized"
        )
