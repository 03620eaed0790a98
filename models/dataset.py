"""Training and evaluation rows: the served populations with decision times, labels from inspection outcomes, time splits.

The rows are exactly the populations lists are served for: every candidate
of every port-day in each served direction (:data:`SERVED_DIRECTIONS`), as
:func:`features.candidates.candidates_for_days` defines them (the one
candidate definition serving uses through :mod:`targeting.kernel`), with the
same ``decision_at`` (00:00 UTC of the day the row is due at its ``port``).
A row is keyed by ``manifest_id``, ``port`` and ``direction``.

Only inspected rows have labels, from the inspections *at the row's port*:
``label`` is 1 when an inspection there found contraband (a seizure), 0 when
inspected there without a seizure, null when never inspected there. Random
slice inspections are flagged: they are the only unbiased sample of traffic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

import polars as pl

from features.candidates import DECISION_COLUMN, DIRECTION_COLUMN, PORT_COLUMN, Direction, candidates_for_days, decision_time
from features.history import History

SERVED_DIRECTIONS: tuple[Direction, ...] = (Direction.IMPORT, Direction.TRANSSHIPMENT, Direction.EXPORT)
"""The populations lists are served for (the list route's ``direction``), hence trained and evaluated on."""
ROW_KEY = ("manifest_id", PORT_COLUMN, DIRECTION_COLUMN)


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
        t = pl.col(DECISION_COLUMN)
        at = decision_time
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


def served_rows(
    history: History,
    *,
    start: date | None = None,
    end: date | None = None,
    directions: tuple[Direction, ...] = SERVED_DIRECTIONS,
) -> pl.LazyFrame:
    """Every candidate of every port-day with list date in ``[start, end)``, per direction, as served.

    The manifest columns plus ``decision_at``, ``direction`` and ``port``;
    directions in the given order, each sorted by ``manifest_id`` then ``port``.
    """
    parts = [candidates_for_days(history.manifests, history.events, direction=d, start=start, end=end) for d in directions]
    return pl.concat(parts, how="vertical")


def outcome_labels(outcomes: pl.LazyFrame) -> pl.LazyFrame:
    """Per manifest and inspecting port: ``inspected``, ``label`` (seizure), ``seized_kg``, ``random_slice``, ``selection_source``."""
    return outcomes.group_by("manifest_id", "port").agg(
        pl.lit(True).alias("inspected"),
        (pl.col("result") == "SEIZURE").any().cast(pl.Int8).alias("label"),
        pl.col("quantity_kg").filter(pl.col("result") == "SEIZURE").sum().fill_null(0.0).alias("seized_kg"),
        (pl.col("selection_source") == "RANDOM").any().alias("random_slice"),
        pl.col("selection_source").sort_by("inspected_at").first().alias("selection_source"),
    )


def with_labels(rows: pl.LazyFrame, outcomes: pl.LazyFrame) -> pl.LazyFrame:
    """Attach the labels of the inspections at each row's ``port``; rows never inspected there get ``inspected = False`` and a null label."""
    return rows.join(outcome_labels(outcomes), on=["manifest_id", PORT_COLUMN], how="left", maintain_order="left").with_columns(
        pl.col("inspected").fill_null(False), pl.col("random_slice").fill_null(False), pl.col("seized_kg").fill_null(0.0)
    )


def with_oracle(rows: pl.DataFrame, oracle: pl.DataFrame | None) -> pl.DataFrame:
    """Attach the simulator's hidden truth (``illicit``, ``oracle_kg``) for evaluation only; never a model input.

    With the oracle's ``loaded_at`` (where the drugs went in) an ``EXPORT`` row
    is illicit only when they went in at its port of loading (a rip-on at a
    later hub is not in the container when it is loaded).
    """
    if oracle is None:
        return rows
    loaded = pl.col("loaded_at") if "loaded_at" in oracle.columns else pl.lit(None, dtype=pl.String())
    truth = oracle.select(
        "manifest_id", pl.col("illicit").fill_null(False).alias("__illicit"), pl.col("quantity_kg").fill_null(0.0).alias("__kg"), loaded.alias("__loaded_at")
    )
    joined = rows.join(truth, on="manifest_id", how="left", maintain_order="left")
    illicit = pl.col("__illicit").fill_null(False)
    if DIRECTION_COLUMN in rows.columns:
        export_row = pl.col(DIRECTION_COLUMN) == Direction.EXPORT.value
        not_yet = export_row & pl.col("__loaded_at").is_not_null() & (pl.col("__loaded_at") != pl.col(PORT_COLUMN))
        illicit = illicit & ~not_yet
    return joined.with_columns(illicit.alias("illicit")).with_columns(
        pl.when(pl.col("illicit")).then(pl.col("__kg").fill_null(0.0)).otherwise(0.0).alias("oracle_kg")
    ).drop("__illicit", "__kg", "__loaded_at")
