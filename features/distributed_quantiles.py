"""Exact order statistics of grouped values spread over Parquet files, selected by Dask workers.

Optional: needs ``dask`` and ``distributed``. What the cluster path uses to fit medians, median
absolute deviations and quantile grids on a national training set without the driver ever holding
the values: the driver holds per group a count, a minimum and a maximum, then per wanted rank an
interval and a histogram of it, and at the end only the few values of intervals small enough to
gather (at most :data:`GATHER_ROWS` each).

Selection by histogram refinement: for every wanted (group, rank) the driver keeps the closed
interval ``[lo, hi]`` of values that holds it and its rank among the values in that interval
(first: the group's minimum and maximum and the rank itself). A pass over the files counts each
interval's values in equal-width bins, with each bin's smallest and largest value; the wanted rank
moves to the bin that holds it. Binning is monotone in the value (IEEE subtraction, division and
floor are), so a bin's values are exactly the values in ``[its min, its max]``: an interval whose
min equals its max is answered, one of at most :data:`GATHER_ROWS` values is gathered and sorted.
Values are compared and counted, never summed: the answer is the value at that rank of the
group's sorted values, bit for bit, whatever the number of files or workers.

Rows whose key is null are left out (as the statistics leave out null groups); rows whose value is
null or NaN are not values (they count in ``rows`` only). No time semantics: the files are what
the caller staged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl

ALL = "\x00all"
"""Group of every row when a measure has no key."""
GATHER_ROWS = 256
"""An interval holding at most this many values is gathered and sorted on the driver (a refined interval holds about a quarter)."""
MAX_BINS = 4096
BIN_BUDGET = 1 << 18
"""Bins of one measure's histogram pass, all its intervals together (a pass's result, whatever the rows: at most this many rows)."""
FAN_IN = 8
"""Per-file counts and histograms are merged on the workers, this many at a time, until one is left for the driver."""
MAX_LEVELS = 8
"""Refinements before an interval is gathered whatever its size (only reached by values spanning the whole float range)."""


@dataclass(frozen=True)
class Measure:
    """One grouped quantity read from each file: ``value`` (Float64) per row, grouped by ``key``.

    ``where`` keeps rows first; ``center`` (columns ``g``, ``center``) turns each value into its
    absolute distance from its group's centre (groups without a centre are left out).
    """

    value: pl.Expr
    key: pl.Expr | None = None
    where: pl.Expr | None = None
    center: pl.DataFrame | None = None


Measures = Mapping[str, Measure]
Frames = dict[str, pl.DataFrame]


def _rows(path: str, measure: Measure) -> pl.LazyFrame:
    """``g`` and ``v`` of every row of ``path`` the measure keeps (``v`` may be null)."""
    scan = pl.scan_parquet(path)
    if measure.where is not None:
        scan = scan.filter(measure.where)
    key = measure.key.cast(pl.String) if measure.key is not None else pl.lit(ALL)
    # with_columns, not select: a literal key or value is one per row, not one row
    frame = scan.with_columns(key.alias("g"), measure.value.cast(pl.Float64).alias("v")).select("g", "v").filter(pl.col("g").is_not_null())
    if measure.center is not None:
        centers = measure.center.lazy().select(pl.col("g").cast(pl.String), pl.col("center").cast(pl.Float64))
        frame = frame.join(centers, on="g", how="inner").select("g", (pl.col("v") - pl.col("center")).abs().alias("v"))
    return frame


def _usable() -> pl.Expr:
    return pl.col("v").is_not_null() & pl.col("v").is_not_nan()


def _in_intervals(path: str, measure: Measure, intervals: pl.DataFrame) -> pl.LazyFrame:
    """The usable values of ``path`` that fall in one of the (disjoint) ``intervals`` of their group, with that interval."""
    values = _rows(path, measure).filter(_usable()).sort("v")
    bounds = intervals.lazy().sort("lo")
    joined = values.join_asof(bounds, left_on="v", right_on="lo", by="g", strategy="backward", check_sortedness=False)
    return joined.filter(pl.col("v") <= pl.col("hi"))


def _count_file(path: str, measures: Measures) -> Frames:
    """On a worker: per measure and group, the rows kept, the usable values and their minimum and maximum."""
    return {
        name: _rows(path, m).group_by("g").agg(
            pl.len().alias("rows"), _usable().sum().alias("n"), pl.col("v").filter(_usable()).min().alias("lo"),
            pl.col("v").filter(_usable()).max().alias("hi"),
        ).collect()
        for name, m in measures.items()
    }


def _histogram_file(path: str, measures: Measures, intervals: Frames) -> Frames:
    """On a worker: per measure and interval ``(g, lo)``, each bin's count, smallest and largest value."""
    out = {}
    for name, table in intervals.items():
        width = pl.col("hi") - pl.col("lo")
        index = ((pl.col("v") - pl.col("lo")) / width * pl.col("bins")).floor().clip(0, pl.col("bins") - 1).cast(pl.Int32)
        out[name] = _in_intervals(path, measures[name], table).group_by("g", "lo", index.alias("bin")).agg(
            pl.len().alias("n"), pl.col("v").min().alias("bmin"), pl.col("v").max().alias("bmax")
        ).collect()
    return out


def _gather_file(path: str, measures: Measures, intervals: Frames) -> Frames:
    """On a worker: per measure, the values in the intervals (``g``, ``lo``, ``v``)."""
    return {name: _in_intervals(path, measures[name], table).select("g", "lo", "v").collect() for name, table in intervals.items()}


def _on_files(client, files: Sequence[str], work: Callable, *args) -> list:  # noqa: ANN001
    """Futures of ``work(file, *args)`` for every file (``args`` sent to every worker once)."""
    shared = client.scatter(list(args), broadcast=True, hash=False) if args else []
    return [client.submit(work, f, *shared, pure=False) for f in files]


def _merge(merges: dict[str, tuple[list[str], list[pl.Expr]]], *parts: Frames) -> Frames:
    """Per measure, the parts' frames combined: grouped by its keys with its aggregations, sorted."""
    out = {}
    for name, (by, aggs) in merges.items():
        frame = pl.concat([p[name] for p in parts], how="vertical")
        out[name] = frame.with_columns(pl.col(c).cast(pl.Int64) for c in ("rows", "n") if c in frame.columns).group_by(by).agg(aggs).sort(by)
    return out


def _reduced(client, futures: list, merges: dict[str, tuple[list[str], list[pl.Expr]]]) -> Frames:  # noqa: ANN001
    """The per-file results merged on the workers, :data:`FAN_IN` at a time (a tree): the driver receives one merged result."""
    while len(futures) > 1:
        futures = [client.submit(_merge, merges, *futures[k:k + FAN_IN], pure=False) for k in range(0, len(futures), FAN_IN)]
    return client.submit(_merge, merges, *futures, pure=False).result()


def group_counts(client, files: Sequence[str], measures: Measures) -> Frames:  # noqa: ANN001
    """Per measure: ``g``, ``rows`` (rows kept), ``n`` (usable values), ``lo`` and ``hi`` (their min and max), sorted by ``g``."""
    aggs = [pl.col("rows").sum(), pl.col("n").sum(), pl.col("lo").min(), pl.col("hi").max()]
    return _reduced(client, _on_files(client, files, _count_file, dict(measures)), {name: (["g"], aggs) for name in measures})


def values_at_ranks(client, files: Sequence[str], measures: Measures, counts: Frames, wanted: Frames) -> Frames:  # noqa: ANN001
    """Per measure, the value at each wanted 0-based ``rank`` of its group's sorted usable values.

    ``counts``: :func:`group_counts`' answer; ``wanted``: per measure ``g`` and ``rank`` (each in
    ``[0, n)`` of its group). Returns per measure ``g``, ``rank``, ``value``, sorted.
    """
    targets = {name: _start(wanted[name], counts[name]) for name in wanted}
    answered: dict[str, list[pl.DataFrame]] = {name: [] for name in wanted}
    for level in range(MAX_LEVELS + 1):
        # answered: one value in the interval; gathered: few values (or refined often enough); the others are refined
        small = (pl.col("cnt") <= GATHER_ROWS) | pl.lit(level == MAX_LEVELS)
        for name, table in targets.items():
            answered[name].append(table.filter(pl.col("lo") == pl.col("hi")).select("g", "rank", pl.col("lo").alias("value")))
        open_targets = {name: t.filter(pl.col("lo") != pl.col("hi")) for name, t in targets.items()}
        gather = {name: t.filter(small) for name, t in open_targets.items()}
        if any(t.height for t in gather.values()):
            for name, found in _gathered(client, files, measures, gather).items():
                answered[name].append(found)
        targets = {name: t.filter(~small) for name, t in open_targets.items()}
        if not any(t.height for t in targets.values()):
            break
        targets = _refined(client, files, measures, targets)
    return {name: pl.concat(parts, how="vertical").sort("g", "rank") for name, parts in answered.items()}


def _start(wanted: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    """Targets: ``g``, ``rank``, interval ``lo``..``hi`` holding ``cnt`` values, ``r`` the rank within it."""
    table = wanted.select(pl.col("g").cast(pl.String), pl.col("rank").cast(pl.Int64)).unique().join(counts, on="g", how="inner")
    bad = table.filter((pl.col("rank") < 0) | (pl.col("rank") >= pl.col("n")))
    if bad.height or table.height != wanted.select("g", "rank").unique().height:
        raise ValueError(f"ranks outside their group's values: {bad.head(3).to_dicts() or 'unknown group'}")
    return table.select("g", "rank", "lo", "hi", pl.col("n").alias("cnt"), pl.col("rank").alias("r"))


def _intervals(targets: Frames, *, with_bins: bool) -> Frames:
    out = {}
    for name, t in targets.items():
        table = t.select("g", "lo", "hi", "cnt").unique(["g", "lo"])
        if with_bins:  # about a quarter of GATHER_ROWS per bin, and at most BIN_BUDGET bins in all: a histogram's size is bounded
            most = max(2, min(MAX_BINS, BIN_BUDGET // max(1, table.height)))
            bins = (pl.col("cnt") * 4 // GATHER_ROWS + 1).clip(2, most).cast(pl.Float64)
            table = table.with_columns(bins.alias("bins"))
        out[name] = table.drop("cnt")
    return out


def _refined(client, files: Sequence[str], measures: Measures, targets: Frames) -> Frames:  # noqa: ANN001
    """One histogram pass: every target moves to the bin of its interval that holds its rank."""
    intervals = _intervals(targets, with_bins=True)
    aggs = [pl.col("n").sum(), pl.col("bmin").min(), pl.col("bmax").max()]
    merged = _reduced(client, _on_files(client, files, _histogram_file, dict(measures), intervals), {name: (["g", "lo", "bin"], aggs) for name in targets})
    out = {}
    for name, t in targets.items():
        if t.height == 0:
            out[name] = t
            continue
        hist = merged[name]
        hist = hist.with_columns((pl.col("n").cum_sum().over("g", "lo") - pl.col("n")).alias("start")).sort("start")
        moved = t.sort("r").join_asof(hist, left_on="r", right_on="start", by=["g", "lo"], strategy="backward",
                                          check_sortedness=False)  # sorted globally, so within every group
        out[name] = moved.select("g", "rank", pl.col("bmin").alias("lo"), pl.col("bmax").alias("hi"), pl.col("n").alias("cnt"),
                                 (pl.col("r") - pl.col("start")).alias("r"))
    return out


def _gathered(client, files: Sequence[str], measures: Measures, targets: Frames) -> Frames:  # noqa: ANN001
    """One gather pass: the values of the targets' intervals, sorted, each target answered by its rank within."""
    intervals = {name: t for name, t in _intervals(targets, with_bins=False).items() if t.height}
    parts = client.gather(_on_files(client, files, _gather_file, dict(measures), intervals))
    out = {}
    for name in intervals:
        values = pl.concat([p[name] for p in parts], how="vertical").sort("g", "lo", "v")
        values = values.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over("g", "lo").alias("r"))
        out[name] = targets[name].join(values, on=["g", "lo", "r"], how="left").select("g", "rank", pl.col("v").alias("value"))
        if out[name]["value"].null_count():
            raise AssertionError(f"{name}: {out[name]['value'].null_count()} ranks not found among their interval's values")
    return out


def grouped_medians(client, files: Sequence[str], measures: Measures) -> Frames:  # noqa: ANN001
    """Per measure: ``g``, ``rows``, ``n`` and the ``median`` of its usable values (Polars' median, bit for bit; null when ``n`` is 0)."""
    counts = group_counts(client, files, measures)
    wanted = {
        name: pl.concat([c.select("g", ((pl.col("n") - 1) // 2).alias("rank")), c.select("g", (pl.col("n") // 2).alias("rank"))]).filter(
            pl.col("rank") >= 0
        )
        for name, c in counts.items()
    }
    ranked = values_at_ranks(client, files, measures, counts, wanted)
    out = {}
    for name, c in counts.items():
        low = c.select("g", ((pl.col("n") - 1) // 2).alias("rank")).join(ranked[name], on=["g", "rank"], how="left", maintain_order="left")
        high = c.select("g", (pl.col("n") // 2).alias("rank")).join(ranked[name], on=["g", "rank"], how="left", maintain_order="left")
        # the median of the two middle values computed as Polars computes a median: the same bits as over the whole group
        pair = pl.DataFrame({"a": low["value"], "b": high["value"]}, schema={"a": pl.Float64, "b": pl.Float64})
        out[name] = c.select("g", "rows", "n").with_columns(pair.select(pl.concat_list("a", "b").list.median().alias("median")).to_series())
    return out
