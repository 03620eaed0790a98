"""``targeting drift``: the drift scenarios benchmark (a model frozen before a regime change, and the day-by-day replay)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from targeting.cli import app


@app.command("drift")
def drift(
    scenarios: Annotated[str, typer.Option(help="'all' (every simulator scenario, then 'ordinary') or comma-separated names; 'ordinary' is the world without a change.")] = "all",
    seeds: Annotated[int, typer.Option(min=1, max=50, help="Number of world seeds (first-seed, first-seed + 1, ...).")] = 3,
    first_seed: Annotated[int, typer.Option("--first-seed", help="First world seed.")] = 7,
    out: Annotated[Path, typer.Option("--out", help="Directory for records.csv, summary.csv, curves.csv, summary.md and the plot.")] = Path("drift"),
    features: Annotated[str, typer.Option(help="Feature spec of the models: default, all, baseline, families or names, '-x' removes (ablations; see targeting.evaluation.drift).")] = "default",
    frozen: Annotated[bool, typer.Option("--frozen/--no-frozen", help="Run the model frozen before the change.")] = True,
    replay: Annotated[bool, typer.Option("--replay/--no-replay", help="Run the day-by-day replay with retraining.")] = True,
    containers_per_day: Annotated[int, typer.Option("--containers-per-day", min=50, help="Arrivals per day of the frozen model's world.")] = 2000,
    replay_containers_per_day: Annotated[int, typer.Option("--replay-containers-per-day", min=50, help="Arrivals per day of the replay's world.")] = 400,
    change_day: Annotated[Optional[int], typer.Option("--change-day", min=1, help="Arrival day of the change (default: each scenario's own, 90).")] = None,
    window_days: Annotated[int, typer.Option("--window-days", min=1, help="Days scored after (and before) the change.")] = 30,
    warmup_days: Annotated[int, typer.Option("--warmup-days", min=1, help="First days used only as history by the frozen model.")] = 15,
    train_days: Annotated[int, typer.Option("--train-days", min=7, help="Days of rows before its cut-off each frozen model learns from.")] = 45,
    legit_churn: Annotated[str, typer.Option("--legit-churn", help="Legitimate trade: realistic or static.")] = "realistic",
    strategy: Annotated[str, typer.Option(help="The replay's backtest strategy (model, model+N, ucb...).")] = "model+5",
    reference: Annotated[Optional[float], typer.Option("--reference-ordinary", help="Current model's ordinary-period NP@1, for the target check.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Also copy the recall plot to this path (e.g. docs/img/drift_new_pattern_recall.png).")] = None,
    threads: Annotated[int, typer.Option(min=1, max=64, help="LightGBM threads.")] = 1,
    integrity_share: Annotated[float, typer.Option("--integrity-share", min=0.0, max=0.99, help="Frozen model: share of each 1 % list given to the most unusual seal/dwell traces the model left (the product's 0.10; 0: the model alone).")] = 0.10,
    replay_integrity_share: Annotated[float, typer.Option("--replay-integrity-share", min=0.0, max=1.0, help="Replay: the policy's INTEGRITY share (the product's 0.10; 0: the lists before the slice).")] = 0.10,
) -> None:
    """Run drift scenarios: recall of the new pattern and normalised precision before/after the change, frozen model vs replay, over seeds."""
    from rich.console import Console

    from targeting.evaluation.drift import DriftConfig, DriftError, aggregate, headline_markdown, parse_scenarios, resolve_features, run_drift, write_outputs

    err = Console(stderr=True)
    try:
        config = DriftConfig(
            change_day=change_day,
            window_days=window_days,
            warmup_days=warmup_days,
            train_days=train_days,
            containers_per_day=containers_per_day,
            replay_containers_per_day=replay_containers_per_day,
            legit_churn=legit_churn,
            strategy=strategy,
            features=features,
            frozen=frozen,
            replay=replay,
            num_threads=threads,
            integrity_share=integrity_share,
            replay_integrity_share=replay_integrity_share,
        )
        names = parse_scenarios(scenarios)
        resolve_features(features)
    except (DriftError, ValueError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    if not (frozen or replay):
        err.print("error: --no-frozen and --no-replay leave nothing to run")
        raise typer.Exit(2)
    seed_list = tuple(range(first_seed, first_seed + seeds))
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result = run_drift(config, names, seed_list, progress=lambda message: err.print(f"[dim]{message}[/dim]"))
    except (DriftError, ValueError) as exc:
        err.print(f"error: {exc}")
        raise typer.Exit(2) from None
    paths = write_outputs(result.records, result.curves, names, out, reference_ordinary=reference, features=resolve_features(features))
    if plot is not None and "plot" in paths:
        plot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths["plot"], plot)
    console = Console(width=200)
    console.print(headline_markdown(aggregate(result.records), names), markup=False)
    for label, (seconds, cpu_seconds) in result.timings.items():
        console.print(f"  [dim]{label}: {seconds:,.1f} s wall, {cpu_seconds:,.1f} s CPU[/dim]")
    console.print(f"total {time.perf_counter() - wall:,.1f} s wall, {time.process_time() - cpu:,.1f} s CPU")
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
