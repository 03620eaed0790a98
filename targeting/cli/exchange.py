"""``targeting exchange``: signing keys, the format's JSON Schema, signed JSON Lines export and import, value of sharing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from targeting.cli import app
from targeting.cli.service import _settings, _store, cli_actor, console, err_console

exchange_app = typer.Typer(help="Intelligence exchange between units: keys, schema, signed files, value of sharing.", no_args_is_help=True)
app.add_typer(exchange_app, name="exchange")


@exchange_app.command("keygen")
def keygen(out: Annotated[Path, typer.Argument(help="Private key file to create (PEM, mode 0600; never overwritten)")]) -> None:
    """Create a unit's Ed25519 signing key and print the public key peers put in their configuration."""
    from targeting.exchange.signing import generate_private_key, public_key_text, write_private_key

    key = generate_private_key()
    try:
        write_private_key(key, out)
    except FileExistsError:
        err_console.print(f"[red]error:[/red] {out} exists; a signing key is never overwritten")
        raise typer.Exit(2) from None
    console.print(public_key_text(key))


@exchange_app.command("schema")
def schema(out: Annotated[Path | None, typer.Option(help="Write the schema here instead of printing it")] = None) -> None:
    """Print (or write) the JSON Schema of the message format, generated from the models."""
    from targeting.exchange.messages import json_schema_text

    text = json_schema_text()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")


def _network(settings):  # noqa: ANN001, ANN202 - Settings -> ExchangeNetwork
    from targeting.exchange.network import ExchangeConfigError, load_network

    if settings.exchange_config is None:
        err_console.print("[red]error:[/red] no exchange configuration: set exchange_config in ccp.toml or CCP_EXCHANGE_CONFIG")
        raise typer.Exit(2)
    path = Path(settings.exchange_config)
    try:
        return load_network(path if path.is_absolute() else settings.home / path)
    except (ExchangeConfigError, ValueError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


@exchange_app.command("export")
def export(out: Annotated[Path, typer.Argument(help="Signed JSON Lines file to write")]) -> None:
    """Write every signed message this instance sent (and queued) to a signed JSON Lines file."""
    from serve.store.exchange import signed_messages
    from targeting.exchange.files import write_jsonl

    settings = _settings()
    _network(settings)
    database = _store(settings)
    try:
        with database.read() as session:
            payloads = signed_messages(session)
    finally:
        database.dispose()
    count = write_jsonl(out, payloads)
    console.print(f"{count} signed messages written to {out}")


@exchange_app.command("import")
def import_(source: Annotated[Path, typer.Argument(help="Signed JSON Lines file from a peer")]) -> None:
    """Receive every line of a signed JSON Lines file as if it came over HTTP (checked, audited; replays refused)."""
    from serve.store.exchange import receive
    from targeting.exchange.files import read_jsonl

    settings = _settings()
    network = _network(settings)
    if not source.is_file():
        err_console.print(f"[red]error:[/red] {source} does not exist")
        raise typer.Exit(2)
    database = _store(settings)
    received = refused = 0
    try:
        for number, payload in read_jsonl(source):
            with database.write() as session:
                result = receive(session, payload, network, channel=f"file:{cli_actor()}")
            if result.refusal is None:
                received += 1
            else:
                refused += 1
                err_console.print(f"line {number}: refused ({result.refusal.code}): {result.refusal.reason}")
    finally:
        database.dispose()
    console.print(f"{received} received, {refused} refused")
    if refused and not received:
        raise typer.Exit(1)


@exchange_app.command("value")
def value(
    days: Annotated[int, typer.Option(help="Days of the simulated world")] = 150,
    containers_per_day: Annotated[int, typer.Option(help="Containers per day")] = 500,
    illicit_rate: Annotated[float, typer.Option(help="Share of containers carrying contraband")] = 0.006,
    rate: Annotated[float, typer.Option(help="Share of its daily containers each unit inspects")] = 0.02,
    seed: Annotated[int, typer.Option(help="World seed")] = 5,
) -> None:
    """What sharing is worth: a network of export, hub and import units in a simulated world, without and with exchange."""
    from datetime import date

    from rich.console import Console
    from rich.table import Table

    from targeting.exchange.value import DEFAULT_UNITS, run_network, value_table
    from targeting.sim.world import WorldConfig, simulate_world

    tables = simulate_world(WorldConfig(seed=seed, start=date(2025, 1, 1), days=days, containers_per_day=containers_per_day, illicit_rate=illicit_rate))
    without = run_network(tables.manifests, tables.oracle, DEFAULT_UNITS, share=False, rate=rate, seed=seed)
    with_exchange = run_network(tables.manifests, tables.oracle, DEFAULT_UNITS, share=True, rate=rate, seed=seed)
    table = Table(title=f"Value of sharing: {days} days x {containers_per_day} containers, seed {seed}, {rate:.1%} inspected per unit")
    for column in ("unit", "role", "inspections", "seizures without", "seizures with", "of which from intelligence", "norm. precision without", "norm. precision with"):
        table.add_column(column, no_wrap=True)
    for row in value_table(without, with_exchange):
        table.add_row(row["unit"], row["role"], str(row["inspections"]), str(row["seizures_without"]), str(row["seizures_with"]),
                      str(row["from_intelligence"]), f"{row['norm_precision_without']:.3f}", f"{row['norm_precision_with']:.3f}")
    Console(width=170).print(table)
