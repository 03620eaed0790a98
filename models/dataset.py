"""Training and evaluation rows: candidates with decision times, labels from inspection outcomes, time splits.

Every manifest due at its port of discharge is a row, scored at
``decision_at`` = 00:00 UTC of its arrival day (as the daily list would).
Only inspected containers have labels: ``label`` is 1 when an inspection
found contraband (a seizure), 0 when inspected without a seizure, null when
never inspected. Random-slice inspections are flagged: they are the only
unbiased sample of traffic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

import polars as pl

from features.history import History, decision_time_for_arrival, decision_time_for_date


@dataclass(frozen=True)
class TimeSplit:
    """Arrival-date periods: train ``[train_start, train_end)``, validation ``[train_end, valid_end)``, test ``[valid_end, test_end)``.

    Rows before ``train_start`` are history only (they warm up the entity
    features) and never train the model.
    """

    train_start: date
    train_end: date
    valid_end: date
    test_end: date

    def __post_init__(self) -> None:
        if not (self.train_start < self.train_end < self.valid_end < self.test_end):
            raise ValueError(
                f"split dates must increase: train_start {self.train_start} < train_end {self.train_end} "
                f"< valid_end {self.valid_end} < test_end {self.test_end}"
            )

    def as_dict(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in asdict(self).items()}

    @classmethod
    def default_for(cls, first: date, last: date, *, warmup_days: int = 30) -> "TimeSplit":
        """Warm-up, then 65% train / 15% validation / 20% test of the remaining days (last day included)."""
        start = first + timedelta(days=warmup_days)
        total = (last - start).days + 1
        if total < 10:
            raise ValueError(f"need at least {warmup_days + 10} days of arrivals to split, have {(last - first).days + 1}")
        train_end = start + timedelta(days=max(1, int(total * 0.65)))
        valid_end = train_end + timedelta(days=max(1, int(total * 0.15)))
        return cls(start, train_end, valid_end, last + timedelta(days=1))

    def period_of(self) -> pl.Expr:
        """'train' / 'valid' / 'test' / null (warm-up) for a row's ``decision_at``."""
        t = pl.col("decision_at")
        at = decision_time_for_date
        return (
            pl.when((t >= at(self.train_start)) & (t < at(self.train_end)))
            .then(pl.lit("train"))
            .when((t >= at(self.train_end)) & (t < at(self.valid_end)))
            .then(pl.lit("valid"))
            .when((t >= at(self.valid_end)) & (t < at(self.test_end)))
            .then(pl.lit("test"))
            .otherwise(None)
            .alias("period")
        )


def arrival_candidates(history: History, *, start: datetime | None = None, end: datetime | None = None) -> pl.LazyFrame:
    """Manifests due at their port of discharge with ``decision_at`` = 00:00 UTC of the arrival day, filed before it."""
    rows = history.manifests.with_columns(decision_time_for_arrival(pl.col("eta")))
    if start is not None:
        rows = rows.filter(pl.col("decision_at") >= start)
    if end is not None:
        rows = rows.filter(pl.col("decision_at") < end)
    return rows.filter(pl.col("filed_at") < pl.col("decision_at"))


def outcome_labels(outcomes: pl.LazyFrame) -> pl.LazyFrame:
    """Per manifest: ``inspected``, ``label`` (seizure), ``seized_kg``, ``random_slice`` (inspected by the random slice), ``selection_source``."""
    return outcomes.group_by("manifest_id").agg(
        pl.lit(True).alias("inspected"),
        (pl.col("result") == "SEIZURE").any().cast(pl.Int8).alias("label"),
        pl.col("quantity_kg").filter(pl.col("result") == "SEIZURE").sum().fill_null(0.0).alias("seized_kg"),
        (pl.col("selection_source") == "RANDOM").any().alias("random_slice"),
        pl.col("selection_source").sort_by("inspected_at").first().alias("selection_source"),
    )


def with_labels(rows: pl.LazyFrame, outcomes: pl.LazyFrame) -> pl.LazyFrame:
    """Attach outcome labels; uninspected rows get ``inspected = False`` and a null label."""
    return rows.join(outcome_labels(outcomes), on="manifest_id", how="left", maintain_order="left").with_columns(
        pl.col("inspected").fill_null(False), pl.col("random_slice").fill_null(False), pl.col("seized_kg").fill_null(0.0)
    )


def with_oracle(rows: pl.DataFrame, oracle: pl.DataFrame | None) -> pl.DataFrame:
    """Attach the simulator's hidden truth (``illicit``, ``oracle_kg``) for evaluation only; never a model input."""
    if oracle is None:
        return rows
    truth = oracle.select("manifest_id", pl.col("illicit").fill_null(False), pl.col("quantity_kg").fill_null(0.0).alias("oracle_kg"))
    return rows.join(truth, on="manifest_id", how="left", maintain_order="left").with_columns(
        pl.col("illicit").fill_null(False), pl.col("oracle_kg").fill_null(0.0)
    )
