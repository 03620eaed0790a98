"""``targeting demo``: the whole loop on the embedded defaults, through the real HTTP service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from targeting.cli import app


@app.command("demo")
def demo(
    workdir: Annotated[Path, typer.Option(help="Directory for the world, the lake and the service store (recreated).")] = Path("demo"),
    days: Annotated[int, typer.Option(min=90, max=1000, help="Arrival days of the simulated world.")] = 240,
    containers_per_day: Annotated[int, typer.Option("--containers-per-day", min=100, max=20000, help="Mean arrivals per day over all ports.")] = 700,
    seed: Annotated[int, typer.Option(help="World and model seed: the same seed gives the same demo.")] = 7,
    capacity: Annotated[int, typer.Option(min=1, max=500, help="Containers on the officer's daily list.")] = 15,
    mlruns: Annotated[Path, typer.Option(help="MLflow store directory (mlflow.db + artifacts).")] = Path("mlruns"),
    write_config: Annotated[
        bool, typer.Option(help="Write ccp.toml in CCP_HOME naming the demo's stores, so every command uses them afterwards.")
    ] = True,
) -> None:
    """Simulate, ingest, train and promote, then serve a ranked list with reasons, take outcomes, retrain and audit."""
    from targeting.cli.demo_run import DemoConfig, run_demo

    run_demo(DemoConfig(workdir=workdir, days=days, containers_per_day=containers_per_day, seed=seed, capacity=capacity, mlruns=mlruns, write_config=write_config))
