"""Backtest metrics against the hidden truth (weekly, overall, summary) and outputs (CSV, Markdown, plots, MLflow)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from features import clock
from models.metrics import rate_label, ranking_metrics
from targeting.evaluation.backtest.config import BacktestConfig, BacktestError, CATEGORIES, EXPERIMENT, LAST_WEEKS, SOURCES, Strategy

if TYPE_CHECKING:  # annotations only: run.py builds results with this module's tables
    from targeting.evaluation.backtest.run import BacktestResult, StrategyRun


# --------------------------------------------------------------------------- metrics


def _selection_metrics(frame: pl.DataFrame) -> dict[str, float]:
    """Precision, recall and normalised precision of the selected set against the oracle at the same capacity.

    Computed with :func:`models.metrics.ranking_metrics`: the selected items
    score 1, the others 0, and the rate is the selected share, so the top
    ``k`` are exactly the ``k`` selected items.
    """
    n = frame.height
    k = int(frame.get_column("selected").sum()) if n else 0
    if n == 0 or k == 0:
        return {"precision": float("nan"), "recall": float("nan"), "norm_precision": float("nan"), "oracle_precision": float("nan")}
    rate = 100.0 * k / n
    report = ranking_metrics(
        frame.get_column("selected").cast(pl.Float64).to_numpy(),
        frame.get_column("illicit").to_numpy(),
        tiebreak=frame.get_column("manifest_id").to_numpy(),
        rates=(rate,),
    )
    tag = rate_label(rate)
    if int(report.metrics[f"k@{tag}"]) != k:  # pragma: no cover (guards the rate arithmetic)
        raise BacktestError(f"metric capacity {report.metrics[f'k@{tag}']} differs from the {k} inspections")
    return {
        "precision": report.metrics[f"precision@{tag}"],
        "recall": report.metrics[f"recall@{tag}"],
        "norm_precision": report.metrics[f"norm_precision@{tag}"],
        "oracle_precision": report.metrics[f"oracle_precision@{tag}"],
    }


def weekly_table(runs: Sequence[StrategyRun], config: BacktestConfig, *, direction: str = "IMPORT") -> pl.DataFrame:
    """One row per strategy, seed and week (days ``7w .. 7w + 6``) of one direction's lists (IMPORT by default).

    Columns: ``strategy``, ``seed``, ``week``, ``days``, ``phase``
    (``warm-up`` for weeks starting before the first model, else
    ``model``), ``arrivals``, ``inspections``, ``illicit`` (hidden truth),
    ``illicit_selected``, ``inspected_<source>`` (inspections per selection
    source), ``seizures`` (revealed), ``precision``, ``recall``,
    ``norm_precision``, ``oracle_precision``, ``cumulative_seizures``.
    """
    rows = []
    for run in runs:
        frame = _of_direction(run.evaluation, direction).with_columns((pl.col("day") // 7).alias("week"))
        cumulative = 0
        for (week,), group in sorted(frame.group_by("week"), key=lambda item: item[0][0]):
            seizures = int(group.get_column("seized").sum())
            cumulative += seizures
            rows.append(
                {
                    "strategy": run.strategy.name,
                    "seed": run.seed,
                    "week": int(week),
                    "days": int(group.get_column("day").n_unique()),
                    "phase": "warm-up" if week * 7 < config.model_start else "model",
                    "arrivals": group.height,
                    "inspections": int(group.get_column("selected").sum()),
                    "illicit": int(group.get_column("illicit").sum()),
                    "illicit_selected": int((group.get_column("illicit") & group.get_column("selected")).sum()),
                    **{f"inspected_{source.lower()}": int((group.get_column("source") == source).sum()) for source in SOURCES},
                    "seizures": seizures,
                    **_selection_metrics(group),
                    "cumulative_seizures": cumulative,
                }
            )
    return pl.DataFrame(rows, schema_overrides={k: pl.Float64 for k in ("precision", "recall", "norm_precision", "oracle_precision")})


def last_weeks_mean(weekly: pl.DataFrame, column: str = "norm_precision", weeks: int = LAST_WEEKS) -> float:
    """Mean of ``column`` over the last ``weeks`` complete (7-day) model-phase weeks of one run's weekly rows (NaN weeks skipped)."""
    complete = weekly.filter((pl.col("days") == 7) & (pl.col("phase") == "model")).sort("week").tail(weeks)
    values = complete.get_column(column).drop_nans().drop_nulls()
    return float(values.mean()) if values.len() else float("nan")


def _of_direction(evaluation: pl.DataFrame, direction: str) -> pl.DataFrame:
    return evaluation.filter(pl.col("direction") == direction) if "direction" in evaluation.columns else evaluation


def run_overall(run: StrategyRun, config: BacktestConfig, *, direction: str = "IMPORT") -> dict[str, float]:
    """A run's figures for one direction over the evaluation period (days from the first model on; every day when no model ever ran)."""
    first = config.model_start if config.model_start < config.days else 0
    frame = _of_direction(run.evaluation, direction).filter(pl.col("day") >= first)
    selected = frame.filter(pl.col("selected"))
    out: dict[str, float] = {
        "arrivals": float(frame.height),
        "inspections": float(selected.height),
        "illicit": float(frame.get_column("illicit").sum()),
        "seizures": float(frame.get_column("seized").sum()),
        **_selection_metrics(frame),
    }
    for category in CATEGORIES:
        out[f"seized_{category.lower()}"] = float((frame.get_column("seizure_category") == category).sum())
    for source in SOURCES:
        mine = selected.filter(pl.col("source") == source)
        out[f"inspected_{source.lower()}"] = float(mine.height)
        out[f"seized_by_{source.lower()}"] = float(mine.get_column("seized").sum())
    return out


def summary_table(runs: Sequence[StrategyRun], config: BacktestConfig, *, strategies: Sequence[Strategy] | None = None) -> pl.DataFrame:
    """One row per strategy: evaluation-period figures averaged over seeds.

    ``inspections``, ``seizures`` and ``seized_<category>`` are means per
    seed; ``precision``, ``recall``, ``norm_precision`` the mean over seeds of
    each seed's pooled figure; ``norm_precision_last13`` the mean over seeds of
    the mean weekly normalised precision over the last 13 complete weeks
    (``..._sd``: its standard deviation over seeds, null with one seed);
    ``hit_rate_<source>`` seizures per inspection of that selection source,
    pooled over seeds (null when the source never inspected).
    """
    order = [s.name for s in strategies] if strategies else list(dict.fromkeys(r.strategy.name for r in runs))
    weekly = weekly_table(runs, config)
    rows = []
    for name in order:
        mine = [r for r in runs if r.strategy.name == name]
        if not mine:
            continue
        overall = [run_overall(r, config) for r in mine]
        last = [last_weeks_mean(weekly.filter((pl.col("strategy") == name) & (pl.col("seed") == r.seed))) for r in mine]
        mean = lambda key: float(np.mean([o[key] for o in overall]))  # noqa: E731
        row = {
            "strategy": name,
            "seeds": len(mine),
            "inspections": mean("inspections"),
            "seizures": mean("seizures"),
            "precision": _nanmean([o["precision"] for o in overall]),
            "recall": _nanmean([o["recall"] for o in overall]),
            "norm_precision": _nanmean([o["norm_precision"] for o in overall]),
            "norm_precision_last13": _nanmean(last),
            "norm_precision_last13_sd": float(np.std(last, ddof=1)) if len(last) > 1 and np.all(np.isfinite(last)) else None,
        }
        for source in SOURCES:
            inspected = sum(o[f"inspected_{source.lower()}"] for o in overall)
            row[f"hit_rate_{source.lower()}"] = sum(o[f"seized_by_{source.lower()}"] for o in overall) / inspected if inspected else None
        for category in CATEGORIES:
            row[f"seized_{category.lower()}"] = mean(f"seized_{category.lower()}")
        rows.append(row)
    float_columns = [c for c in (rows[0] if rows else {}) if c not in ("strategy", "seeds")]
    return pl.DataFrame(rows, schema_overrides={c: pl.Float64 for c in float_columns})


def direction_table(runs: Sequence[StrategyRun], config: BacktestConfig, *, strategies: Sequence[Strategy] | None = None) -> pl.DataFrame:
    """One row per strategy and direction: evaluation-period figures of that direction's lists, averaged over seeds.

    ``candidates``, ``inspections``, ``illicit`` (hidden truth: contraband an
    exam at that port could find) and ``seizures`` are means per seed;
    ``precision``, ``recall``, ``norm_precision`` and ``oracle_precision`` the
    mean over seeds of each seed's pooled figure against the oracle at the
    same capacity (:func:`models.metrics.ranking_metrics`).
    """
    order = [s.name for s in strategies] if strategies else list(dict.fromkeys(r.strategy.name for r in runs))
    rows = []
    for direction in config.directions:
        for name in order:
            mine = [r for r in runs if r.strategy.name == name]
            if not mine:
                continue
            overall = [run_overall(r, config, direction=direction) for r in mine]
            rows.append(
                {
                    "direction": direction,
                    "strategy": name,
                    "seeds": len(mine),
                    "candidates": float(np.mean([o["arrivals"] for o in overall])),
                    "inspections": float(np.mean([o["inspections"] for o in overall])),
                    "illicit": float(np.mean([o["illicit"] for o in overall])),
                    "seizures": float(np.mean([o["seizures"] for o in overall])),
                    **{k: _nanmean([o[k] for o in overall]) for k in ("precision", "recall", "norm_precision", "oracle_precision")},
                }
            )
    schema = {"direction": pl.String, "strategy": pl.String, "seeds": pl.Int64}
    floats = ("candidates", "inspections", "illicit", "seizures", "precision", "recall", "norm_precision", "oracle_precision")
    return pl.DataFrame(rows, schema={**schema, **{c: pl.Float64 for c in floats}})


def direction_markdown(table: pl.DataFrame) -> str:
    """The per-direction table as Markdown (counts per seed with 1 decimal, rates with 3)."""
    headers = list(table.columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|"]
    for row in table.iter_rows(named=True):
        cells = [format_value(float(v), "seized_" if c in ("candidates", "inspections", "illicit", "seizures") else c) if isinstance(v, float) else str(v) for c, v in row.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


# --------------------------------------------------------------------------- outputs


SUMMARY_HEADERS = {
    "strategy": "strategy",
    "seeds": "seeds",
    "inspections": "inspections",
    "seizures": "seizures",
    "precision": "precision",
    "recall": "recall",
    "norm_precision": "norm. precision",
    "norm_precision_last13": "norm. precision, last 13 wk",
}
"""Headline columns of the summary and their display names (the last-13-weeks one shows ``mean ± sd over seeds``)."""
DETAIL_HEADERS = {
    "strategy": "strategy",
    "hit_rate_watchlist": "hit WATCHLIST",
    "hit_rate_rule": "hit RULE",
    "hit_rate_model": "hit MODEL",
    "hit_rate_random": "hit RANDOM",
    **{f"seized_{c.lower()}": c.lower() for c in CATEGORIES},
}
"""Second table: seizures per inspection by selection source, seizures (per seed) by category."""


def format_value(value: object, column: str) -> str:
    """Display text of a summary cell (3 decimals for rates, 1 for per-seed counts, ``-`` for missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        counts = column in ("inspections", "seizures") or column.startswith("seized_")
        return f"{value:,.1f}" if counts else f"{value:.3f}"
    return str(value)


def summary_cells(summary: pl.DataFrame) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    """Headers and display rows of the two summary tables (headline; hit rates and seizures by category)."""
    head = list(SUMMARY_HEADERS)
    rows = []
    for row in summary.iter_rows(named=True):
        cells = [format_value(row[c], c) for c in head]
        sd = row.get("norm_precision_last13_sd")
        if sd is not None and math.isfinite(sd):
            cells[-1] += f" ± {sd:.3f}"
        rows.append(cells)
    detail = list(DETAIL_HEADERS)
    detail_rows = [[format_value(row[c], c) for c in detail] for row in summary.iter_rows(named=True)]
    return [SUMMARY_HEADERS[c] for c in head], rows, [DETAIL_HEADERS[c] for c in detail], detail_rows


def summary_markdown(summary: pl.DataFrame) -> str:
    """The summary as two Markdown tables: headline figures; hit rates by source and seizures by category."""
    head, rows, detail, detail_rows = summary_cells(summary)

    def table(headers: list[str], body: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
        return lines + ["| " + " | ".join(cells) + " |" for cells in body]

    return "\n".join([*table(head, rows), "", *table(detail, detail_rows)]) + "\n"


def _plot_by_week(weekly: pl.DataFrame, column: str, path: Path, *, title: str, ylabel: str, model_week: float | None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    for name in list(dict.fromkeys(weekly.get_column("strategy").to_list())):
        series = (
            weekly.filter(pl.col("strategy") == name)
            .group_by("week")
            .agg(pl.col(column).fill_nan(None).mean())
            .sort("week")
        )
        ax.plot(series.get_column("week").to_numpy(), series.get_column(column).cast(pl.Float64).to_numpy(), marker=".", linewidth=1.4, label=name)
    if model_week is not None:
        ax.axvline(model_week, color="grey", linestyle=":", linewidth=1)
        ax.annotate("first model", (model_week, ax.get_ylim()[1]), xytext=(3, -12), textcoords="offset points", fontsize=8, color="grey")
    ax.set_xlabel("week")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result: BacktestResult, out: Path) -> dict[str, Path]:
    """Write ``summary.csv``, ``summary.md``, ``weekly.csv``, ``trainings.csv`` and the two PNG plots under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    weekly = result.weekly()
    summary = result.summary()
    seeds = ", ".join(str(s) for s in result.seeds)
    model_week = result.config.model_start / 7 if result.config.model_start < result.config.days else None
    paths = {
        "summary_csv": out / "summary.csv",
        "summary_md": out / "summary.md",
        "weekly_csv": out / "weekly.csv",
        "trainings_csv": out / "trainings.csv",
    }
    summary.write_csv(paths["summary_csv"])
    by_direction = direction_table(result.runs, result.config, strategies=result.strategies)
    paths["directions_csv"] = out / "directions.csv"
    by_direction.write_csv(paths["directions_csv"])
    paths["summary_md"].write_text(summary_markdown(summary) + "\nPer direction (evaluation period):\n\n" + direction_markdown(by_direction))
    weekly.write_csv(paths["weekly_csv"])
    trainings_frame(result.runs).write_csv(paths["trainings_csv"])
    paths["norm_precision_png"] = _plot_by_week(
        weekly,
        "norm_precision",
        out / "norm_precision.png",
        title=f"Weekly normalised precision (mean over seeds {seeds})",
        ylabel="normalised precision",
        model_week=model_week,
    )
    paths["cumulative_seizures_png"] = _plot_by_week(
        weekly,
        "cumulative_seizures",
        out / "cumulative_seizures.png",
        title=f"Cumulative seizures (mean over seeds {seeds})",
        ylabel="seizures",
        model_week=model_week,
    )
    return paths


def trainings_frame(runs: Sequence[StrategyRun]) -> pl.DataFrame:
    """One row per retraining: strategy, seed, day, rows, inspected rows, positives, whether a model was trained, seconds."""
    rows = [
        {
            "strategy": r.strategy.name,
            "seed": r.seed,
            "day": t.get("day"),
            "rows": t["rows"],
            "inspected": t.get("inspected", 0),
            "positives": t["positives"],
            "trained": t["trained"],
            "version": t.get("version"),
            "seconds": round(t.get("seconds", 0.0), 3),
        }
        for r in runs
        for t in r.trainings
    ]
    schema = {
        "strategy": pl.String,
        "seed": pl.Int64,
        "day": pl.Int64,
        "rows": pl.Int64,
        "inspected": pl.Int64,
        "positives": pl.Int64,
        "trained": pl.Boolean,
        "version": pl.Int64,
        "seconds": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def metric_key(name: str) -> str:
    """A tracking-safe metric name (``model+10`` -> ``model-10``)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "-", name.replace("+", "-"))


def log_to_mlflow(result: BacktestResult, tracking_uri: str, artifacts: dict[str, Path], *, run_name: str | None = None) -> str:
    """Log the backtest as one parent run with a nested child run per strategy; returns the parent run id.

    Parent: the configuration as parameters, each strategy's headline figures
    as ``<strategy>/<metric>``, the plots, tables and CSVs as artifacts.
    Child (one per strategy): its parameters, weekly metrics as steps (the
    mean over seeds, and ``seed_<s>/<metric>`` per seed when there are
    several), evaluation-period figures as ``overall/<metric>`` and
    ``last13/norm_precision``, and its weekly CSV as an artifact.
    """
    import tempfile

    import mlflow
    from mlflow.entities import Metric

    from models.tracking import configure, ensure_experiment

    client = configure(tracking_uri)
    experiment_id = ensure_experiment(client, EXPERIMENT)
    weekly = result.weekly()
    summary = result.summary()
    cfg = result.config
    name = run_name or f"backtest {cfg.days}d {','.join(cfg.ports)} x{cfg.containers_per_day} seeds {','.join(map(str, result.seeds))}"
    headline = ("precision", "recall", "norm_precision", "norm_precision_last13", "seizures", "inspections")
    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as parent:
        mlflow.log_params({**cfg.as_params(), "strategies": ",".join(s.name for s in result.strategies), "seeds": ",".join(map(str, result.seeds))})
        parent_metrics = {
            f"{metric_key(row['strategy'])}/{k}": row[k] for row in summary.iter_rows(named=True) for k in headline if _finite(row[k])
        }
        by_direction = direction_table(result.runs, cfg, strategies=result.strategies)
        for row in by_direction.iter_rows(named=True):
            for k in ("precision", "recall", "norm_precision", "oracle_precision", "seizures", "inspections"):
                if _finite(row[k]):
                    parent_metrics[f"{metric_key(row['strategy'])}/{row['direction'].lower()}/{k}"] = row[k]
        mlflow.log_metrics(parent_metrics)
        for path in artifacts.values():
            mlflow.log_artifact(str(path))
        for strategy in result.strategies:
            mine = weekly.filter(pl.col("strategy") == strategy.name)
            with mlflow.start_run(experiment_id=experiment_id, run_name=strategy.name, nested=True) as child:
                seeds = ",".join(map(str, result.seeds))
                mlflow.log_params({"strategy": strategy.name, "kind": strategy.kind, "exploration_share": strategy.exploration_share, "seeds": seeds})
                now = int(clock.now().timestamp() * 1000)  # MLflow metric timestamps from the one clock
                metrics = _weekly_metrics(mine, len(result.seeds) > 1, now)
                row = summary.filter(pl.col("strategy") == strategy.name).row(0, named=True)
                for key, value in row.items():
                    if key not in ("strategy", "seeds") and _finite(value):
                        target = "last13/norm_precision" if key == "norm_precision_last13" else f"overall/{key}"
                        metrics.append(Metric(target, float(value), now, 0))
                for row in by_direction.filter(pl.col("strategy") == strategy.name).iter_rows(named=True):
                    for k in ("precision", "recall", "norm_precision", "oracle_precision"):
                        if _finite(row[k]):
                            metrics.append(Metric(f"{row['direction'].lower()}/{k}", float(row[k]), now, 0))
                for i in range(0, len(metrics), 900):
                    client.log_batch(child.info.run_id, metrics=metrics[i : i + 900])
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / f"weekly_{metric_key(strategy.name)}.csv"
                    mine.write_csv(path)
                    mlflow.log_artifact(str(path))
        return parent.info.run_id


def _weekly_metrics(weekly: pl.DataFrame, per_seed: bool, now: int) -> list:
    from mlflow.entities import Metric

    weekly = weekly.with_columns((pl.col("inspected_watchlist") / pl.col("inspections")).alias("watchlist_share"))
    columns = ("precision", "recall", "norm_precision", "inspections", "seizures", "illicit", "cumulative_seizures", "watchlist_share")
    metrics = []
    means = weekly.group_by("week").agg(pl.col(c).cast(pl.Float64).fill_nan(None).mean() for c in columns).sort("week")
    for row in means.iter_rows(named=True):
        metrics += [Metric(c, float(row[c]), now, int(row["week"])) for c in columns if _finite(row[c])]
    if per_seed:
        for row in weekly.sort("seed", "week").iter_rows(named=True):
            metrics += [Metric(f"seed_{row['seed']}/{c}", float(row[c]), now, int(row["week"])) for c in columns if _finite(row[c])]
    return metrics


def _finite(value: object) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(float(value))
