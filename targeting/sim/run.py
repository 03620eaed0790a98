"""Simulate a world and write it to a directory as raw feeds plus its hidden truth."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from targeting.sim.precursor_notifications import write_pre_export_notifications
from targeting.sim.feeds import FEED_TABLES, FaultLog, write_feed, write_json
from targeting.sim.world import WorldConfig, simulate_world


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def simulate_to_directory(
    config: WorldConfig,
    out: Path,
    *,
    fmt: str = "parquet",
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Generate the world for ``config`` and write it under ``out``.

    Writes ``manifests``, ``events``, ``outcomes`` and ``alerts`` feeds (text
    columns, some rows malformed on purpose), ``oracle.parquet`` (hidden truth:
    never ingest it), ``rules.json`` (the rule profiles the historical import
    units used, and the export units' under ``export_rules``) and ``world.json`` (configuration, headline figures, deliberate
    faults and file digests). Returns the ``world.json`` content.
    """
    out.mkdir(parents=True, exist_ok=True)
    tables = simulate_world(config, progress=progress)
    rng = np.random.default_rng([config.seed, 1])
    faults = FaultLog(counts={})
    files = {
        table: write_feed(getattr(tables, table), table, out, fmt=fmt, malformed_rate=config.malformed_rate, rng=rng, log=faults)
        for table in FEED_TABLES
    }
    oracle_path = out / "oracle.parquet"
    tables.oracle.write_parquet(oracle_path)
    write_pre_export_notifications(tables, out, seed=config.seed)  # PEN-style notices of legitimate chemical trade (precursor_notifications.py)
    write_json({"rules": [r.canonical() for r in tables.rules], "export_rules": [r.canonical() for r in tables.export_rules]}, out / "rules.json")
    summary = {
        **tables.summary,
        "faults": dict(sorted(faults.counts.items())),
        "files": {name: {"path": path.name, "sha256": file_sha256(path)} for name, path in {**files, "oracle": oracle_path}.items()},
    }
    write_json(summary, out / "world.json")
    return summary
