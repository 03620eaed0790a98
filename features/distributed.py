"""Features on a Dask cluster: the client, and :func:`features.pipeline.build_features` computed by the workers.

Optional: needs ``dask`` and ``distributed`` (``pip install -e '.[cluster]'``). Nothing on the
single-machine path imports this module; without a cluster nothing changes.

How to call it from Python::

    from features.distributed import build_features_on_cluster, cluster_client

    with cluster_client("tcp://scheduler:8786") as client:      # or "local": a LocalCluster on this machine
        frame = build_features_on_cluster(client, candidates, history, stats, scratch=Path("/shared/ccp-scratch"))
        # == features.pipeline.build_features(candidates, history, stats), bit for bit, same row order

The work is :func:`features.distributed_lake.lake_feature_partitions` (the driver-light path: parties
resolved from the workers' partial records, entity events written per chunk, each time partition
computed by a worker and written to Parquet); training keeps those partitions on the workers
(:mod:`models.distributed`). :func:`build_features_on_cluster` reads them back into one frame in
input order, for callers that want the frame (a day's candidates, tests).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from features.history import History, ensure_decision_column
from features.pipeline import build_features
from features.stats import FeatureStats

POSITION = "__ccp_position"
"""Column carried beside a row's features: its position in the candidates given (or a unique training-row number)."""
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


def build_features_on_cluster(
    client,  # noqa: ANN001 - distributed.Client
    candidates: pl.DataFrame | pl.LazyFrame,
    history: History,
    stats: FeatureStats,
    *,
    rows_per_partition: int | None = None,
    scratch: Path | None = None,
) -> pl.DataFrame:
    """:func:`features.pipeline.build_features` computed on the cluster: the identical frame, in input order.

    Same preconditions and time semantics (every feature of a row from data strictly before its
    ``decision_at``), plus: every candidate's own manifest is in ``history.manifests`` (candidates
    drawn from the lake). The partitions are written under ``scratch`` (storage every worker and
    this process read; default this machine's temporary directory) and removed.
    """
    from features.distributed_lake import lake_feature_partitions

    candidates = ensure_decision_column(candidates.lazy()).collect()
    if candidates.height == 0:
        return build_features(candidates, history, stats)
    with tempfile.TemporaryDirectory(prefix="ccp-features-", dir=scratch) as tmp:
        out = lake_feature_partitions(client, candidates.with_row_index(POSITION).lazy(), history, stats, Path(tmp),
                                      rows_per_partition=rows_per_partition, carry=(POSITION,))
        frame = pl.read_parquet(out["files"])
    return frame.sort(POSITION).drop(POSITION)
