"""``targeting benchmark kcs``: the engine on the public customs declaration benchmark (Korea Customs Service data).

Input and usage errors exit 2 with one ``error:`` line.
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from targeting.cli import app

benchmark_app = typer.Typer(help="Public benchmarks: the engine's features, model and metrics on published data.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")

console = Console(width=160)
err = Console(stderr=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _fmt(value) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def print_benchmark(document: dict) -> None:
    """The test metrics beside the dataset paper's LightGBM figures."""
    test, paper = document["test"], document["paper"]["lightgbm"]
    table = Table(title=f"KCS benchmark, test rows {int(test['n']):,}, base rate {_fmt(test['base_rate'])}")
    for column in ("rate", "precision", "recall", "lift", "paper LightGBM precision"):
        table.add_column(column, justify="right")
    for rate in ("1", "2", "5", "10"):
        table.add_row(f"{rate}%", _fmt(test[f"precision@{rate}"]), _fmt(test[f"recall@{rate}"]), _fmt(test[f"lift@{rate}"]), _fmt(paper.get(f"precision@{rate}")))
    console.print(table)
    console.print(f"ROC-AUC {_fmt(test['roc_auc'])}  PR-AUC {_fmt(test['pr_auc'])}  best iteration {document['model']['best_iteration']}  early stopping: {document['early_stopping']['rows']}")


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
        _fail(problem)
    return uri


@benchmark_app.command("kcs")
def kcs(
    train: Annotated[Path, typer.Option("--train", help="Training declarations (KCS CSV, e.g. df_syn_train_eng.csv).")],
    json_out: Annotated[Path, typer.Option("--json", help="Write the metrics document (JSON) here.")],
    valid: Annotated[Optional[Path], typer.Option("--valid", help="Validation declarations for early stopping (default: the training tail).")] = None,
    test: Annotated[Optional[Path], typer.Option("--test", help="Test declarations with the same columns; their labels are read only for scoring.")] = None,
    split_date: Annotated[Optional[str], typer.Option("--split-date", help="YYYY-MM-DD: instead of --test, validation rows from this date on are the test set.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow URI (default: CCP_MLFLOW_TRACKING_URI or mlruns/mlflow.db).")] = None,
    tail_days: Annotated[int, typer.Option("--tail-days", min=1, help="Without --valid: days at the end of the training file used for early stopping.")] = 45,
    refit: Annotated[bool, typer.Option(help="Retrain on every labelled row for the early-stopped number of rounds.")] = True,
    value_history: Annotated[bool, typer.Option(help="Use the repeat-declared-value history families.")] = True,
    seed: Annotated[int, typer.Option(help="LightGBM seed.")] = 7,
    threads: Annotated[int, typer.Option(min=1, max=64, help="LightGBM threads.")] = 1,
    run_name: Annotated[Optional[str], typer.Option("--run-name", help="MLflow run name.")] = None,
) -> None:
    """Train the engine's model on KCS declarations and score a test file: precision, recall and lift at 1/2/5/10 %, ROC-AUC, PR-AUC."""
    from targeting.evaluation.kcs_features import KcsInputError
    from targeting.evaluation.kcs import KcsBenchmarkConfig, benchmark_document, log_kcs_run, run_kcs_benchmark
    from models.tracking import configure

    try:
        split = date.fromisoformat(split_date) if split_date else None
    except ValueError:
        _fail(f"--split-date must be YYYY-MM-DD, got {split_date!r}")
    if test is None and split is None:
        _fail("give --test FILE, or --valid FILE with --split-date")
    if test is not None and split is not None:
        _fail("give --test or --split-date, not both")
    tracking_uri = _tracking_store(tracking_uri)
    config = KcsBenchmarkConfig(tail_days=tail_days, refit=refit, value_history=value_history, split_date=split, seed=seed, num_threads=threads)
    with err.status("benchmark") as status:
        try:
            result = run_kcs_benchmark(train, valid, test, config=config, progress=lambda m: status.update(m))
        except (KcsInputError, ValueError) as exc:
            _fail(str(exc))
        status.update("logging the run to MLflow")
        run_id = log_kcs_run(result, configure(tracking_uri), run_name=run_name)
    document = benchmark_document(result, run_id=run_id)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(document, indent=2, sort_keys=True))
    print_benchmark(document)
    console.print(f"MLflow run {run_id}  metrics written to {json_out}")
