"""Drift benchmark outputs: figures over seeds (mean, min, max), CSV and Markdown tables, plots, and the issue's targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from targeting.evaluation.drift.config import ORDINARY, new_pattern
from targeting.evaluation.drift.metrics import ALL

KEYS = ("scenario", "mode", "phase", "pattern", "metric")
TARGET_RECALL = 0.5
TARGET_DROP = 0.15


def aggregate(records: pl.DataFrame) -> pl.DataFrame:
    """One row per scenario, mode, phase, pattern and metric: ``mean``, ``min``, ``max`` over seeds, ``seeds`` with a value, ``missing`` (NaN: e.g. never seized).

    ``days_to_first`` of a seed that never found the pattern within the window is NaN and counted in ``missing``, not averaged.
    """
    finite = pl.col("value").is_not_nan() & pl.col("value").is_not_null()
    return (
        records.group_by(list(KEYS), maintain_order=True)
        .agg(
            pl.col("value").filter(finite).mean().alias("mean"),
            pl.col("value").filter(finite).min().alias("min"),
            pl.col("value").filter(finite).max().alias("max"),
            finite.sum().alias("seeds"),
            (~finite).sum().alias("missing"),
        )
        .sort(list(KEYS), maintain_order=True)
    )


def _lookup(agg: pl.DataFrame, **keys) -> dict | None:
    found = agg.filter(*(pl.col(k) == v for k, v in keys.items()))
    return found.row(0, named=True) if found.height else None


def cell(row: dict | None, *, digits: int = 2) -> str:
    """``mean (min-max)`` of an aggregated row; ``-`` when absent; a ``never in N`` note for missing seeds."""
    if row is None or row["mean"] is None:
        return "-" if row is None or not row["missing"] else f"never ({row['missing']} seeds)"
    text = f"{row['mean']:.{digits}f}"
    if row["seeds"] > 1:
        text += f" ({row['min']:.{digits}f}-{row['max']:.{digits}f})"
    if row["missing"]:
        text += f", never in {row['missing']}"
    return text


HEADLINE = (
    ("new R@1 frozen", dict(mode="frozen", phase="after", pattern="new", metric="recall@1")),
    ("new R@5 frozen", dict(mode="frozen", phase="after", pattern="new", metric="recall@5")),
    ("new recall, replay lists", dict(mode="replay", phase="after", pattern="new", metric="list_recall")),
    ("days to 1st seizure, replay", dict(mode="replay", phase="after", pattern="new", metric="days_to_first")),
    ("NP@1 frozen before", dict(mode="frozen", phase="before", pattern=ALL, metric="norm_precision@1")),
    ("NP@1 frozen after", dict(mode="frozen", phase="after", pattern=ALL, metric="norm_precision@1")),
    ("NP replay before", dict(mode="replay", phase="before", pattern=ALL, metric="list_norm_precision")),
    ("NP replay after", dict(mode="replay", phase="after", pattern=ALL, metric="list_norm_precision")),
)


def headline_markdown(agg: pl.DataFrame, scenarios: Sequence[str]) -> str:
    """One row per scenario: the new pattern's recall (frozen at 1 % and 5 %, replay lists), days to its first seizure, normalised precision before and after."""
    head = ["scenario", *(name for name, _ in HEADLINE)]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for scenario in scenarios:
        cells = [scenario]
        for _, keys in HEADLINE:
            pattern = new_pattern(scenario) if keys["pattern"] == "new" else keys["pattern"]
            cells.append("-" if pattern is None else cell(_lookup(agg, scenario=scenario, **{**keys, "pattern": pattern})))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PATTERN_COLUMNS = (
    ("illicit rows (after)", "frozen", "after", "rows", 1),
    ("R@1 frozen before", "frozen", "before", "recall@1", 2),
    ("R@1 frozen after", "frozen", "after", "recall@1", 2),
    ("R@5 frozen after", "frozen", "after", "recall@5", 2),
    ("list recall frozen after", "frozen", "after", "list_recall", 2),
    ("list recall replay before", "replay", "before", "list_recall", 2),
    ("list recall replay after", "replay", "after", "list_recall", 2),
)


def pattern_markdown(agg: pl.DataFrame, scenario: str) -> str:
    """Per pattern of ``scenario`` (``all``, the new pattern, every method): recall before and after, frozen and replay."""
    patterns = agg.filter(pl.col("scenario") == scenario).get_column("pattern").unique(maintain_order=True).to_list()
    new = new_pattern(scenario)
    ordered = [p for p in (ALL, new) if p in patterns] + sorted(p for p in patterns if p not in (ALL, new))
    head = ["pattern", *(c[0] for c in PATTERN_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for pattern in ordered:
        cells = [f"**{pattern}**" if pattern == new else pattern]
        for _, mode, phase, metric, digits in PATTERN_COLUMNS:
            cells.append(cell(_lookup(agg, scenario=scenario, mode=mode, phase=phase, pattern=pattern, metric=metric), digits=digits))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TargetCheck:
    """One target of the issue, measured: ``met`` is None when it could not be measured."""

    name: str
    value: float | None
    threshold: float | None
    met: bool | None
    detail: str


def _mean(agg: pl.DataFrame, **keys) -> float | None:
    row = _lookup(agg, **keys)
    return None if row is None or row["mean"] is None else float(row["mean"])


def check_targets(agg: pl.DataFrame, scenarios: Sequence[str], *, reference_ordinary: float | None = None) -> list[TargetCheck]:
    """The issue's targets on the frozen model (means over seeds).

    Per scenario: recall at 1 % of its new pattern after the change ``>= 0.5``;
    normalised precision at 1 % after the change at least that before it minus
    0.15. Ordinary world: normalised precision at 1 % after the change day not
    below ``reference_ordinary`` (the current model's, same world; skipped when ``None``).
    """
    checks = []
    for scenario in scenarios:
        if scenario == ORDINARY:
            value = _mean(agg, scenario=scenario, mode="frozen", phase="after", pattern=ALL, metric="norm_precision@1")
            if reference_ordinary is not None:
                met = None if value is None else value >= reference_ordinary - 1e-9
                checks.append(TargetCheck("ordinary NP@1 not below the current model", value, reference_ordinary, met, f"current model {reference_ordinary:.3f}"))
            continue
        recall = _mean(agg, scenario=scenario, mode="frozen", phase="after", pattern=new_pattern(scenario), metric="recall@1")
        checks.append(TargetCheck(f"{scenario}: new pattern R@1 after", recall, TARGET_RECALL, None if recall is None else recall >= TARGET_RECALL, ""))
        before = _mean(agg, scenario=scenario, mode="frozen", phase="before", pattern=ALL, metric="norm_precision@1")
        after = _mean(agg, scenario=scenario, mode="frozen", phase="after", pattern=ALL, metric="norm_precision@1")
        met = None if before is None or after is None else after >= before - TARGET_DROP
        floor = None if before is None else before - TARGET_DROP
        checks.append(TargetCheck(f"{scenario}: NP@1 after within 0.15 of before", after, floor, met, "" if before is None else f"before {before:.3f}"))
    return checks


def targets_markdown(checks: Sequence[TargetCheck]) -> str:
    lines = ["| target | measured | threshold | met | |", "|---|---:|---:|---|---|"]
    for c in checks:
        value = "-" if c.value is None or math.isnan(c.value) else f"{c.value:.3f}"
        limit = "-" if c.threshold is None else f"{c.threshold:.3f}"
        met = "n/a" if c.met is None else ("yes" if c.met else f"no (by {abs(c.threshold - c.value):.3f})" if c.value is not None else "no")
        lines.append(f"| {c.name} | {value} | {limit} | {met} | {c.detail} |")
    return "\n".join(lines) + "\n"


PLOT_MODES = (("frozen", "tab:blue"), ("frozen+integrity", "tab:green"), ("replay", "tab:orange"))
"""Curves drawn per panel when present (``frozen+integrity``: the frozen model's lists with an integrity slice)."""


def recall_plot(curves: pl.DataFrame, scenarios: Sequence[str], path: Path) -> Path | None:
    """Cumulative recall of each scenario's new pattern by day after the change, frozen vs replay (mean over seeds, min-max band); ``None`` without curves."""
    shown = [s for s in scenarios if s != ORDINARY and curves.filter(pl.col("scenario") == s).height]
    if not shown:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(shown))
    rows = -(-len(shown) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False, sharey=True)
    for ax, scenario in zip(axes.flat, shown):
        for mode, colour in PLOT_MODES:
            part = curves.filter((pl.col("scenario") == scenario) & (pl.col("mode") == mode) & pl.col("recall").is_not_nan())
            if part.height == 0:
                continue
            by_day = part.group_by("day_after").agg(pl.col("recall").mean().alias("m"), pl.col("recall").min().alias("lo"), pl.col("recall").max().alias("hi")).sort("day_after")
            x = by_day.get_column("day_after").to_numpy()
            ax.plot(x, by_day.get_column("m").to_numpy(), color=colour, label=f"{mode} (mean)")
            ax.fill_between(x, by_day.get_column("lo").to_numpy(), by_day.get_column("hi").to_numpy(), color=colour, alpha=0.2)
        ax.axhline(TARGET_RECALL, color="grey", linestyle=":", linewidth=1)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel("days after the change")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0, max(int(curves.get_column("day_after").max()), 1))
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    axes[0][0].set_ylabel("cumulative recall of the new pattern\n(daily lists at 1 %)")
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(
    records: pl.DataFrame,
    curves: pl.DataFrame,
    scenarios: Sequence[str],
    out: Path,
    *,
    reference_ordinary: float | None = None,
    features: Sequence[str] | None = None,
) -> dict[str, Path]:
    """``records.csv`` (per seed), ``summary.csv`` (over seeds), ``curves.csv``, ``summary.md`` (headline, targets, per-pattern tables),
    ``new_pattern_recall.png`` and, given the models' ``features``, ``features.txt`` (one column name a line) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(records)
    paths = {"records": out / "records.csv", "summary_csv": out / "summary.csv", "curves": out / "curves.csv", "summary_md": out / "summary.md"}
    records.write_csv(paths["records"])
    agg.write_csv(paths["summary_csv"])
    curves.write_csv(paths["curves"])
    text = ["Headline (frozen: model trained before the change; replay: daily lists with retraining):", "", headline_markdown(agg, scenarios)]
    text += ["Targets (frozen model, means over seeds):", "", targets_markdown(check_targets(agg, scenarios, reference_ordinary=reference_ordinary))]
    for scenario in scenarios:
        text += [f"Per pattern, {scenario}:", "", pattern_markdown(agg, scenario)]
    paths["summary_md"].write_text("\n".join(text))
    if features is not None:
        paths["features"] = out / "features.txt"
        paths["features"].write_text("\n".join(features) + "\n")
    plot = recall_plot(curves, scenarios, out / "new_pattern_recall.png")
    if plot is not None:
        paths["plot"] = plot
    return paths
