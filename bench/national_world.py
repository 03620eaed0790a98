"""A simulated national world of tens of millions of manifests, built by tiling one simulated year.

Simulating 20 million manifests directly takes about 40 minutes on 2 cores
(``bench_simulate``: about a million a year in ~2 minutes), so the national
world is built from one simulated base year, tiled across years and across
*regional replicas*, and written once as Parquet (cached, never timed):

- **base**: :func:`targeting.sim.world.simulate_world` for :data:`BASE_DAYS`
  days of ``containers_per_day`` arrivals over the national ports
  :data:`NATIONAL_PORTS` (Spain's five container ports; about 1 million
  manifests at the default 2,740 a day), seed ``seed``;
- **tile (y, r)** for year ``y = 0..years-1`` and replica ``r = 0..replicas-1``:
  the base shifted ``365 * y`` days back in time (every timestamp of every
  table), with new manifest ids (``<id>-y<y>r<r>``, the base's own for tile
  (0, 0)) and new B/L numbers. A replica is another stream of traffic into the
  same ports in the same year: its containers get other (valid ISO 6346)
  numbers, so replicas never share a container, and its traders are other
  traders, except the national ones (parties keyed by identifier, or by name
  without one: ``hash % 4 == 0`` of the key, a quarter) that trade through
  every replica. Across years half of the parties (``(hash // 4) % 2 == 0``)
  recur every year, the others are renamed per year, as in ``bench_features``;
  containers recur across years. A renamed party gets a suffix on its
  identifier (placeholders such as ``UNKNOWN`` stay placeholders) and a
  distinct word on its name, so party resolution sees a different trader, not
  a spelling variant. Alerts follow their subject (party, container, B/L);
  vessel, HS-code and route alerts exist once per year (replica 0).
- tiles are ordered year-major (``(0,0), (0,1) ... (0,R-1), (1,0) ...``), the
  most recent first; a world of ``n`` rows is the first ``ceil(n / base)``
  tiles (:func:`tiles_for`).

Every tile is one Parquet file per table under ``<root>/<table>/`` and the
oracle (hidden truth) is not tiled: the benchmark never reads it.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl

NATIONAL_PORTS = ("ESALG", "ESVLC", "ESBCN", "ESBIO", "ESLPA")
TABLES = ("manifests", "events", "outcomes", "alerts")
BASE_DAYS = 365
PARTY_ROLES = ("shipper", "consignee", "notify")
TIME_COLUMNS = {
    "manifests": ("booked_at", "filed_at", "amended_at", "booking_amended_at", "etd", "eta"),
    "events": ("event_time",),
    "outcomes": ("inspected_at",),
    "alerts": ("valid_from", "valid_to"),
}
ONCE_PER_YEAR_ALERTS = ("VESSEL", "HS_CODE", "ROUTE")


@dataclass(frozen=True)
class Tile:
    """Year ``year`` back from the base and regional replica ``replica`` (0, 0 is the base itself)."""

    year: int
    replica: int

    @property
    def name(self) -> str:
        return f"tile-y{self.year:02d}-r{self.replica:02d}"

    @property
    def suffix(self) -> str:
        return f"-y{self.year}r{self.replica}"


def tile_order(years: int, replicas: int) -> list[Tile]:
    """All tiles, most recent year first, replicas within a year."""
    return [Tile(y, r) for y in range(years) for r in range(replicas)]


def tiles_for(rows: float, base_rows: int, replicas: int) -> list[Tile]:
    """The first ``ceil(rows / base_rows)`` tiles of the year-major order."""
    n = max(1, math.ceil(rows / base_rows))
    return tile_order(math.ceil(n / replicas), replicas)[:n]


# ----------------------------------------------------------------------------- renaming
def _real_ids(values: pl.Series) -> pl.DataFrame:
    """``raw -> real`` (False for placeholders such as ``UNKNOWN``) for the distinct identifiers."""
    from features.parties import normalise_party_id

    unique = values.drop_nulls().unique()
    return pl.DataFrame({"raw": unique, "real": [normalise_party_id(v) is not None for v in unique.to_list()]}, schema={"raw": pl.String, "real": pl.Boolean})


def _party_tags(key: pl.Expr, tile: Tile) -> tuple[pl.Expr, pl.Expr]:
    """(identifier suffix, name suffix) of a party for ``tile``; empty when the party recurs there."""
    h = key.hash(seed=42)
    per_year = (tile.year > 0) & ((h // 4) % 2 == 1)
    per_replica = (tile.replica > 0) & (h % 4 != 0)
    id_tag = pl.concat_str(
        pl.when(per_year).then(pl.lit(f"~{tile.year}")).otherwise(pl.lit("")),
        pl.when(per_replica).then(pl.lit(f".{tile.replica}")).otherwise(pl.lit("")),
    )
    name_tag = pl.concat_str(
        pl.when(per_year).then(pl.lit(f" Y{tile.year}")).otherwise(pl.lit("")),
        pl.when(per_replica).then(pl.lit(f" R{tile.replica}")).otherwise(pl.lit("")),
    )
    return id_tag, name_tag


def _renamed_parties(frame: pl.LazyFrame, real: pl.DataFrame, tile: Tile) -> pl.LazyFrame:
    out = frame
    for role in PARTY_ROLES:
        ident, name = pl.col(f"{role}_id"), pl.col(f"{role}_name")
        flag = f"__{role}_real"
        out = out.join(real.lazy().rename({"raw": f"{role}_id", "real": flag}), on=f"{role}_id", how="left", maintain_order="left")
        is_real = pl.col(flag).fill_null(False)
        id_tag, name_tag = _party_tags(pl.when(is_real).then(ident).otherwise(name), tile)
        out = out.with_columns(
            pl.when(is_real).then(ident + id_tag).otherwise(ident).alias(f"{role}_id"),
            (name + name_tag).alias(f"{role}_name"),
        ).drop(flag)
    return out


def _container_maps(numbers: pl.Series, replicas: int) -> dict[int, pl.DataFrame | None]:
    """``old -> new`` valid ISO 6346 numbers per replica: the owner code's first letter shifted.

    Each replica takes the smallest shift whose numbers collide neither with the base's nor with an
    earlier replica's (a shift is a bijection, so a replica's numbers are distinct).
    """
    from stdnum import iso6346

    unique = numbers.drop_nulls().unique().sort().to_list()
    taken, maps = set(unique), {0: None}
    shifts = iter(range(1, 26))
    for replica in range(1, replicas):
        for shift in shifts:
            owners = [chr(ord("A") + (ord(n[0]) - ord("A") + shift) % 26) + n[1:10] for n in unique]
            new = [o + iso6346.calc_check_digit(o) for o in owners]
            if taken.isdisjoint(new):
                taken.update(new)
                maps[replica] = pl.DataFrame({"old": unique, "new": new}, schema={"old": pl.String, "new": pl.String})
                break
        else:
            raise ValueError(f"replica {replica}: no owner-code shift gives container numbers distinct from the others'")
    return maps


def _shifted(table: str, tile: Tile) -> list[pl.Expr]:
    return [(pl.col(c) - timedelta(days=365 * tile.year)).alias(c) for c in TIME_COLUMNS[table]]


def _with_container(frame: pl.LazyFrame, containers: pl.DataFrame | None) -> pl.LazyFrame:
    if containers is None:
        return frame
    return frame.join(containers.lazy(), left_on="container_number", right_on="old", how="left", maintain_order="left").with_columns(
        pl.coalesce("new", "container_number").alias("container_number")
    ).drop("new")


def _tile_table(base: Path, table: str, tile: Tile, real: pl.DataFrame, containers: pl.DataFrame | None) -> pl.LazyFrame:
    frame = pl.scan_parquet(base / f"{table}.parquet")
    columns = frame.collect_schema().names()
    frame = frame.with_columns(_shifted(table, tile))
    if tile == Tile(0, 0):
        return frame
    if table == "manifests":
        frame = _renamed_parties(frame, real, tile).with_columns(
            (pl.col("manifest_id") + tile.suffix).alias("manifest_id"),
            (pl.col("master_bl") + tile.suffix).alias("master_bl"),
            (pl.col("house_bl") + tile.suffix).alias("house_bl"),
        )
        return _with_container(frame, containers).select(columns)
    if table == "events":
        return _with_container(frame, containers).select(columns)
    if table == "outcomes":
        return _with_container(frame.with_columns((pl.col("manifest_id") + tile.suffix).alias("manifest_id")), containers).select(columns)
    return _tile_alerts(frame, real, tile, containers).select(columns)


def _tile_alerts(frame: pl.LazyFrame, real: pl.DataFrame, tile: Tile, containers: pl.DataFrame | None) -> pl.LazyFrame:
    if tile.replica > 0:
        frame = frame.filter(~pl.col("kind").is_in(ONCE_PER_YEAR_ALERTS))
    frame = frame.join(real.lazy().rename({"raw": "value", "real": "__real"}), on="value", how="left", maintain_order="left")
    id_tag, _ = _party_tags(pl.col("value"), tile)
    kind = pl.col("kind")
    value = (
        pl.when((kind == "PARTY") & pl.col("__real").fill_null(False)).then(pl.col("value") + id_tag)
        .when(kind == "BL").then(pl.col("value") + tile.suffix)
        .otherwise(pl.col("value"))
    )
    frame = frame.with_columns(value.alias("value"), (pl.col("alert_id") + tile.suffix).alias("alert_id")).drop("__real")
    if containers is None:
        return frame
    mapped = frame.join(containers.lazy(), left_on="value", right_on="old", how="left", maintain_order="left")
    return mapped.with_columns(pl.when(kind == "CONTAINER").then(pl.coalesce("new", "value")).otherwise(pl.col("value")).alias("value")).drop("new")


# ----------------------------------------------------------------------------- build
def simulate_base(base: Path, *, containers_per_day: int, seed: int, days: int = BASE_DAYS) -> int:
    """Simulate the base year over :data:`NATIONAL_PORTS` into ``base``; returns its manifest count."""
    from targeting.sim.world import WorldConfig, simulate_world

    base.mkdir(parents=True, exist_ok=True)
    world = simulate_world(WorldConfig(days=days, containers_per_day=containers_per_day, ports=NATIONAL_PORTS, seed=seed))
    for table in TABLES:
        getattr(world, table).write_parquet(base / f"{table}.parquet")
    return world.manifests.height


def build_national_world(
    root: Path, *, years: int, replicas: int, containers_per_day: int = 2740, seed: int = 7, days: int = BASE_DAYS, rebuild: bool = False, log=print
) -> dict:
    """Build (or reuse) the national world under ``root``; returns its ``world.json`` description.

    A world is reused when ``world.json`` exists with the same parameters; a
    partial build is started again (tiles are written first, ``world.json``
    last).
    """
    params = {"years": years, "replicas": replicas, "containers_per_day": containers_per_day, "seed": seed, "days": days, "ports": list(NATIONAL_PORTS)}
    marker = root / "world.json"
    if marker.exists() and not rebuild:
        described = json.loads(marker.read_text())
        if described["params"] == params:
            return described
    start = time.perf_counter()
    base_marker, base_params = root / "base" / "READY", json.dumps({k: params[k] for k in ("containers_per_day", "seed", "days", "ports")})
    if rebuild or not base_marker.exists() or base_marker.read_text() != base_params:
        shutil.rmtree(root, ignore_errors=True)
        log(f"  national world: simulating the base year ({days} days x {containers_per_day:,} containers/day over {', '.join(NATIONAL_PORTS)}) ...")
        simulate_base(root / "base", containers_per_day=containers_per_day, seed=seed, days=days)
        base_marker.write_text(base_params)
    for table in TABLES:
        shutil.rmtree(root / table, ignore_errors=True)
    base_rows = pl.scan_parquet(root / "base" / "manifests.parquet").select(pl.len()).collect().item()
    log(f"  national world: base {base_rows:,} manifests ready after {time.perf_counter() - start:.0f} s; writing {years * replicas} tiles ...")
    base_manifests = pl.read_parquet(root / "base" / "manifests.parquet", columns=[*(f"{r}_id" for r in PARTY_ROLES), "container_number"])
    real = _real_ids(pl.concat([base_manifests[f"{r}_id"] for r in PARTY_ROLES]))
    maps = _container_maps(base_manifests["container_number"], replicas)
    counts = {}
    for table in TABLES:
        (root / table).mkdir()
    for tile in tile_order(years, replicas):
        for table in TABLES:
            _tile_table(root / "base", table, tile, real, maps[tile.replica]).sink_parquet(root / table / f"{tile.name}.parquet")
        counts[tile.name] = base_rows
    described = {"params": params, "base_manifests": base_rows, "tiles": [t.name for t in tile_order(years, replicas)], "manifests": base_rows * years * replicas,
                 "build_seconds": round(time.perf_counter() - start, 1)}
    marker.write_text(json.dumps(described, indent=2))
    log(f"  national world: {described['manifests']:,} manifests in {described['build_seconds']:.0f} s under {root}")
    return described


def scan_tiles(root: Path, table: str, tiles: list[Tile]) -> pl.LazyFrame:
    """One table of the world made of ``tiles``, read lazily from Parquet."""
    return pl.scan_parquet([root / table / f"{t.name}.parquet" for t in tiles])


def history_of(root: Path, tiles: list[Tile]):  # noqa: ANN201 - features.history.History
    from features.history import History

    return History(*(scan_tiles(root, t, tiles) for t in TABLES))
