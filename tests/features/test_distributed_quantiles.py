"""Exact order statistics on a Dask cluster (issue 16): the values at ranks and the medians equal Polars' over all rows, bit for bit.

A real ``distributed.LocalCluster`` (two worker processes) reads values from Parquet files written
here: skewed, tied, negative and missing values in groups of very different sizes, some groups
spread over every file. The refinement is also forced through many levels (tiny bins and gathers).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from features import distributed_quantiles as dq
from features.distributed import cluster_client


@pytest.fixture(scope="module")
def dask_client():  # noqa: ANN201 - distributed.Client
    with cluster_client("local", workers=2, threads_per_worker=1) as client:
        yield client


def _frame(seed: int, rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["big", "mid", "tie", "tiny", None], size=rows, p=[0.6, 0.25, 0.1, 0.0005, 0.0495])
    value = np.where(group == "tie", rng.integers(0, 3, rows).astype(float), rng.lognormal(0.0, 2.0, rows) * rng.choice([-1.0, 1.0], rows))
    value = np.where(rng.random(rows) < 0.05, np.nan, value)  # NaN: written as null below, and a few real NaN
    frame = pl.DataFrame({"group": group, "value": value}).with_columns(pl.col("value").fill_nan(None))
    return frame.with_columns(pl.when(pl.int_range(pl.len()) % 997 == 0).then(float("nan")).otherwise(pl.col("value")).alias("value"))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("quantiles")
    paths = []
    for k, rows in enumerate((9_000, 14_000, 1, 6_000)):
        path = root / f"part-{k}.parquet"
        _frame(k, rows).write_parquet(path)
        paths.append(str(path))
    return paths


def _all(files: list[str]) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(f) for f in files])


MEASURES = {
    "by_group": dq.Measure(pl.col("value"), key=pl.col("group")),
    "all_positive": dq.Measure(pl.col("value"), where=pl.col("value") > 0),
}


def _expected_medians(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    usable = pl.col("value").filter(pl.col("value").is_not_null() & pl.col("value").is_not_nan())
    by_group = frame.filter(pl.col("group").is_not_null()).group_by("group").agg(
        pl.len().alias("rows"), usable.len().alias("n"), usable.median().alias("median")
    )
    positive = frame.filter(pl.col("value") > 0).select(pl.len().alias("rows"), usable.len().alias("n"), usable.median().alias("median"))
    return {"by_group": by_group.rename({"group": "g"}).sort("g"), "all_positive": positive.with_columns(pl.lit(dq.ALL).alias("g"))}


@pytest.mark.parametrize("limits", [{}, {"GATHER_ROWS": 8, "MAX_BINS": 3}, {"GATHER_ROWS": 8, "BIN_BUDGET": 4}],
                         ids=["default-bins", "many-levels", "bin-budget"])
def test_grouped_medians_equal_polars_median_over_every_row_bit_for_bit(dask_client, files, limits: dict, monkeypatch) -> None:  # noqa: ANN001
    for name, value in limits.items():  # the driver decides bins and gathers: small limits force many passes
        monkeypatch.setattr(dq, name, value)
    got = dq.grouped_medians(dask_client, files, MEASURES)
    expected = _expected_medians(_all(files))
    for name, frame in expected.items():
        want = frame.select("g", pl.col("rows").cast(pl.Int64), pl.col("n").cast(pl.Int64), "median").sort("g")
        assert got[name].to_dicts() == want.to_dicts(), name


def test_values_at_ranks_are_the_sorted_values_at_those_ranks(dask_client, files, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(dq, "GATHER_ROWS", 64)
    measures = {"by_group": MEASURES["by_group"]}
    counts = dq.group_counts(dask_client, files, measures)
    frame = _all(files).filter(pl.col("group").is_not_null() & pl.col("value").is_not_null() & pl.col("value").is_not_nan())
    wanted, expected = [], []
    for group, part in frame.group_by("group"):
        values = np.sort(part["value"].to_numpy())
        ranks = sorted({0, len(values) - 1, len(values) // 3, *range(0, len(values), max(1, len(values) // 50))})
        wanted += [(group[0], r) for r in ranks]
        expected += [(group[0], r, float(values[r])) for r in ranks]
    got = dq.values_at_ranks(dask_client, files, measures, counts, {"by_group": pl.DataFrame(wanted, schema=["g", "rank"], orient="row")})
    assert got["by_group"].rows() == sorted(expected)


def test_a_centred_measure_gives_the_median_absolute_deviation(dask_client, files) -> None:  # noqa: ANN001
    medians = dq.grouped_medians(dask_client, files, {"by_group": MEASURES["by_group"]})["by_group"]
    centred = {"mad": dq.Measure(pl.col("value"), key=pl.col("group"), center=medians.select("g", pl.col("median").alias("center")))}
    got = dq.grouped_medians(dask_client, files, centred)["mad"]
    frame = _all(files).filter(pl.col("group").is_not_null() & pl.col("value").is_not_null() & pl.col("value").is_not_nan())
    want = frame.group_by("group").agg((pl.col("value") - pl.col("value").median()).abs().median().alias("mad")).sort("group")
    assert got["median"].to_list() == want["mad"].to_list()


def test_a_rank_outside_its_group_is_refused_naming_it(dask_client, files) -> None:  # noqa: ANN001
    measures = {"by_group": MEASURES["by_group"]}
    counts = dq.group_counts(dask_client, files, measures)
    with pytest.raises(ValueError, match="ranks outside"):
        dq.values_at_ranks(dask_client, files, measures, counts, {"by_group": pl.DataFrame({"g": ["tiny"], "rank": [10_000]})})

