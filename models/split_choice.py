"""A time split chosen from the data, so training works from a unit's first weeks of outcomes.

With a long history (at least 40 days of arrivals) the split is the usual
one (:meth:`models.dataset.TimeSplit.default_for`: 30 warm-up days, then
65% / 15% / 20% of the remaining days) unless that leaves too few seizures
to train on. With a shorter history (or too few seizures in that training
period) the validation and test periods are placed at the quantiles of the
seizures' arrival days, so each period holds seizures when there are enough
of them; a short history's warm-up shrinks to about a sixth of its days. Either way the seizures of each period
are counted and the choice says plainly when there are too few: too few to
train is an error (:class:`TooFewSeizuresError`), too few to evaluate is a
warning (the model trains and registers; its test metrics are undefined and
promotion refuses it).

Time semantics: a row belongs to the period of its list day (``decision_at`` =
00:00 UTC of the day it is due at its port: arrival for ``IMPORT``, call for
``TRANSSHIPMENT``, departure for ``EXPORT``); a seizure counts on the list day
of the training row it labels (:func:`seizure_days`), so the counts per
period are the seizures training and evaluation see.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import polars as pl

from features.candidates import DECISION_COLUMN, PORT_COLUMN
from features.data.handling import matching_outcomes
from features.history import History
from models.dataset import TimeSplit, served_rows

MIN_DAYS = 7
"""Fewest days of arrivals a split is chosen for (one warm-up day, then train, validation and test days)."""
LONG_HISTORY_DAYS = 40
"""From this many days of arrivals on, the usual split with a 30-day warm-up is used."""
MIN_TRAIN_SEIZURES = 3
"""Fewest seizures in the training period for a model to learn anything but the base rate."""
MIN_TEST_SEIZURES = 1
"""Fewest seizures in the test period for precision, recall and PR-AUC to be defined."""


class TooFewSeizuresError(ValueError):
    """The lake holds too few seizures (or days) to train a model; lists keep coming from watchlist, rules and random."""


@dataclass(frozen=True)
class SplitChoice:
    """The chosen split, how it was chosen, the seizures per period and any warnings."""

    split: TimeSplit
    how: str
    seizures: dict[str, int]
    warnings: tuple[str, ...] = field(default=())


def arrival_days(history: History) -> tuple[date, date]:
    """First and last arrival (ETA) days in ``history``; ``ValueError`` when it has no manifests."""
    bounds = history.manifests.select(pl.col("eta").min().alias("lo"), pl.col("eta").max().alias("hi")).collect()
    if bounds["lo"][0] is None:
        raise ValueError("the lake holds no manifests: ingest data first")
    return bounds["lo"][0].date(), bounds["hi"][0].date()


def seizure_days(history: History) -> list[date]:
    """List day (``decision_at``) of every seized training row, sorted: one entry per row, not per manifest.

    The rows are those training uses (:func:`models.dataset.served_rows`, each
    served direction, labelled as :func:`models.dataset.with_labels` labels
    them from outcomes that match their manifest): a container seized at its
    port of loading counts on its departure day (its ``EXPORT`` row), one
    seized at its port of discharge on its arrival day (its ``IMPORT`` row).
    """
    matching, _ = matching_outcomes(history.outcomes, history.manifests)
    seized = matching.filter(pl.col("result") == "SEIZURE").select("manifest_id", PORT_COLUMN).unique()
    manifests = history.manifests.join(seized.select("manifest_id").unique(), on="manifest_id", how="semi").collect()
    # only the seized containers' events (a filter the scan applies: memory of the seizures, not of the lake)
    containers = manifests.get_column("container_number").unique()
    events = history.events.filter(pl.col("container_number").is_in(containers)) if history.events is not None else None
    rows = served_rows(dataclasses.replace(history, manifests=manifests.lazy(), events=events))
    days = rows.join(seized, on=["manifest_id", PORT_COLUMN], how="semi").select(pl.col(DECISION_COLUMN).dt.date().alias("day")).collect()
    return sorted(days["day"].to_list())


def _fraction_split(start: date, last: date) -> TimeSplit:
    """65% / 15% / 20% of the days from ``start`` to ``last`` (inclusive), at least one day each."""
    total = (last - start).days + 1
    valid_days, test_days = max(1, round(total * 0.15)), max(1, round(total * 0.20))
    train_days = total - valid_days - test_days
    train_end = start + timedelta(days=train_days)
    valid_end = train_end + timedelta(days=valid_days)
    return TimeSplit(start, train_end, valid_end, last + timedelta(days=1))


def _seizure_quantile_split(start: date, last: date, seized: list[date]) -> TimeSplit | None:
    """Validation and test periods starting at seizure quantiles (about 15% and 20% of them, training keeping at least
    :data:`MIN_TRAIN_SEIZURES`); ``None`` when impossible."""
    n = len(seized)
    if n < MIN_TRAIN_SEIZURES + 1:
        return None
    k_test = max(1, math.floor(0.2 * n))
    k_valid = max(1, math.floor(0.15 * n)) if n >= MIN_TRAIN_SEIZURES + 2 else 0  # else validation may hold none (warned)
    in_train = max(MIN_TRAIN_SEIZURES, n - k_test - k_valid)
    valid_end = seized[n - k_test]
    train_end = seized[in_train - 1] + timedelta(days=1)  # the day after the training period's last seizure
    if not start < train_end < valid_end <= last:
        return None
    return TimeSplit(start, train_end, valid_end, last + timedelta(days=1))


def count_seizures(split: TimeSplit, seized: list[date]) -> dict[str, int]:
    """Seizures per period: ``warmup`` (before ``train_start``), ``train``, ``valid``, ``test``."""
    counts = {"warmup": 0, "train": 0, "valid": 0, "test": 0}
    for day in seized:
        if day < split.train_start:
            counts["warmup"] += 1
        elif day < split.train_end:
            counts["train"] += 1
        elif day < split.valid_end:
            counts["valid"] += 1
        elif day < split.test_end:
            counts["test"] += 1
    return counts


def choose_split(history: History, *, warmup_days: int | None = None, split: TimeSplit | None = None) -> SplitChoice:
    """The split for ``history`` (or the given ``split``), with its seizure counts; see the module docstring.

    Raises
    ------
    TooFewSeizuresError
        Fewer than :data:`MIN_DAYS` days of arrivals, or fewer than
        :data:`MIN_TRAIN_SEIZURES` seizures in the training period.
    ValueError
        The lake holds no manifests, or ``warmup_days`` leaves fewer than 3 days to split.
    """
    first, last = arrival_days(history)
    days = (last - first).days + 1
    seized = seizure_days(history)
    if split is not None:
        how = "given on the command line"
    elif days < MIN_DAYS:
        raise TooFewSeizuresError(f"too few days to train: {days} day(s) of arrivals ({first}..{last}), at least {MIN_DAYS} needed")
    elif warmup_days is None and days >= LONG_HISTORY_DAYS:
        split, how = TimeSplit.default_for(first, last, warmup_days=30), "30 warm-up days, then 65/15/20% of the days"
        if count_seizures(split, seized)["train"] < MIN_TRAIN_SEIZURES:  # seizures late in the history: follow them
            start = split.train_start
            by_seizures = _seizure_quantile_split(start, last, [d for d in seized if d >= start])
            if by_seizures is not None:
                split, how = by_seizures, "30 warm-up days, validation and test starting at seizure quantiles"
    else:
        warm = warmup_days if warmup_days is not None else max(1, days // 6)
        if days - warm < 3:
            raise ValueError(f"--warmup-days {warm} leaves {days - warm} of {days} days of arrivals; at least 3 are needed to split")
        start = first + timedelta(days=warm)
        split = _seizure_quantile_split(start, last, [d for d in seized if d >= start])
        how = f"{warm} warm-up day(s), validation and test starting at seizure quantiles"
        if split is None:
            split, how = _fraction_split(start, last), f"{warm} warm-up day(s), then 65/15/20% of the days"
    counts = count_seizures(split, seized)
    if counts["train"] < MIN_TRAIN_SEIZURES:
        raise TooFewSeizuresError(
            f"too few seizures to train: {counts['train']} in the training period {split.train_start}..{split.train_end - timedelta(days=1)} "
            f"(at least {MIN_TRAIN_SEIZURES} needed; {len(seized)} recorded in {days} days of arrivals). Keep recording outcomes: "
            "until a model is trained, lists come from the watchlist, the rule profiles and the random slice"
        )
    warnings = []
    if counts["test"] < MIN_TEST_SEIZURES:
        warnings.append(
            f"too few seizures to evaluate: none in the test period {split.valid_end}..{split.test_end - timedelta(days=1)}; "
            "the model is trained and registered, but its test metrics are undefined and promotion will refuse it"
        )
    if counts["valid"] == 0:
        warnings.append(f"no seizure in the validation period {split.train_end}..{split.valid_end - timedelta(days=1)}: early stopping sees only negatives")
    return SplitChoice(split, how, counts, tuple(warnings))
