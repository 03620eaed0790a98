"""Model commands: ``train``, ``promote``, ``models``, ``compare``.

Defaults come from the one configuration (``targeting.config``: ``CCP_HOME``, its ``ccp.toml``,
``CCP_LAKE_DIR``, ``CCP_MLFLOW_TRACKING_URI``, ``CCP_DATABASE_URL``). Each command names the
stores it uses on stderr and refuses (exit 2) a lake or MLflow store that does not exist.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from features import clock

from targeting.cli import app

console = Console(width=160)
err = Console(stderr=True)
SHORT = {
    "positives": "pos",
    "base_rate": "base rate",
    "precision@1": "p@1%",
    "precision@5": "p@5%",
    "norm_precision@1": "norm p@1%",
    "recall@1": "r@1%",
    "recall@5": "r@5%",
    "lift@1": "lift@1%",
    "pr_auc": "PR-AUC",
    "roc_auc": "ROC-AUC",
}


def _settings():
    from targeting.cli.stores import load_settings

    return load_settings()


def _fail(message: str) -> None:
    # verbatim and on one line: messages carry paths and exception text, which must not be read as markup or wrapped
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _client(tracking_uri: str | None):
    from models.tracking import configure
    from targeting.config import missing_tracking_store

    uri = tracking_uri or _settings().mlflow_tracking_uri
    problem = missing_tracking_store(uri)
    if problem:
        _fail(problem)
    return configure(uri)


def _lake(lake_dir: Path | None):
    from features.data.lake import Lake

    path = lake_dir or _settings().lake_dir
    if not Path(path).is_dir():
        _fail(f"lake {path} does not exist: run `targeting ingest --lake {path} ...` first")
    return Lake(path)


def _announce(lake_dir: Path | None, tracking_uri: str | None, *, uses: tuple[str, ...]) -> None:
    from targeting.cli.stores import announce

    announce(_settings(), lake=lake_dir, tracking=tracking_uri, uses=uses)


COUNT_COLUMNS = frozenset({"n", "positives", "inspections", "seizures", "inspected", "rows"})
"""Columns holding counts: printed as whole numbers (``12``, ``1,000,000``), never ``12.000`` or ``1.0e6``."""


def _fmt(value, column: str | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    if column in COUNT_COLUMNS and isinstance(value, (int, float)):
        return f"{int(round(value)):,}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def print_metric_table(frame, *, title: str) -> None:
    """The test-period metric table: one row per stream and scorer."""
    columns = [c for c in ("stream", "scorer", "version", "n", "positives", "base_rate", "precision@1", "precision@5", "norm_precision@1", "recall@1", "recall@5", "lift@1", "pr_auc", "roc_auc") if c in frame.columns]
    table = Table(title=title)
    for c in columns:
        table.add_column(SHORT.get(c, c), justify="left" if c in ("stream", "scorer", "version") else "right", no_wrap=True)
    for row in frame.select(columns).iter_rows():
        table.add_row(*(_fmt(v, c) for v, c in zip(row, columns)))
    console.print(table)


def print_source_table(frame) -> None:
    """Hit rate per selection source of the test period's inspections."""
    table = Table(title="test period: hit rate per selection source")
    for c in frame.columns:
        table.add_column(c, justify="left" if c == "selection_source" else "right", no_wrap=True)
    for row in frame.iter_rows():
        table.add_row(*(_fmt(v, c) for v, c in zip(row, frame.columns)))
    console.print(table)


def sync_outcomes(lake, database_url: str | None) -> int:
    """Ingest outcomes recorded through the service into the lake (idempotent); returns rows newly accepted."""
    from features.data.ingest import ingest
    from serve.db import Database
    from serve.store.outcomes import export_outcomes

    if not database_url:
        return 0
    path = database_url.removeprefix("sqlite:///")
    if database_url.startswith("sqlite:///") and not Path(path).exists():
        return 0
    database = Database.from_url(database_url)
    try:
        frame = export_outcomes(database)
    finally:
        database.dispose()
    if frame.height == 0:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "service-outcomes.parquet"
        frame.write_parquet(file)
        summary = ingest(lake, "outcomes", [file], now=clock.now())
    return summary.accepted


def _split(lake, train_start, train_end, valid_end, test_end, warmup_days):
    """The split given on the command line, else one chosen from the lake's data (``models.split_choice``), with seizure counts."""
    from features.history import History
    from models.dataset import TimeSplit
    from models.split_choice import choose_split

    given = [train_start, train_end, valid_end, test_end]
    split = None
    if any(v is not None for v in given):
        if any(v is None for v in given):
            _fail("give all of --train-start, --train-end, --valid-end, --test-end, or none")
        split = TimeSplit(*(date.fromisoformat(v) for v in given))
    return choose_split(History.from_lake(lake), warmup_days=warmup_days, split=split)


ClusterOption = Annotated[
    Optional[str],
    typer.Option(
        "--cluster",
        help="Compute features and train on a Dask cluster: its scheduler (tcp://host:8786), or 'local' to start one on this "
        "machine for the run (default: CCP_DASK_SCHEDULER / ccp.toml dask_scheduler; unset: this process only). Needs pip install -e '.[cluster]'.",
    ),
]
ClusterWorkersOption = Annotated[int, typer.Option(min=1, help="Worker processes of a --cluster local (one thread each).")]
NegativeFractionOption = Annotated[
    float,
    typer.Option(
        "--negative-fraction",
        help="With --cluster: train on every seizure and this fraction of the other rows (chosen by manifest id), their weight divided "
        "by it; in (0, 1], 1 keeps every row. Validation, calibration and evaluation always use every row.",
    ),
]
ClusterScratchOption = Annotated[
    Optional[Path],
    typer.Option("--cluster-scratch", help="With --cluster: where the workers write the feature partitions (storage every worker and this machine read; default: this machine's temporary directory)."),
]


@app.command("train")
def train(
    lake_dir: Annotated[Optional[Path], typer.Option("--lake", help="Lake directory (default: CCP_LAKE_DIR).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow URI (default: CCP_MLFLOW_TRACKING_URI).")] = None,
    oracle: Annotated[Optional[Path], typer.Option(help="Simulator oracle.parquet: adds evaluation against the hidden truth.")] = None,
    train_start: Annotated[Optional[str], typer.Option(help="First training arrival day, YYYY-MM-DD (earlier days only warm up history).")] = None,
    train_end: Annotated[Optional[str], typer.Option(help="End of training and start of validation, YYYY-MM-DD (exclusive).")] = None,
    valid_end: Annotated[Optional[str], typer.Option(help="End of validation and start of the test period, YYYY-MM-DD (exclusive).")] = None,
    test_end: Annotated[Optional[str], typer.Option(help="End of the test period, YYYY-MM-DD (exclusive).")] = None,
    warmup_days: Annotated[
        Optional[int],
        typer.Option(min=0, help="Days of history before training starts (default: 30 from 40 days of arrivals on, else about a sixth of them)."),
    ] = None,
    unlabelled_weight: Annotated[float, typer.Option(help="Weight of uninspected containers as negatives.")] = 0.05,
    random_weight: Annotated[float, typer.Option(help="Weight of random-slice inspections.")] = 5.0,
    seed: Annotated[int, typer.Option(help="LightGBM seed: the same data and seed give the same model.")] = 7,
    threads: Annotated[int, typer.Option(help="LightGBM num_threads.")] = 2,
    register: Annotated[bool, typer.Option(help="Register the model as a new version of container-risk.")] = True,
    promote_after: Annotated[bool, typer.Option("--promote", help="Promote if not worse than the champion.")] = False,
    sync: Annotated[bool, typer.Option(help="First ingest outcomes recorded through the service (CCP_DATABASE_URL).")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run, counts and metrics as JSON.")] = False,
    cluster: ClusterOption = None,
    cluster_workers: ClusterWorkersOption = 2,
    negative_fraction: NegativeFractionOption = 1.0,
    cluster_scratch: ClusterScratchOption = None,
) -> None:
    """Train on the lake (new outcomes included), log the run to MLflow and register the model."""
    from models.training import TrainConfig
    from models.workflow import promote, train_and_register

    cluster = _cluster_address(cluster, negative_fraction)
    _announce(lake_dir, tracking_uri, uses=("lake", "MLflow", *(("database",) if sync else ())))
    lake, client = _lake(lake_dir), _client(tracking_uri)
    if promote_after:
        _require_audit_store()
    if sync:
        _sync_service_outcomes(lake)
    try:
        choice = _split(lake, train_start, train_end, valid_end, test_end, warmup_days)
    except ValueError as exc:
        _fail(str(exc))
    split = choice.split
    for warning in choice.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    oracle_frame = _read_oracle(oracle)
    config = TrainConfig(split=split, unlabelled_weight=unlabelled_weight, random_weight=random_weight, seed=seed, num_threads=threads)
    with err.status("training") as status, _dask(cluster, cluster_workers) as dask_client:
        try:
            result, logged = train_and_register(lake, client, config, oracle=oracle_frame, register=register, progress=status.update, cluster=dask_client,
                                                negative_fraction=negative_fraction, scratch=cluster_scratch)
        except ValueError as exc:
            _fail(str(exc))
    decision = None
    if promote_after and logged.version:
        decision = promote(lake, client, logged.version)
        _audit_promotion(decision, forced=False)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "run_id": logged.run_id,
                    "version": logged.version,
                    "model_sha256": logged.model_sha256,
                    "counts": result.counts,
                    "metrics": {k: v for k, v in result.evaluation.headline().items() if v == v},
                    "source_hit_rates": result.source_hit_rates.to_dicts(),
                    "promotion": decision.message if decision else None,
                    "split": {**split.as_dict(), "how": choice.how, "seizures": choice.seizures},
                    "warnings": list(choice.warnings),
                },
                indent=2,
            )
        )
        return
    console.print(f"run {logged.run_id}  version {logged.version or '(not registered)'}  model sha256 {logged.model_sha256[:16]}…")
    console.print(f"split ({choice.how}): train {split.train_start}..{split.train_end}  valid ..{split.valid_end}  test ..{split.test_end}")
    console.print("seizures per period: " + ", ".join(f"{k} {v:,}" for k, v in choice.seizures.items()))
    console.print(", ".join(f"{k} {v:,}" for k, v in result.counts.items()))
    print_metric_table(result.evaluation.table(), title="test period: model beside baselines")
    print_source_table(result.source_hit_rates)
    if decision:
        console.print(decision.message)


def _sync_service_outcomes(lake) -> None:  # noqa: ANN001 - features.data.lake.Lake
    """Ingest the outcomes recorded through the service, each checked against its seal first (exit 2 naming the bad ones)."""
    from serve.seals import SealMismatchError

    try:
        added = sync_outcomes(lake, _settings().database_url)
    except SealMismatchError as exc:
        _fail(str(exc))
    if added:
        err.print(f"ingested {added} new outcome(s) recorded through the service")


def _cluster_address(cluster: str | None, negative_fraction: float) -> str | None:
    """The cluster to train on (``--cluster``, else the setting); exit 2 for a ``--negative-fraction`` outside (0, 1], or below 1 without a cluster."""
    cluster = cluster or _settings().dask_scheduler
    if not 0 < negative_fraction <= 1:
        _fail(f"--negative-fraction must be in (0, 1] (1 keeps every row), got {negative_fraction:g}")
    if negative_fraction < 1 and not cluster:
        _fail("--negative-fraction below 1 needs the cluster path (--cluster, CCP_DASK_SCHEDULER or dask_scheduler in ccp.toml)")
    return cluster


def _read_oracle(path: Path | None):  # noqa: ANN202 - a Polars frame or None
    """The simulator's oracle file (evaluation only), or ``None``."""
    import polars as pl

    return pl.read_parquet(path) if path else None


@contextlib.contextmanager
def _dask(address: str | None, workers: int):
    """A Dask client for ``address`` (``None``: no cluster, nothing imported); exit 2 when it cannot be had."""
    if not address:
        yield None
        return
    try:
        from features.distributed import ClusterUnavailable, cluster_client
    except ImportError:
        _fail("the cluster path needs dask and distributed: pip install -e '.[cluster]'")
    try:
        with cluster_client(address, workers=workers) as dask_client:
            where = f"a LocalCluster of {workers} workers" if address == "local" else address
            err.print(f"features and training on the Dask cluster: {where}", markup=False, highlight=False)
            yield dask_client
    except ClusterUnavailable as exc:
        _fail(str(exc))


def _audit_promotion(decision, *, forced: bool) -> None:
    from targeting.cli.service import audit_cli_event

    audit_cli_event(
        "model.promote",
        object_type="model",
        object_id="container-risk",
        model_version=decision.version,
        result="promoted" if decision.promoted else "refused",
        detail={"message": decision.message, "previous": decision.previous, "forced": forced},
    )


@app.command("promote")
def promote_command(
    version: Annotated[str, typer.Option("--version", help="Model version to make champion.")],
    force: Annotated[bool, typer.Option(help="Promote even if worse than the champion (needs --reason).")] = False,
    reason: Annotated[Optional[str], typer.Option(help="Why (recorded as a tag).")] = None,
    lake_dir: Annotated[Optional[Path], typer.Option("--lake", help="Lake directory (default: CCP_LAKE_DIR / ccp.toml).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow URI (default: CCP_MLFLOW_TRACKING_URI / ccp.toml).")] = None,
) -> None:
    """Move the champion alias to VERSION if it is not worse than the current champion on the same held-out period."""
    from models.workflow import promote

    if force and not reason:
        _fail("--force needs --reason")
    _announce(lake_dir, tracking_uri, uses=("lake", "database", "MLflow"))
    lake, client = _lake(lake_dir), _client(tracking_uri)
    _require_versions(client, version)
    _require_audit_store()
    try:
        decision = promote(lake, client, version, force=force, reason=reason)
    except Exception as exc:  # noqa: BLE001 - shown as one line
        _fail(f"cannot promote version {version}: {exc}")
    _audit_promotion(decision, forced=force)
    console.print(decision.message)
    if not decision.promoted and decision.previous != decision.version:  # already the champion: nothing to do, not a refusal
        raise typer.Exit(1)


@app.command("models")
def models_command(
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow URI (default: CCP_MLFLOW_TRACKING_URI / ccp.toml).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the versions as JSON.")] = False,
) -> None:
    """List registered versions, aliases and headline metrics."""
    from models.tracking import list_versions

    _announce(None, tracking_uri, uses=("MLflow",))
    frame = list_versions(_client(tracking_uri))
    if as_json:
        typer.echo(json.dumps(frame.to_dicts(), indent=2, default=str))
        return
    if frame.height == 0:
        console.print("no registered versions of container-risk yet: run `targeting train`")
        return
    table = Table(title="container-risk")
    for c in ("version", "aliases", "test_period", "pr_auc", "precision_at_1", "oracle_precision_at_1", "oracle_recall_at_5"):
        table.add_column(c)
    for row in frame.iter_rows(named=True):
        table.add_row(*(_fmt(row[c]) for c in ("version", "aliases", "test_period", "pr_auc", "precision_at_1", "oracle_precision_at_1", "oracle_recall_at_5")))
    console.print(table)


@app.command("compare")
def compare_command(
    a: Annotated[str, typer.Argument(help="Version A")],
    b: Annotated[str, typer.Argument(help="Version B (its test period is used)")],
    lake_dir: Annotated[Optional[Path], typer.Option("--lake", help="Lake directory (default: CCP_LAKE_DIR / ccp.toml).")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow URI (default: CCP_MLFLOW_TRACKING_URI / ccp.toml).")] = None,
    oracle: Annotated[Optional[Path], typer.Option(help="Simulator oracle.parquet: adds the metrics against the hidden truth.")] = None,
) -> None:
    """Compare two versions on the same test period (metric table)."""
    import polars as pl

    from models.workflow import compare_versions

    _announce(lake_dir, tracking_uri, uses=("lake", "MLflow"))
    lake, client = _lake(lake_dir), _client(tracking_uri)
    _require_versions(client, a, b)
    if oracle is not None and not Path(oracle).is_file():
        _fail(f"oracle file {oracle} does not exist")
    try:
        frame = compare_versions(lake, client, a, b, oracle=pl.read_parquet(oracle) if oracle else None)
    except Exception as exc:  # noqa: BLE001
        _fail(f"cannot compare versions {a} and {b}: {type(exc).__name__}: {exc}")
    print_metric_table(frame, title=f"versions {a} and {b} on version {b}'s test period")


def _require_versions(client, *versions: str) -> None:
    """Exit 2 naming each version that is not registered (and the ones that are)."""
    from models.tracking import MODEL_NAME, list_versions

    frame = list_versions(client)
    known = frame["version"].to_list() if "version" in frame.columns else []
    unknown = [v for v in versions if v not in known]
    if unknown:
        have = f"registered versions: {', '.join(known)}" if known else "no version is registered yet: run `targeting train`"
        _fail(f"unknown version {', '.join(unknown)} of {MODEL_NAME}; {have}")


def _require_audit_store() -> None:
    """Promotions are audited in the operational store: refuse (exit 2) before promoting when it does not exist."""
    from targeting.config import missing_database

    problem = missing_database(_settings().database_url)
    if problem:
        _fail(f"promotions are audited: {problem}")
