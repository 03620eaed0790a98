"""Driver-light features on a Dask cluster: candidates, party resolution and entity history read by the workers.

Optional: needs ``dask`` and ``distributed``. For row counts past what one process holds (a national
training set): nothing proportional to the rows passes through the driver. Unlike the first cluster
design (``cluster-gathered`` in ``docs/scale.md``, since removed: it collected the candidates on the
driver, resolved the parties of the whole history there and let every time partition aggregate the
whole history before it), :func:`lake_feature_partitions` runs in three distributed steps. It is what
``targeting train --cluster`` (:func:`models.distributed.train_on_cluster`) and
:func:`features.distributed.build_features_on_cluster` run.

1. **Party resolution** (:func:`party_resolution_on_cluster`): each worker takes one chunk of the
   history's manifests (the caller's chunks, e.g. the lake's files, or hash chunks of ``manifest_id``)
   and returns its distinct party records and trading pairs with their first manifest
   (:func:`features.parties.party_partials`, a few thousand rows per million manifests); the driver
   combines them (:func:`features.parties.resolve_partials`): the same resolution as over the whole
   history, since a record's canonical id depends only on manifests filed up to its first one.
2. **Entity events** (:func:`write_entity_events`): each worker applies the resolution to its chunk
   and writes the chunk's history as events keyed by the hash of every entity key
   (:func:`features.entity.history_event_tables`), sorted by time, to Parquet: the parties are
   resolved and the keys hashed once per manifest, not once per partition that reads it.
3. **Features by time partition** (:func:`_partition_features`): the driver cuts the candidates'
   decision days into partitions of about ``rows_per_partition`` rows (from a count per day); each
   worker reads its own candidates from the (lazy, lake-backed) candidate frame, computes the entity
   features from the events files — the events before ``split = min(decision_at) - 365 days``
   aggregated per key for the partition's own keys only (streaming, memory bounded by the partition),
   the later ones streamed with the partition's queries — and the row, event and alert features with
   the pipeline's own code (:func:`features.pipeline.assemble_features`), then writes its features to
   Parquet and returns only its row count.

Time semantics are the pipeline's: every feature of a row from data strictly before its ``decision_at``
(the split only decides which events are summed per key and which are streamed; counts are integers,
first and last times minima and maxima, so the features equal :func:`features.pipeline.build_features`'s
exactly, tested). Preconditions: every candidate's own manifest is in ``history.manifests``
(candidates drawn from the lake), and the events directory and the lake are on storage every worker reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from features.entity import entity_features_from_events, history_event_tables, longest_window_days, old_entity_aggregates
from features.history import DECISION_COLUMN, History, ensure_decision_column
from features.parties import PartyResolution, apply_resolution, party_partials, resolve_partials
from features.pipeline import _candidates, assemble_features
from features.routing import restrict_events
from features.stats import FeatureStats

HUB_COLUMNS = ("t", "finding", "transshipment_ports")
"""Columns of the outcome files (the exploded hub family reads them)."""


@dataclass(frozen=True)
class EntityEvents:
    """The history's entity events on disk: ``events`` (plain families) and ``outcomes`` (hub family) Parquet files."""

    events: tuple[str, ...]
    outcomes: tuple[str, ...]

    def scans(self) -> tuple[pl.LazyFrame, pl.LazyFrame]:
        return pl.scan_parquet(list(self.events)), pl.scan_parquet(list(self.outcomes))


def hash_chunks(manifests: pl.LazyFrame, chunks: int) -> list[pl.LazyFrame]:
    """``manifests`` in ``chunks`` disjoint lazy chunks by a hash of ``manifest_id`` (each scanned by its own worker)."""
    return [manifests.filter(pl.col("manifest_id").hash(seed=0) % chunks == k) for k in range(chunks)]


def party_resolution_on_cluster(client, chunks: Sequence[pl.LazyFrame]) -> PartyResolution:  # noqa: ANN001
    """:func:`features.pipeline.party_resolution` of the disjoint ``chunks`` together, the records found by the workers."""
    partials = client.gather([client.submit(party_partials, chunk, pure=False) for chunk in chunks])
    return resolve_partials(partials)


def _chunk_events(chunk: pl.LazyFrame, outcomes: pl.LazyFrame, resolution: PartyResolution, events_path: str, outcomes_path: str) -> int:
    """On a worker: one manifest chunk's entity events (canonical parties, hashed keys, by time) written to Parquet."""
    events, outc = history_event_tables(apply_resolution(chunk, resolution), outcomes)
    frame = events.sort("t", nulls_last=False).collect()
    frame.write_parquet(events_path, row_group_size=50_000, statistics=True)
    outc.select(*HUB_COLUMNS).collect().write_parquet(outcomes_path)
    return frame.height


def write_entity_events(client, chunks: Sequence[pl.LazyFrame], outcomes: pl.LazyFrame, resolution: PartyResolution, out_dir: Path) -> EntityEvents:  # noqa: ANN001
    """Every chunk's entity events written by a worker under ``out_dir`` (replacing earlier files there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.parquet"):
        old.unlink()
    # hash=False: a content-hashed key would be shared with the next scatter of the same resolution, which then races this
    # one's release and loses the data ("lost dependencies")
    shared = client.scatter(resolution, broadcast=True, hash=False)
    paths = [(str(out_dir / f"events-{k:04d}.parquet"), str(out_dir / f"outcomes-{k:04d}.parquet")) for k in range(len(chunks))]
    client.gather([client.submit(_chunk_events, c, outcomes, shared, e, o, pure=False) for c, (e, o) in zip(chunks, paths, strict=True)])
    return EntityEvents(tuple(e for e, _ in paths), tuple(o for _, o in paths))


def day_partitions(candidates: pl.LazyFrame, rows_per_partition: int | None = None, *, threads: int = 1) -> list[tuple[datetime, datetime]]:
    """Contiguous ``[lo, hi)`` ranges of whole UTC days of ``decision_at``, about ``rows_per_partition`` rows each.

    Only a count per day is collected (:func:`ranges_of_days`).
    """
    return ranges_of_days(day_counts(candidates).collect(engine="streaming"), rows_per_partition, threads=threads)


def day_counts(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Rows per UTC day of ``decision_at`` (``day``, ``len``): what :func:`ranges_of_days` cuts."""
    return ensure_decision_column(rows).select(pl.col(DECISION_COLUMN).dt.truncate("1d").alias("day")).group_by("day").len()


def ranges_of_days(days: pl.DataFrame, rows_per_partition: int | None = None, *, threads: int = 1) -> list[tuple[datetime, datetime]]:
    """Contiguous ``[lo, hi)`` ranges of whole days from a count per day (``day``, ``len``), about ``rows_per_partition`` rows each.

    A day is never split, so a day busier than ``rows_per_partition`` is a partition of its own. ``None``:
    250,000 rows, or fewer so that each of ``threads`` worker threads gets at least two partitions.
    """
    days = days.group_by("day").agg(pl.col("len").sum()).sort("day")
    if rows_per_partition is None:
        rows_per_partition = max(1, min(250_000, int(days["len"].sum() or 0) // (2 * max(1, threads))))
    ranges, start, rows = [], None, 0
    for day, n in days.iter_rows():
        start = start or day
        rows += n
        if rows >= rows_per_partition:
            ranges.append((start, day + timedelta(days=1)))
            start, rows = None, 0
    if start is not None:
        ranges.append((start, days["day"][-1] + timedelta(days=1)))
    return ranges


def features_from_events(rows: pl.DataFrame, history: History, stats: FeatureStats, resolution: PartyResolution, events: EntityEvents) -> pl.DataFrame:
    """:func:`features.pipeline.build_features` of ``rows`` with the entity history read from ``events`` (same frame, same order).

    ``rows``' own manifests must be in the history the events were written from.
    """
    rows = ensure_decision_column(rows.lazy()).collect()
    history = replace(history, events=restrict_events(history.events, rows))
    cands = _candidates(rows.lazy())
    resolved = apply_resolution(cands, resolution).cache()
    split = rows[DECISION_COLUMN].min() - timedelta(days=longest_window_days())
    event_rows, hub_rows = events.scans()
    # events at or after the latest decision reach no row (every count is strictly before its decision_at; the
    # first filing of a key is only read when the key was filed before): the stream holds [split, latest) only
    latest = pl.lit(rows[DECISION_COLUMN].max(), dtype=pl.Datetime("us", "UTC"))
    event_rows = event_rows.filter(pl.col("t").is_null() | (pl.col("t") < latest))
    old = old_entity_aggregates(event_rows, split, resolved)
    entity = entity_features_from_events(resolved, event_rows, hub_rows, stats, split=split, old=old)
    return assemble_features(cands, entity, history, stats).collect()


def decided_in(lo: datetime, hi: datetime) -> pl.Expr:
    """Rows whose ``decision_at`` (as UTC microseconds) is in ``[lo, hi)``: the rows of one partition or window."""
    decided = pl.col(DECISION_COLUMN).cast(pl.Datetime("us", "UTC"))
    return (decided >= lo) & (decided < hi)


def _partition_features(
    candidates: pl.LazyFrame | Callable[[datetime, datetime], pl.LazyFrame],
    bounds: tuple[datetime, datetime],
    prefilter: Callable[[datetime, datetime], pl.Expr] | None,
    history: History,
    stats: FeatureStats,
    resolution: PartyResolution,
    events: EntityEvents,
    out_path: str,
    carry: tuple[str, ...],
) -> int:
    """On a worker: the features of the candidates decided in ``[lo, hi)``, with ``carry`` columns, written to ``out_path``.

    ``candidates``: a lazy frame, or ``candidates(lo, hi)`` giving one that holds at least those rows.
    """
    lo, hi = bounds
    scan = candidates(lo, hi) if callable(candidates) else candidates
    scan = scan.filter(prefilter(lo, hi)) if prefilter else scan
    rows = scan.filter(decided_in(lo, hi)).collect()
    if rows.height == 0:
        return 0
    frame = features_from_events(rows, history, stats, resolution, events)
    frame.with_columns(rows.select(carry).get_columns()).write_parquet(out_path)
    return frame.height


def lake_feature_partitions(
    client,  # noqa: ANN001 - distributed.Client
    candidates: pl.LazyFrame,
    history: History,
    stats: FeatureStats,
    out_dir: Path,
    *,
    rows_per_partition: int | None = None,
    chunks: Sequence[pl.LazyFrame] | None = None,
    prefilter: Callable[[datetime, datetime], pl.Expr] | None = None,
    rows_between: Callable[[datetime, datetime], pl.LazyFrame] | None = None,
    carry: Sequence[str] = (),
    ranges: Sequence[tuple[datetime, datetime]] | None = None,
) -> dict:
    """The features of ``candidates`` (lazy, e.g. lake-backed), written by the workers to ``out_dir/part-*.parquet``.

    Parameters
    ----------
    candidates
        Lazy manifest rows with ``decision_at`` (UTC); every feature of a row from data strictly
        before it. Each worker collects only its own days; the driver only a count per day.
    rows_per_partition
        Rows per feature partition (whole days); default 250,000, or fewer so that every worker
        thread gets at least two partitions.
    history
        The lake's tables (lazy scans every worker can read); must contain every candidate's manifest.
    chunks
        Disjoint lazy chunks of ``history.manifests`` (e.g. one per lake file); default: hash chunks,
        four per worker thread.
    prefilter
        ``prefilter(lo, hi)``: an expression on ``candidates``' own columns true for every row decided in
        ``[lo, hi)`` (e.g. on the raw arrival time), so that a Parquet scan can skip row groups.
    rows_between
        ``rows_between(lo, hi)``: a lazy frame of (at least) the rows of ``candidates`` decided in
        ``[lo, hi)``, which each worker scans instead of ``candidates`` (e.g. the candidates of those
        days only, when deriving them from the whole history would cost every partition the whole history).
    carry
        Columns of ``candidates`` written beside the features (labels, weights).
    ranges
        The partitions' ``[lo, hi)`` decision days, when the caller has cut them already (:func:`day_partitions`).

    Returns
    -------
    ``{"rows", "partitions", "files", "events_rows"}``; partition files are in time order, each
    holding the columns of :func:`features.pipeline.build_features` then ``carry``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("part-*.parquet"):
        old.unlink()
    threads = sum(client.nthreads().values()) or 1
    chunks = list(chunks) if chunks is not None else hash_chunks(history.manifests, 4 * threads)
    resolution = party_resolution_on_cluster(client, chunks)
    events = write_entity_events(client, chunks, history.outcomes, resolution, out_dir / "entity-events")
    ranges = list(ranges) if ranges is not None else day_partitions(candidates, rows_per_partition, threads=threads)
    source = rows_between or candidates
    shared = client.scatter([history, stats, resolution, events], broadcast=True, hash=False)  # unique keys: see write_entity_events
    files = [str(out_dir / f"part-{k:04d}.parquet") for k in range(len(ranges))]
    counts = client.gather([
        client.submit(_partition_features, source, bounds, prefilter, *shared, path, tuple(carry), pure=False)
        for bounds, path in zip(ranges, files, strict=True)
    ])
    written = [f for f, n in zip(files, counts, strict=True) if n]
    return {"rows": sum(counts), "partitions": len(ranges), "files": written, "parties": resolution.links.height}

