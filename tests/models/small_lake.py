"""A small simulated port world ingested into a real lake, and empty MLflow stores, for the model tests.

Building the world takes seconds, so test modules build it once (session or
module fixtures). An MLflow SQLite store spends seconds migrating its schema
on first use: :func:`store_template` migrates one empty store and
:func:`fresh_store` copies it, which gives an independent real store in
milliseconds.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from features.data.ingest import ingest
from features.data.lake import Lake
from targeting.sim.run import simulate_to_directory
from targeting.sim.world import WorldConfig

WORLD = WorldConfig(seed=7, days=100, containers_per_day=250)
"""~24,000 manifests over 100 days: a 30-day warm-up, then train / validation / test periods."""
TABLES = ("manifests", "events", "outcomes", "alerts")


@dataclass(frozen=True)
class SmallWorld:
    """A simulated world on disk (feeds + oracle) and the lake its feeds were ingested into."""

    world_dir: Path
    lake: Lake
    config: WorldConfig

    @property
    def oracle_path(self) -> Path:
        return self.world_dir / "oracle.parquet"

    @property
    def oracle(self) -> pl.DataFrame:
        return pl.read_parquet(self.oracle_path)


def ingest_now(config: WorldConfig) -> datetime:
    """An ingestion time after every simulated arrival (nothing is 'in the future')."""
    return datetime.combine(config.start + timedelta(days=config.days + 30), datetime.min.time(), tzinfo=UTC)


def ingest_world(world_dir: Path, lake_dir: Path, config: WorldConfig, tables: tuple[str, ...] = TABLES) -> Lake:
    """Ingest the given feeds of a simulated world into a (new) lake."""
    lake = Lake(lake_dir)
    for table in tables:
        ingest(lake, table, [world_dir / f"{table}.parquet"], now=ingest_now(config))
    return lake


def build_small_world(root: Path, config: WorldConfig = WORLD) -> SmallWorld:
    """Simulate ``config`` into ``root/world`` and ingest its four feeds into ``root/lake``."""
    world_dir = root / "world"
    simulate_to_directory(config, world_dir)
    return SmallWorld(world_dir, ingest_world(world_dir, root / "lake", config), config)


def store_template(root: Path) -> Path:
    """An empty, fully migrated MLflow SQLite database file under ``root``."""
    from models.tracking import configure

    root.mkdir(parents=True, exist_ok=True)
    configure(f"sqlite:///{root.resolve() / 'mlflow.db'}").search_experiments()
    return root / "mlflow.db"


def fresh_store(template: Path, root: Path) -> str:
    """Tracking URI of a new, empty store at ``root/mlruns/mlflow.db`` (artifacts beside it)."""
    (root / "mlruns").mkdir(parents=True, exist_ok=True)
    target = root.resolve() / "mlruns" / "mlflow.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"

