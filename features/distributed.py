"""Features on a Dask cluster: the same Polars pipeline by partition, the entity snapshot as a map-reduce.

Optional: needs ``dask`` and ``distributed`` (``pip install -e '.[cluster]'``). Nothing on the
single-machine path imports this module; without a cluster nothing changes.

How to call it from Python::

    from features.distributed import build_features_on_cluster, cluster_client, entity_state_on_cluster

    with cluster_client("tcp://scheduler:8786") as client:      # or "local": a LocalCluster on this machine
        frame = build_features_on_cluster(client, candidates, history, stats)
        # == features.pipeline.build_features(candidates, history, stats), bit for bit, same row order
        state = entity_state_on_cluster(client, history, at)
        # == features.pipeline.entity_state(history, at) (same tables up to row order)
        day = build_features_on_cluster(client, day_candidates, history, stats, state=state)

Lower level, for callers that keep the result on the cluster (training: :mod:`models.distributed`):
:func:`feature_partitions` returns one future per partition, each a Polars frame of features plus
:data:`POSITION` (the row's position in ``candidates``) and any ``carry`` columns.

**Per-row features** (:func:`build_features_on_cluster`). The candidates are sorted by
``decision_at`` and cut into contiguous partitions; each worker calls
:func:`features.pipeline.build_features` (the one pipeline) on its partition, with the history cut at
the partition's latest decision time (:func:`history_before`: nothing at or after it can reach a
feature, since every feature reads only data strictly before its row's ``decision_at``) and with
the party resolution computed once for all candidates (resolution is global and sequential by
nature; it is broadcast). A row's features do not depend on which other candidates share its
partition (integer counts split exactly between "older" and "recent" history), so the
concatenation, put back in input order, equals the single-machine frame exactly (tested with
``==``, not a tolerance).

**The entity snapshot** (:func:`entity_state_on_cluster`). Manifests and their outcomes are
co-partitioned by a hash of ``manifest_id``; each partition computes, per entity family, the partial
aggregates of :class:`features.entity.EntityState` (counts, first filing, last finding, strictly
before ``at``); the partials are combined per family on the cluster by sums of integers and
min/max of timestamps, which are exact in any order, so the state is bit-identical.

The history travels as :class:`features.history.History` lazy frames: a lake-backed history is a
Parquet scan plan (workers read the lake's files themselves, which must be on storage every
worker sees); an in-memory history is shipped to each worker once (``scatter(broadcast=True)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

import polars as pl

from features.entity import FAMILIES, EntityState, _id_hash, _snapshot_plan, history_rows, outcome_rows
from features.history import DECISION_COLUMN, History, ensure_decision_column, with_derived_columns
from features.parties import PartyResolution, apply_resolution
from features.pipeline import _candidates, _history_with_candidates, build_features, party_resolution
from features.stats import FeatureStats

POSITION = "__ccp_position"
"""Column of :func:`feature_partitions`' frames: the row's position in the candidates given."""
INSTALL_HINT = "the cluster path needs dask and distributed: pip install -e '.[cluster]'"
LOCAL = "local"
"""The cluster address that starts a :class:`distributed.LocalCluster` on this machine for the run."""


class ClusterUnavailable(RuntimeError):
    """``dask``/``distributed`` are not installed, or the scheduler cannot be reached."""


@contextmanager
def cluster_client(address: str, *, workers: int = 2, threads_per_worker: int = 1) -> Iterator["distributed.Client"]:  # noqa: F821
    """A ``distributed.Client`` for ``address`` (``tcp://host:8786``), or a LocalCluster on this machine for ``"local"``.

    The LocalCluster (``workers`` processes of ``threads_per_worker`` threads, listening on loopback
    only, no dashboard) is closed on exit; a remote cluster is only disconnected from.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - exercised on machines without the extra
        raise ClusterUnavailable(INSTALL_HINT) from exc
    if address == LOCAL:
        with LocalCluster(
            n_workers=workers, threads_per_worker=threads_per_worker, processes=True, host="127.0.0.1", dashboard_address=None
        ) as cluster, Client(cluster) as client:
            client.run(_stdout_to_stderr)  # our own workers: their native libraries' progress lines must not mix with a command's output
            yield client
        return
    try:
        client = Client(address, timeout="20s")
    except OSError as exc:
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    with client:
        yield client


def _stdout_to_stderr() -> None:
    """On a worker process: send file descriptor 1 (LightGBM's native logging) to standard error."""
    import os

    os.dup2(2, 1)


def default_partitions(client, rows: int) -> int:  # noqa: ANN001
    """Two partitions per worker thread (at least one, at most one per row)."""
    threads = sum(client.nthreads().values()) or 1
    return max(1, min(rows, 2 * threads))


def history_before(history: History, cutoff: datetime) -> History:
    """What features of rows decided at or before ``cutoff`` can read: manifests filed, outcomes recorded before it.

    Manifests filed before ``cutoff`` (or without a filing time) plus the manifests of the kept
    outcomes (their entity keys); outcomes inspected before ``cutoff`` (or without a time); events
    and alerts unchanged (:func:`features.pipeline.build_features` restricts events to the voyage
    windows itself). A row decided at ``d <= cutoff`` reads only data strictly before ``d``, so its
    features are the same from this history as from the whole one.
    """
    outcomes = history.outcomes.filter(pl.col("inspected_at").is_null() | (pl.col("inspected_at") < cutoff))
    inspected = outcomes.select("manifest_id").unique()
    manifests = history.manifests.filter(
        pl.col("filed_at").is_null() | (pl.col("filed_at") < cutoff) | pl.col("manifest_id").is_in(inspected.collect().to_series().implode())
    )
    return replace(history, manifests=manifests, outcomes=outcomes)


def split_by_time(candidates: pl.DataFrame, partitions: int) -> list[pl.DataFrame]:
    """``candidates`` with :data:`POSITION`, sorted by ``decision_at`` (ties by position), in ``partitions`` contiguous slices."""
    ordered = candidates.with_row_index(POSITION).sort(DECISION_COLUMN, POSITION)
    size = max(1, math.ceil(ordered.height / max(1, partitions)))
    return [ordered.slice(start, size) for start in range(0, ordered.height, size)]


def _partition_features(
    part: pl.DataFrame,
    history: History,
    stats: FeatureStats,
    resolution: PartyResolution,
    state: EntityState | None,
    carry: tuple[str, ...],
) -> pl.DataFrame:
    """One partition on a worker: :func:`build_features` over the history cut at its latest decision time."""
    local = history if state is not None else history_before(history, part[DECISION_COLUMN].max())
    frame = build_features(part.drop(POSITION), local, stats, state=state, resolution=resolution)
    return frame.with_columns(part[POSITION], *(part[c] for c in carry))


def feature_partitions(
    client,  # noqa: ANN001 - distributed.Client
    candidates: pl.DataFrame | pl.LazyFrame,
    history: History,
    stats: FeatureStats,
    *,
    state: EntityState | None = None,
    partitions: int | None = None,
    carry: Sequence[str] = (),
) -> list:
    """Futures of the feature frames of ``candidates`` by time partition (see the module docstring).

    Each frame holds the columns of :func:`features.pipeline.build_features`, then :data:`POSITION`
    and the ``carry`` columns of ``candidates`` (e.g. labels and weights that must stay beside
    their rows on the cluster). Futures are in partition order (increasing ``decision_at``).
    """
    candidates = ensure_decision_column(candidates.lazy()).collect()
    if state is None:
        resolution = party_resolution(_history_with_candidates(history, _candidates(candidates.lazy())))
    else:
        resolution = party_resolution(history.manifests)
    parts = split_by_time(candidates, partitions or default_partitions(client, candidates.height))
    shared = client.scatter([history, stats, resolution, state], broadcast=True)
    return [
        client.submit(_partition_features, part, *shared, tuple(carry), pure=False)
        for part in parts
    ]


def build_features_on_cluster(
    client,  # noqa: ANN001 - distributed.Client
    candidates: pl.DataFrame | pl.LazyFrame,
    history: History,
    stats: FeatureStats,
    *,
    state: EntityState | None = None,
    partitions: int | None = None,
) -> pl.DataFrame:
    """:func:`features.pipeline.build_features` computed on the cluster: the identical frame, in input order.

    Same parameters, preconditions and time semantics (every feature of a row from data strictly
    before its ``decision_at``); ``partitions`` defaults to two per worker thread. With ``state``
    (e.g. from :func:`entity_state_on_cluster`) every candidate's ``decision_at`` must equal
    ``state.at`` (``ValueError`` from the workers otherwise, re-raised here).
    """
    candidates = ensure_decision_column(candidates.lazy()).collect()
    if candidates.height == 0:
        return build_features(candidates, history, stats, state=state)
    frames = client.gather(feature_partitions(client, candidates, history, stats, state=state, partitions=partitions))
    return pl.concat(frames, how="vertical").sort(POSITION).drop(POSITION)


# ----------------------------------------------------------------------------- entity snapshot
def _snapshot_partials(history: History, resolution: PartyResolution, at: datetime, part: int, parts: int) -> tuple[dict[str, pl.DataFrame], pl.Series]:
    """Partial :class:`EntityState` tables of the manifests (and their outcomes) whose id hash falls in ``part``."""
    mine = (pl.col("manifest_id").hash(seed=0) % parts) == part
    manifests = with_derived_columns(apply_resolution(history.manifests.filter(mine), resolution))
    hist = history_rows(manifests).filter(pl.col("t") < at)
    outc = outcome_rows(history.outcomes.filter(mine), manifests).filter(pl.col("t") < at)
    plans = {f.name: _snapshot_plan(f, hist, outc, at) for f in FAMILIES}
    *frames, known = pl.collect_all([*plans.values(), hist.select(_id_hash())])
    return dict(zip(plans, frames)), known.to_series()


def _combine_family(name: str, partials: list[tuple[dict[str, pl.DataFrame], pl.Series]]) -> pl.DataFrame:
    """One family's partial tables combined: counts summed (null when no part had the key), first filing min, last finding max."""
    family = next(f for f in FAMILIES if f.name == name)
    frame = pl.concat([tables[name] for tables, _ in partials], how="vertical")
    keys = list(family.keys)

    def combine(column: str) -> pl.Expr:
        if column == "_first":
            return pl.col(column).min()
        if column == "_last":
            return pl.col(column).max()
        return pl.when(pl.col(column).count() > 0).then(pl.col(column).sum()).alias(column)

    return frame.group_by(keys).agg(combine(c) for c in frame.columns if c not in keys).sort(keys, nulls_last=True)


def _combine_known(partials: list[tuple[dict[str, pl.DataFrame], pl.Series]]) -> pl.Series:
    return pl.concat([known for _, known in partials]).sort()


def entity_state_on_cluster(client, history: History, at: datetime, *, partitions: int | None = None) -> EntityState:  # noqa: ANN001
    """:func:`features.pipeline.entity_state` as a map-reduce on the cluster (the same state, see the module docstring).

    ``at`` must be timezone-aware (UTC); every count is of data strictly before it. ``partitions``
    (default two per worker thread) is the number of hash partitions of ``manifest_id``.
    """
    parts = partitions or default_partitions(client, 1 << 30)
    resolution = party_resolution(history.manifests)
    shared = client.scatter([history, resolution], broadcast=True)
    partials = [client.submit(_snapshot_partials, *shared, at, k, parts, pure=False) for k in range(parts)]
    tables = {f.name: client.submit(_combine_family, f.name, partials, pure=False) for f in FAMILIES}
    known = client.submit(_combine_known, partials, pure=False)
    gathered = client.gather([*tables.values(), known])
    return EntityState(at=at, tables=dict(zip(tables, gathered[:-1])), known=gathered[-1])
