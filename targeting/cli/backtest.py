"""``targeting backtest``: replay inspection strategies on a simulated world that reacts to their seizures."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

from targeting.cli import app

DEFAULT_STRATEGIES = "rules,random,model,model+5,model+10,model+20,ucb"


@app.command("backtest")
def backtest(
    days: Annotated[int, typer.Option(min=1, max=3660, help="Arrival days to replay.")] = 240,
    ports: Annotated[str, typer.Option(help="Comma-separated UN/LOCODEs of the ports with a control unit.")] = "NLRTM",
    containers_per_day: Annotated[int, typer.Option("--containers-per-day", min=1, max=1_000_000, help="Mean arrivals per day over all ports.")] = 2000,
    capacity_share: Annotated[float, typer.Option("--capacity-share", help="Inspections per port and period as a share of its arrivals.")] = 0.01,
    retrain_every: Annotated[int, typer.Option("--retrain-every", min=1, help="Days between retrainings after the warm-up.")] = 7,
    strategies: Annotated[str, typer.Option(help="Comma-separated: rules, random, model, model+N, ucb, ucb+N (N: exploration %).")] = DEFAULT_STRATEGIES,
    seeds: Annotated[str, typer.Option(help="Comma-separated world seeds; every strategy runs on each.")] = "7",
    out: Annotated[Path, typer.Option("--out", help="Directory for the summary (CSV, Markdown), weekly figures and plots.")] = Path("backtest"),
    tracking_uri: Annotated[
        Optional[str], typer.Option("--tracking-uri", help="MLflow tracking URI (default: CCP_MLFLOW_TRACKING_URI or mlruns/mlflow.db).")
    ] = None,
    no_tracking: Annotated[bool, typer.Option("--no-tracking", help="Do not log to MLflow.")] = False,
    warmup_days: Annotated[int, typer.Option("--warmup-days", min=1, help="Days of rules + random before the first model.")] = 60,
    period_days: Annotated[int, typer.Option("--period-days", min=1, max=28, help="List period in days (1 = daily lists, 7 = weekly).")] = 1,
    rule_share: Annotated[float, typer.Option("--rule-share", help="Most of the capacity rule hits may take in model strategies.")] = 0.5,
    alert_days: Annotated[
        Optional[int], typer.Option("--alert-days", min=1, help="Watchlist review: keep each PARTY alert active at most N days (default: as issued).")
    ] = None,
    start: Annotated[str, typer.Option(help="First arrival day (YYYY-MM-DD).")] = "2025-01-01",
    threads: Annotated[int, typer.Option(min=1, max=64, help="LightGBM threads.")] = 1,
    integrity_share: Annotated[float, typer.Option("--integrity-share", min=0.0, max=1.0, help="Model strategies: the policy's INTEGRITY share (unusual seal/dwell traces the model left; 0: none, the lists before the slice).")] = 0.10,
) -> None:
    """Replay strategies day by day: lists by the real policy, outcomes revealed only for selected containers, weekly retraining, adaptive traffickers."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from targeting.evaluation.backtest import BacktestConfig, BacktestError, log_to_mlflow, parse_strategies, run_backtest, write_outputs

    err = Console(stderr=True)
    try:
        config = BacktestConfig(
            days=days,
            ports=tuple(p.strip().upper() for p in ports.split(",") if p.strip()),
            containers_per_day=containers_per_day,
            start=date.fromisoformat(start),
            capacity_share=capacity_share,
            retrain_every=retrain_every,
            warmup_days=warmup_days,
            period_days=period_days,
            rule_share=rule_share,
            alert_days=alert_days,
            num_threads=threads,
            integrity_share=integrity_share,
        )
        chosen = parse_strategies(strategies)
        seed_list = _seeds(seeds)
    except (BacktestError, ValueError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    uri = None if no_tracking else _tracking_store(tracking_uri)

    with Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=max(total, 1))
            bar.update(tasks[label], completed=done, total=max(total, 1))

        result = run_backtest(config, chosen, seed_list, progress=progress)
    paths = write_outputs(result, out)
    _print_summary(result)
    console = Console()
    for label, seconds in result.timings.items():
        if " warm-up " not in label:
            console.print(f"  [dim]{label}: {seconds:,.1f} s[/dim]")
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    if uri:
        run_id = log_to_mlflow(result, uri, paths)
        console.print(f"logged to MLflow ({uri}): parent run {run_id} with {len(chosen)} child runs")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"seeds must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ValueError("give at least one seed")
    if len(set(values)) != len(values):
        raise ValueError("a seed is listed twice")
    return values


def _tracking_store(tracking_uri: str | None) -> str:
    """The MLflow store to log to, named on stderr: ``--tracking-uri`` (created if missing, as asked) or the configured
    one (exit 2 before any work when it does not exist: a mistyped CCP_HOME must not start an empty store)."""
    from targeting.cli.stores import announce, load_settings
    from targeting.config import missing_tracking_store

    settings = load_settings()
    announce(settings, tracking=tracking_uri, uses=("MLflow",))
    if tracking_uri:
        return tracking_uri
    uri = settings.mlflow_tracking_uri
    problem = missing_tracking_store(uri)
    if problem:
        typer.echo(f"error: {problem} (or pass --no-tracking)", err=True)
        raise typer.Exit(2)
    return uri


def _print_summary(result) -> None:
    from rich.console import Console
    from rich.table import Table

    from targeting.evaluation.backtest import summary_cells

    cfg = result.config
    first = cfg.model_start if cfg.model_start < cfg.days else 0
    title = (
        f"Backtest: {cfg.days} days, {', '.join(cfg.ports)}, ~{cfg.containers_per_day:,} containers/day, capacity {cfg.capacity_share:.1%}, "
        f"seeds {', '.join(map(str, result.seeds))}; figures over days {first}-{cfg.days - 1}"
    )
    head, rows, detail, detail_rows = summary_cells(result.summary())
    console = Console(width=160)
    for caption, headers, body in ((title, head, rows), ("Seizures per inspection by selection source; seizures by category (per seed)", detail, detail_rows)):
        table = Table(title=caption)
        for i, header in enumerate(headers):
            table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
        for cells in body:
            table.add_row(*cells)
        console.print(table)
