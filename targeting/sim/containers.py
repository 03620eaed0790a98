"""Container numbers of simulated shipments: real-looking ISO 6346 numbers, reused across trips."""

from __future__ import annotations

import numpy as np
import polars as pl

from features.data.checks import iso6346_check_digit_expr
from targeting.sim.catalogue import CONTAINER_OWNERS, REEFER_OWNERS


def assign_containers(manifests: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Give each manifest a real-looking ISO 6346 container number, reusing containers across trips.

    Containers cycle through a pool sized to ~75 days of arrivals per equipment
    type, so one container's trips never overlap.
    """
    ordered = manifests.with_columns(pl.col("reefer").alias("_pool")).with_row_index("_i")
    ranked = ordered.with_columns(pl.col("eta").rank("ordinal").over("_pool").cast(pl.Int64).alias("_k"))
    days = max(1, int((manifests["eta"].max() - manifests["eta"].min()).days) + 1) if manifests.height else 1
    per_pool = ranked.group_by("_pool").agg(pl.len().alias("_n"))
    ranked = ranked.join(per_pool, on="_pool").with_columns(
        (pl.col("_n") * 75 // days).clip(lower_bound=50).alias("_size")
    ).with_columns((pl.col("_k") % pl.col("_size")).alias("_slot"))
    owners_dry = np.array(CONTAINER_OWNERS)
    owners_reefer = np.array(REEFER_OWNERS)
    serial_base = int(rng.integers(100_000, 400_000))
    ranked = ranked.with_columns(
        pl.when(pl.col("_pool"))
        .then(pl.lit(pl.Series(owners_reefer)).gather(pl.col("_slot") % len(owners_reefer)))
        .otherwise(pl.lit(pl.Series(owners_dry)).gather(pl.col("_slot") % len(owners_dry)))
        .alias("_owner"),
        (pl.col("_slot") * 7 + serial_base + pl.col("_pool").cast(pl.Int64) * 500_000).mod(1_000_000).cast(pl.String).str.zfill(6).alias("_serial"),
    ).with_columns((pl.col("_owner") + pl.col("_serial")).alias("_prefix"))
    ranked = ranked.with_columns(with_check_digit(pl.col("_prefix")).alias("container_number"))
    return ranked.sort("_i").drop("_i", "_pool", "_k", "_n", "_size", "_slot", "_owner", "_serial", "_prefix")


def number_new_containers(fresh: pl.DataFrame, rng: np.random.Generator, offset: int) -> pl.DataFrame:
    """Number containers of shipments created during the run (outside the reused legit pools)."""
    owners = np.array(CONTAINER_OWNERS)
    prefixes = [f"{owners[int(rng.integers(len(owners)))]}{(900_000 + (offset + i) * 13) % 1_000_000:06d}" for i in range(fresh.height)]
    frame = fresh.with_columns(pl.Series("_prefix", prefixes))
    return frame.with_columns(with_check_digit(pl.col("_prefix")).alias("container_number")).drop("_prefix")


def with_check_digit(prefix10: pl.Expr) -> pl.Expr:
    """Append the ISO 6346 check digit to 10-character prefixes."""
    return prefix10 + iso6346_check_digit_expr(prefix10 + "0").cast(pl.String)
