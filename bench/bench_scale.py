"""Benchmark: a national world of up to 20+ million manifests, single process vs a Dask LocalCluster.

Run: ``nice -n 10 python -m bench.bench_scale [--rows 1e6,5e6,20e6] [--workers 2] [--phases features,training] [--scale 1]``.

Data (prepared once, cached under ``bench/out/national-*/``, not timed): the
national world of :mod:`bench.national_world` (one simulated year over Spain's
five container ports, tiled across years and regional replicas); the world of
``n`` rows is its ``ceil(n / base)`` most recent tiles. The rows are every
manifest of those tiles as an IMPORT candidate at its port of discharge,
decided at 00:00 UTC of its arrival day (the training rows of a national model);
feature statistics are fitted once on the most recent tile.

For each size, each phase runs twice:

- **single process**: a child process (``nice`` inherited) calling
  :func:`features.pipeline.build_features` on every row against the whole
  world, then ``RiskModel.fit``. It is killed (by its pid) as soon as its RSS
  passes ``--memory-cap-gib`` and, before it is started, its peak is predicted
  from the smaller sizes (power law); a phase that would pass the cap is not
  run: both are reported as the finding, never left to the kernel's OOM killer.
- **LocalCluster** of ``--workers`` processes of one thread each, with a Dask
  ``memory_limit`` of ``--worker-memory-gib`` each: features by
  :func:`features.distributed_lake.lake_feature_partitions` (each partition written to
  Parquet on its worker, never gathered), training by
  :mod:`models.distributed` (``lightgbm.dask``).

Phase ``train`` (cluster only) is what ``targeting train --cluster`` runs, end to end:
:func:`models.distributed.train_on_cluster` on the world's history (every served
direction, labels, the split ``targeting train`` chooses, statistics fitted on the
training period, features, ``--rounds`` rounds, validation cut, evaluation, calibration).

Training runs a fixed ``--rounds`` boosting rounds with the production
parameters and no early stopping, so its cost per row is comparable across
sizes (the production model stops early, at most 600 rounds).

Figures: wall and CPU seconds, peak RSS of the single process, of the
cluster's driver and of each worker (sampled every 0.25 s; peak, not last),
rows per worker-hour (rows / (wall hours x workers)) and per CPU-hour, and the
growth exponent ``b`` in ``CPU time ~ rows^b`` and ``peak memory ~ rows^b``
between consecutive sizes (CPU time, not wall time: the machine is shared). Results also go to ``bench/out/scale-results-<world>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import polars as pl

from bench._measure import cpu_count, load_average, peak_rss_bytes, reset_peak_rss
from bench._scale_measure import GIB, PeakSampler, child_argv, growth_exponent, predict, run_capped
from bench.national_world import build_national_world, history_of, scan_tiles, tiles_for

OUT = Path(__file__).resolve().parent / "out"
REPLICAS = 4
LABEL_COLUMNS = ("inspected", "label", "random_slice")


# ----------------------------------------------------------------------------- data
def world_root(containers_per_day: int, years: int, replicas: int) -> Path:
    return OUT / f"national-c{containers_per_day}-y{years}-r{replicas}"


def candidates_of(root: Path, tiles) -> pl.LazyFrame:  # noqa: ANN001
    """Every manifest of ``tiles`` as an IMPORT candidate: decided at 00:00 UTC of its arrival day, at its port of discharge."""
    return scan_tiles(root, "manifests", tiles).with_columns(
        pl.col("eta").dt.truncate("1d").alias("decision_at"), pl.col("port_of_discharge").alias("port")
    )


def labelled_candidates(root: Path, tiles) -> pl.LazyFrame:  # noqa: ANN001
    """:func:`candidates_of` with ``inspected``, ``label`` and ``random_slice`` of the IMPORT exams at the port of discharge."""
    from models.dataset import outcome_labels

    labels = outcome_labels(scan_tiles(root, "outcomes", tiles)).select("manifest_id", "port", *LABEL_COLUMNS)
    return candidates_of(root, tiles).join(labels, on=["manifest_id", "port"], how="left", maintain_order="left").with_columns(
        pl.col("inspected").fill_null(False), pl.col("label").fill_null(0), pl.col("random_slice").fill_null(False)
    )


def labels_of(root: Path, tiles) -> pl.LazyFrame:  # noqa: ANN001
    return labelled_candidates(root, tiles).select("manifest_id", *LABEL_COLUMNS)


def stats_path(root: Path) -> Path:
    """Feature statistics fitted once on the most recent tile (cached beside the world)."""
    from features.history import with_derived_columns
    from features.stats import fit_stats
    from bench.national_world import Tile

    path = root / "feature_stats.json"
    if not path.exists():
        latest = [Tile(0, 0)]
        fit_stats(with_derived_columns(scan_tiles(root, "manifests", latest)).collect(), scan_tiles(root, "outcomes", latest).collect()).save(path)
    return path


# ----------------------------------------------------------------------------- single process (child)
def child_features(root: Path, tiles, out: Path, report: Path) -> None:  # noqa: ANN001
    from features.pipeline import build_features
    from features.stats import FeatureStats

    stats = FeatureStats.load(stats_path(root))
    start, cpu = time.perf_counter(), time.process_time()
    frame = build_features(candidates_of(root, tiles), history_of(root, tiles), stats)
    frame.write_parquet(out)
    report.write_text(json.dumps({"rows": frame.height, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                                  "peak_rss": peak_rss_bytes()}))


def child_training(root: Path, tiles, feature_paths: list[Path], rounds: int, threads: int, report: Path) -> None:  # noqa: ANN001
    import numpy as np

    import features.pipeline  # noqa: F401 - registers every feature
    from features.registry import categorical_columns, feature_columns
    from models.risk_model import RiskModel

    table = pl.scan_parquet(feature_paths)
    if "label" not in table.collect_schema().names():  # the single process's table: labels joined here (the cluster's carries them)
        table = table.join(labels_of(root, tiles), on="manifest_id", how="left")
    table = table.collect()
    X = table.select(feature_columns())
    y, w = training_targets(table)
    del table
    model = RiskModel(n_estimators=rounds, num_threads=threads, categorical_features=tuple(categorical_columns()))
    start, cpu = time.perf_counter(), time.process_time()
    model.fit(X, y, sample_weight=w)
    report.write_text(json.dumps({"rows": X.height, "rounds": rounds, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
                                  "peak_rss": peak_rss_bytes(), "positives": int(np.sum(y))}))


def default_weights():  # noqa: ANN201 - what models.training._sample_weights reads of a TrainConfig
    """``train_model``'s default sample weights (unlabelled rows are weighted negatives, random-slice exams up-weighted)."""
    from types import SimpleNamespace

    from models.training import TrainConfig

    defaults = TrainConfig.__dataclass_fields__
    return SimpleNamespace(unlabelled_weight=defaults["unlabelled_weight"].default, random_weight=defaults["random_weight"].default)


def training_targets(table: pl.DataFrame):  # noqa: ANN201
    """Labels and sample weights as ``train_model`` sets them (:func:`default_weights`)."""
    from models.training import _sample_weights

    return _sample_weights(table, default_weights())


# ----------------------------------------------------------------------------- LocalCluster
def start_cluster(workers: int, worker_memory: int):  # noqa: ANN201 - (LocalCluster, Client)
    """``workers`` processes of one thread each, loopback only, a Dask memory limit of ``worker_memory`` bytes each."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0", memory_limit=worker_memory)
    return cluster, Client(cluster)


def worker_pids() -> list[int]:
    """The worker processes of this driver's LocalCluster (its nannies run in the driver; a restarted worker included)."""
    import psutil

    pids = []
    for child in psutil.Process().children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:
            continue
    return pids


def arrival_prefilter(lo, hi) -> pl.Expr:  # noqa: ANN001 - datetimes
    """Rows decided in ``[lo, hi)`` (whole UTC days) are those arriving in it: lets each worker's scan skip the other row groups."""
    return (pl.col("eta") >= lo) & (pl.col("eta") < hi)


def cluster_features(client, root: Path, tiles, out_dir: Path, rows_per_partition: int) -> dict:  # noqa: ANN001
    """Features of every row on the cluster by :func:`features.distributed_lake.lake_feature_partitions`: nothing row-sized on the driver.

    The workers resolve the parties of one tile each, write each tile's entity events, then read their
    own days of candidates and write their partition's features to Parquet.
    """
    from features.distributed_lake import lake_feature_partitions
    from features.stats import FeatureStats

    stats = FeatureStats.load(stats_path(root))
    chunks = [scan_tiles(root, "manifests", [t]) for t in tiles]
    out = lake_feature_partitions(client, labelled_candidates(root, tiles), history_of(root, tiles), stats, out_dir,
                                  rows_per_partition=rows_per_partition, chunks=chunks, prefilter=arrival_prefilter, carry=LABEL_COLUMNS)
    return {"rows": out["rows"], "partitions": out["partitions"], "parties": out["parties"]}


def cluster_training(client, files: list[Path], rounds: int, negative_fraction: float = 1.0) -> dict:  # noqa: ANN001
    """``models.distributed.fit_on_cluster`` (``lightgbm.dask``, data-parallel) on the written feature partitions, ``rounds`` rounds."""
    from features.registry import categorical_columns
    from models.distributed import fit_on_cluster, training_part
    from models.risk_model import RiskModel

    parts = [client.submit(training_part, str(f), k, default_weights(), negative_fraction, pure=False) for k, f in enumerate(files)]
    trained = sum(client.gather(client.map(len, parts, pure=False)))
    model = RiskModel(n_estimators=rounds, categorical_features=tuple(categorical_columns()))
    start = time.perf_counter()
    booster = fit_on_cluster(client, parts, model)
    return {"trained_rows": trained, "negative_fraction": negative_fraction, "rounds": booster.num_trees(), "fit_seconds": time.perf_counter() - start}


def cluster_train_command(client, root: Path, tiles, rounds: int, negative_fraction: float, eval_days: int | None = None) -> dict:  # noqa: ANN001
    """``targeting train --cluster``'s training (:func:`models.distributed.train_on_cluster`) on the world's history, ``rounds`` rounds.

    The split ``targeting train`` chooses, or with ``eval_days`` validation and test periods of that many days each at the end.
    """
    from models.distributed import train_on_cluster
    from models.training import TrainConfig

    history = history_of(root, tiles)
    split = command_split(history, eval_days)
    (root / "runs").mkdir(exist_ok=True)
    config = TrainConfig(split=split, num_threads=1, model={"n_estimators": rounds})
    def progress(message: str) -> None:  # each step with the time it starts: where the wall time goes
        print(f"    {time.strftime('%H:%M:%S')} {message}", flush=True)

    result = train_on_cluster(client, history, config, negative_fraction=negative_fraction, scratch=root / "runs", progress=progress)
    headline = result.evaluation.headline()
    return {"split": split.as_dict(), "counts": result.counts, "negative_fraction": negative_fraction, "rounds": result.model.booster_.num_trees(),
            "metrics": {k: headline[k] for k in ("labelled/model/pr_auc", "labelled/model/roc_auc", "random_slice/model/recall_at_1") if k in headline}}


def command_split(history, eval_days: int | None):  # noqa: ANN001, ANN201 - History -> TimeSplit
    """The split ``targeting train`` chooses, or with ``eval_days`` validation and test periods of that many days each at the end."""
    from datetime import timedelta

    from models.dataset import TimeSplit
    from models.split_choice import choose_split

    split = choose_split(history).split
    if eval_days:
        split = TimeSplit(split.train_start, split.test_end - timedelta(days=2 * eval_days), split.test_end - timedelta(days=eval_days), split.test_end)
    return split


def cluster_statistics(client, root: Path, tiles, eval_days: int | None = None) -> dict:  # noqa: ANN001
    """The first step of ``targeting train --cluster`` alone: the outcomes matched once, the labelled rows counted per
    decision day and the feature statistics fitted from the workers' files (:func:`models.distributed.staged_statistics`)."""
    import tempfile

    from models.distributed import matched_outcomes_on_disk, staged_statistics

    history = history_of(root, tiles)
    split = command_split(history, eval_days)
    (root / "runs").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ccp-statistics-", dir=root / "runs") as tmp:
        history, _ = matched_outcomes_on_disk(history, Path(tmp) / "outcomes.parquet")
        ranges, stats = staged_statistics(client, history, split, Path(tmp) / "stats")
    return {"split": split.as_dict(), "partitions": len(ranges), "training_rows": stats.fitted_on["manifests"], "stats_sha256": stats.sha256()}


def measure_cluster(client, run) -> dict:  # noqa: ANN001
    """Run ``run()`` on fresh workers: wall, driver and worker CPU seconds, driver and per-worker peak RSS."""
    client.restart(timeout=900)  # fresh workers; on a loaded machine they take minutes to come back
    reset_peak_rss()
    start, cpu = time.perf_counter(), time.process_time()
    with PeakSampler(worker_pids) as sampler:
        try:
            out = run()
            error = None
        except Exception as exc:  # noqa: BLE001 - a worker killed at its memory limit is a finding, reported
            out, error = {}, f"{type(exc).__name__}: {exc}"[:300]
    return {**out, "seconds": time.perf_counter() - start, "driver_cpu_seconds": time.process_time() - cpu, "worker_cpu_seconds": sampler.cpu_seconds,
            "driver_peak_rss": peak_rss_bytes(), "worker_peak_rss": sorted(sampler.peak.values(), reverse=True), "worker_processes": len(sampler.peak),
            "error": error}


# ----------------------------------------------------------------------------- report
def _gib(n: float | None) -> str:
    return f"{n / GIB:.2f}" if n else "-"


def per_worker_hour(entry: dict) -> float | None:
    """Rows per worker-hour: rows / (wall hours x worker processes)."""
    if not entry.get("seconds") or entry.get("error") or entry.get("killed_at_cap") or entry.get("skipped"):
        return None
    return entry["rows"] / (entry["seconds"] / 3600 * entry.get("workers", 1))


def per_cpu_hour(entry: dict) -> float | None:
    """Rows per CPU-hour (every process of the path: the single process; the driver plus the workers)."""
    cpu = _cpu(entry)
    if not cpu or entry.get("error") or entry.get("killed_at_cap") or entry.get("skipped"):
        return None
    return entry["rows"] / (cpu / 3600)


def peak_per_worker(entry: dict) -> float | None:
    if "worker_peak_rss" in entry:
        return max(entry["worker_peak_rss"], default=None)
    return entry.get("peak_rss")


def describe(path: str, phase: str, entry: dict) -> str:
    """One line for a finished phase."""
    head = f"{path:7} {phase:8} {entry['rows']:>12,} rows"
    if entry.get("skipped") or entry.get("killed_at_cap") or entry.get("error"):
        return f"{head}  {entry.get('note') or entry.get('error')}"
    cpu = _cpu(entry)
    memory = f"peak RSS {_gib(entry.get('peak_rss'))} GiB" if path == "single" else (
        f"peak RSS per worker {', '.join(_gib(p) for p in entry['worker_peak_rss'])} GiB, driver {_gib(entry['driver_peak_rss'])} GiB")
    return f"{head}  {entry['seconds']:8.1f} s wall  {cpu:8.1f} s CPU  {memory}  {per_worker_hour(entry):,.0f} rows/worker-hour"


def table(results: dict) -> str:
    """The measured table (markdown) with the growth exponents between consecutive sizes."""
    lines = ["| path | phase | rows | wall s | CPU s | peak RSS per worker GiB | driver GiB | rows/worker-hour | rows/CPU-hour | b(CPU time) | b(memory) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in sorted(results):
        path, phase = key.split("/")
        previous = None
        for rows in sorted(results[key], key=int):
            e = results[key][rows]
            if e.get("skipped") or e.get("killed_at_cap") or e.get("error"):
                lines.append(f"| {path} | {phase} | {int(rows):,} | {e.get('note') or e.get('error')} |||||||| ")
                continue
            cpu = _cpu(e)
            bt = bm = "-"
            if previous:
                t = growth_exponent(previous["rows"], _cpu(previous), e["rows"], _cpu(e))
                m = growth_exponent(previous["rows"], peak_per_worker(previous) or 0, e["rows"], peak_per_worker(e) or 0)
                bt, bm = (f"{t:.2f}" if t is not None else "-"), (f"{m:.2f}" if m is not None else "-")
            lines.append(
                f"| {path} | {phase} | {e['rows']:,} | {e['seconds']:.0f} | {cpu:.0f} | {_gib(peak_per_worker(e))} | {_gib(e.get('driver_peak_rss'))} |"
                f" {per_worker_hour(e):,.0f} | {per_cpu_hour(e) or 0:,.0f} | {bt} | {bm} |"
            )
            previous = e
    return "\n".join(lines)


def _extrapolate(points: list[tuple[float, float]], n: float) -> tuple[float | None, float | None]:
    """(value at ``n``, exponent) from the two largest measured ``(rows, value)`` points (linear from one)."""
    points = sorted(p for p in points if p[1] > 0)
    if not points:
        return None, None
    if len(points) == 1:
        return points[0][1] * n / points[0][0], 1.0
    (n1, v1), (n2, v2) = points[-2:]
    b = growth_exponent(n1, v1, n2, v2)
    return v2 * (n / n2) ** b, b


def sizing(results: dict, *, target: float = 100e6, window_hours: float = 8.0, worker_memory_gib: float = 16.0, rounds: int = 100) -> str:
    """Workers and memory per ``target`` manifests, extrapolated from the cluster path's largest measured sizes (markdown)."""
    lines = [f"Per {target / 1e6:,.0f} million manifests (extrapolated from the largest measured sizes of the cluster path; exponent in brackets):", ""]
    feats = [e for e in results.get("cluster/features", {}).values() if _ok(e)]
    if feats:
        cpu, b = _extrapolate([(e["rows"], _cpu(e)) for e in feats], target)
        worker, bw = _extrapolate([(e["rows"], peak_per_worker(e)) for e in feats], target)
        driver, bd = _extrapolate([(e["rows"], e["driver_peak_rss"]) for e in feats], target)
        hours = cpu / 3600
        lines.append(f"- features: {hours:,.1f} worker-hours (b = {b:.2f}); {math.ceil(hours / window_hours):,} single-threaded workers for a {window_hours:g}-hour window;"
                     f" peak memory per worker {worker / GIB:,.1f} GiB (b = {bw:.2f}); driver {driver / GIB:,.1f} GiB (b = {bd:.2f})")
    for key in sorted(k for k in results if k.startswith("cluster/training")):
        lines += _training_sizing(key.split("/")[1], [e for e in results[key].values() if _ok(e) and e.get("rounds")], target, worker_memory_gib, rounds)
    return "\n".join(lines)


def _training_sizing(phase: str, train: list[dict], target: float, worker_memory_gib: float, rounds: int) -> list[str]:
    """One sizing line for a training phase (rows are manifests; a down-sampled phase trains on a fraction of them)."""
    lines = []
    if train:
        train.sort(key=lambda e: e["rows"])
        largest = train[-1]
        cpu_per_row_round = _cpu(largest) / (largest["rows"] * largest["rounds"])
        held = [(e["rows"], sum(e["worker_peak_rss"]), len(e["worker_peak_rss"])) for e in train]
        if len(held) > 1 and held[-1][1] > held[-2][1]:  # marginal bytes per row over a per-worker baseline
            per_row = (held[-1][1] - held[-2][1]) / (held[-1][0] - held[-2][0])
            baseline = max(0.0, (held[-1][1] - per_row * held[-1][0]) / held[-1][2])
        else:  # one size: all of it per row (an upper bound)
            per_row, baseline = held[-1][1] / held[-1][0], 0.0
        workers = max(1, math.ceil(target * per_row / (worker_memory_gib * GIB - baseline)))
        hours = cpu_per_row_round * target * rounds / 3600
        lines.append(f"- {phase} ({rounds} rounds): {hours:,.1f} worker-hours ({cpu_per_row_round * 1e6:.2f} CPU-s per million row-rounds at {largest['rows']:,} rows);"
                     f" {per_row:,.0f} bytes per row held by the workers over a {baseline / GIB:.2f} GiB baseline each,"
                     f" so {workers:,} workers of {worker_memory_gib:g} GiB ({hours / workers:,.1f} hours each)")
    return lines


# ----------------------------------------------------------------------------- orchestration
def results_path(root: Path) -> Path:
    """Where the figures of the world under ``root`` are kept (each run adds or replaces its sizes)."""
    return OUT / f"scale-results-{root.name}.json"


def _load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _record(path: Path, key: str, rows: int, entry: dict) -> dict:
    """Add one entry to the results file (re-read first: several runs may add sizes at once); the merged results."""
    results = _load_results(path)
    results.setdefault(key, {})[str(rows)] = entry
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True))
    tmp.replace(path)
    return results


def _cpu(entry: dict) -> float:
    return entry.get("cpu_seconds") or entry.get("driver_cpu_seconds", 0) + entry.get("worker_cpu_seconds", 0)


def _ok(entry: dict) -> bool:
    return not (entry.get("killed_at_cap") or entry.get("skipped") or entry.get("error"))


def predictions(results: dict, key: str, rows: int) -> dict:
    """Peak memory (per worker) and CPU seconds of ``key`` at ``rows``, from the measured smaller sizes (power law)."""
    measured = sorted((e["rows"], peak_per_worker(e) or 0, _cpu(e)) for e in results.get(key, {}).values() if _ok(e) and e["rows"] < rows)
    if not measured:
        return {}
    sizes = [m[0] for m in measured]
    out = {"predicted_peak_rss": predict(sizes, [m[1] for m in measured], rows), "predicted_cpu_seconds": predict(sizes, [m[2] for m in measured], rows)}
    drivers = [(e["rows"], e["driver_peak_rss"]) for e in results.get(key, {}).values() if _ok(e) and e["rows"] < rows and e.get("driver_peak_rss")]
    if drivers:
        out["predicted_driver_peak_rss"] = predict([d[0] for d in drivers], [d[1] for d in drivers], rows)
    return out


def gate(results: dict, key: str, rows: int, memory_limit: int, max_cpu_seconds: float | None, *, driver_limit: int | None = None) -> tuple[dict, dict | None]:
    """(predictions, a skip entry when the predicted peak (per worker, or the driver's) passes its limit or the CPU time the budget)."""
    expected = predictions(results, key, rows)
    peak, cpu, driver = expected.get("predicted_peak_rss"), expected.get("predicted_cpu_seconds"), expected.get("predicted_driver_peak_rss")
    if peak and peak > memory_limit:
        return expected, {"rows": rows, "skipped": True, **expected, "note": f"predicted peak {peak / GIB:.1f} GiB > {memory_limit / GIB:.1f} GiB: not run"}
    if driver and driver_limit and driver > driver_limit:
        return expected, {"rows": rows, "skipped": True, **expected,
                          "note": f"predicted driver peak {driver / GIB:.1f} GiB > {driver_limit / GIB:.1f} GiB: not run"}
    if cpu and max_cpu_seconds and cpu > max_cpu_seconds:
        return expected, {"rows": rows, "skipped": True, **expected,
                          "note": f"predicted {cpu / 60:.0f} CPU-minutes > the {max_cpu_seconds / 60:.0f}-minute budget: not run"}
    return expected, None


def run_single(rows: int, argv: list[str], cap: int, report: Path) -> dict:
    """One single-process phase in a child killed past ``cap`` bytes of RSS."""
    child = run_capped(argv, cap_bytes=cap, report_path=report)
    entry = {"rows": rows, "seconds": child.seconds, "cpu_seconds": child.cpu_seconds, "peak_rss": child.peak_rss,
             "killed_at_cap": child.killed_at_cap, "returncode": child.returncode, **{f"child_{k}": v for k, v in child.report.items()}}
    if child.killed_at_cap:
        entry["note"] = f"killed at the {cap / GIB:.1f} GiB cap after {child.seconds:.0f} s"
    elif child.returncode != 0:
        entry["error"] = f"exit {child.returncode}"
    return entry


def parse_rows(text: str) -> list[int]:
    return sorted(int(float(x)) for x in text.split(","))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1e6,5e6,20e6", help="World sizes in manifests, comma-separated (rounded up to whole tiles).")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (one thread each).")
    parser.add_argument("--phases", default="features,training", help="features, training (on the features phase's files), train (targeting train --cluster end to end) and/or statistics (its first step alone: rows counted per day, feature statistics fitted by the workers); the last two on the cluster path only.")
    parser.add_argument("--paths", default="single,cluster", help="single, cluster or both.")
    parser.add_argument("--memory-cap-gib", type=float, default=10.0, help="Kill the single process past this RSS.")
    parser.add_argument("--worker-memory-gib", type=float, default=4.5, help="Dask memory_limit of each worker.")
    parser.add_argument("--rows-per-partition", type=int, default=250_000, help="Rows per feature partition of the cluster path (at least two partitions per worker).")
    parser.add_argument("--rounds", type=int, default=50, help="Boosting rounds of the training phase (fixed, no early stopping).")
    parser.add_argument("--negative-fraction", type=float, default=1.0,
                        help="Cluster training on every seizure and this fraction of the other rows, weights divided by it (recorded as phase training-s<fraction>).")
    parser.add_argument("--eval-days", type=int, default=None, help="Phase train: validation and test periods of this many days each (default: the split targeting train chooses).")
    parser.add_argument("--report", action="store_true", help="Only print the table and the sizing of the results measured so far.")
    parser.add_argument("--fresh", action="store_true", help="Measure again the sizes already in the results file.")
    parser.add_argument("--force", action="store_true", help="Run a phase even when its predicted peak or CPU time passes the limits (the prediction is still recorded).")
    parser.add_argument("--max-cpu-minutes", type=float, default=None, help="Do not start a phase predicted to need more CPU time.")
    parser.add_argument("--containers-per-day", type=int, default=2740, help="Base year's daily arrivals (2,740: about 1 million manifests).")
    parser.add_argument("--scale", type=float, default=1.0, help="Multiplies --rows and the base year's daily arrivals (make bench -- --scale 0.01: a quick run).")
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=REPLICAS)
    parser.add_argument("--child", choices=("features", "training"), help=argparse.SUPPRESS)
    parser.add_argument("--child-rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.scale != 1:
        args.containers_per_day = max(1, round(args.containers_per_day * args.scale))
        args.rows = ",".join(str(round(float(r) * args.scale)) for r in args.rows.split(","))
    root = world_root(args.containers_per_day, args.years, args.replicas)
    if args.child:
        return _child(args, root)
    if args.report:
        results = _load_results(results_path(root))
        print(f"{table(results)}\n\n{sizing(results)}")
        return 0
    print(f"bench_scale: {cpu_count()} CPU(s), load average {load_average()}, polars {pl.__version__}, nice {os.nice(0)}", flush=True)
    world = build_national_world(root, years=args.years, replicas=args.replicas, containers_per_day=args.containers_per_day)
    base = world["base_manifests"]
    sizes = parse_rows(args.rows)
    if max(sizes) > world["manifests"]:
        raise SystemExit(f"--rows up to {max(sizes):,} but the world has {world['manifests']:,} manifests: raise --years or --replicas")
    stats_path(root)
    results = _load_results(results_path(root))
    phases, paths = args.phases.split(","), args.paths.split(",")
    started: dict = {}

    def client():  # noqa: ANN202 - the LocalCluster's client, started when a cluster phase first runs
        if not started:
            started["cluster"], started["client"] = start_cluster(args.workers, int(args.worker_memory_gib * GIB))
        return started["client"]

    try:
        for n in sizes:
            tiles = tiles_for(n, base, args.replicas)
            rows = base * len(tiles)
            print(f"\n== {rows:,} manifests ({len(tiles)} tiles) ==", flush=True)
            for phase in phases:
                for path in paths:
                    if phase in ("train", "statistics") and path != "cluster":
                        continue
                    results = _load_results(results_path(root))
                    key = result_key(path, phase, args.negative_fraction, args.eval_days)
                    done = results.get(key, {}).get(str(rows))
                    if done and _ok(done) and not args.fresh:
                        print("  " + describe(path, phase, done) + "  (measured earlier; --fresh measures again)", flush=True)
                        continue
                    entry = _run_phase(args, results, root, phase, path, rows, client)
                    entry.update(workers=args.workers if path == "cluster" else 1, load_average=load_average())
                    results = _record(results_path(root), key, rows, entry)
                    print("  " + describe(path, phase, entry), flush=True)
    finally:
        if started:
            started["client"].close()
            started["cluster"].close()
    print()
    print(table(results))
    print()
    print(sizing(results))
    return 0


def result_key(path: str, phase: str, negative_fraction: float, eval_days: int | None = None) -> str:
    """``path/phase`` in the results file; down-sampled cluster training is its own phase, ``training-s<fraction>``."""
    if phase == "statistics":
        return f"{path}/{phase}" + (f"-e{eval_days}" if eval_days else "")
    if phase in ("training", "train") and path == "cluster" and negative_fraction < 1:
        return f"{path}/{phase}-s{negative_fraction:g}" + (f"-e{eval_days}" if phase == "train" and eval_days else "")
    return f"{path}/{phase}"


def _run_phase(args, results: dict, root: Path, phase: str, path: str, rows: int, client) -> dict:  # noqa: ANN001
    """One phase of one path at one size, unless its predicted peak memory or CPU time rules it out."""
    limit = int((args.memory_cap_gib if path == "single" else args.worker_memory_gib) * GIB)
    expected, skip = gate(results, result_key(path, phase, args.negative_fraction, args.eval_days), rows, limit, args.max_cpu_minutes * 60 if args.max_cpu_minutes else None,
                          driver_limit=int(args.memory_cap_gib * GIB))
    if skip and not args.force:
        return skip
    return {**_measure_phase(args, root, phase, path, rows, client), **expected}


def _measure_phase(args, root: Path, phase: str, path: str, rows: int, client) -> dict:  # noqa: ANN001
    base = json.loads((root / "world.json").read_text())["base_manifests"]
    tiles = tiles_for(rows, base, args.replicas)
    single_out, cluster_out = feature_outputs(root, rows)
    report = root / "runs" / f"child-{phase}-{rows}.json"
    cap = int(args.memory_cap_gib * GIB)
    if phase == "features" and path == "single":
        return run_single(rows, child_argv("--child", "features", "--child-rows", str(rows), "--child-report", str(report), *_world_args(args)), cap, report)
    if phase == "features":
        return measure_cluster(client(), lambda: cluster_features(client(), root, tiles, cluster_out, args.rows_per_partition))
    if phase == "statistics":
        return {**measure_cluster(client(), lambda: cluster_statistics(client(), root, tiles, args.eval_days)), "rows": rows}
    if phase == "train":
        run = lambda: cluster_train_command(client(), root, tiles, args.rounds, args.negative_fraction, args.eval_days)  # noqa: E731
        return {**measure_cluster(client(), run), "rows": rows}
    features = feature_files(single_out, cluster_out)
    if not features:
        return {"rows": rows, "skipped": True, "note": "no feature table of this size (features phase not run or failed)"}
    if path == "single":
        return run_single(rows, child_argv("--child", "training", "--child-rows", str(rows), "--child-report", str(report), *_world_args(args)), cap, report)
    entry = measure_cluster(client(), lambda: cluster_training(client(), features, args.rounds, args.negative_fraction))
    return {**entry, "rows": rows}


def _world_args(args) -> list[str]:  # noqa: ANN001
    return ["--containers-per-day", str(args.containers_per_day), "--years", str(args.years), "--replicas", str(args.replicas), "--rounds", str(args.rounds)]


def feature_outputs(root: Path, rows: int) -> tuple[Path, Path]:
    """(single process's feature file, cluster's partition directory) of a size, under ``<root>/runs``."""
    runs = root / "runs"
    runs.mkdir(exist_ok=True)
    return runs / f"features-single-{rows}.parquet", runs / f"features-cluster-{rows}"


def feature_files(single_out: Path, cluster_out: Path) -> list[Path]:
    """The feature table of a size: the cluster's partitions, else the single process's file."""
    parts = sorted(cluster_out.glob("part-*.parquet")) if cluster_out.exists() else []
    return parts or ([single_out] if single_out.exists() else [])


def _child(args, root: Path) -> int:  # noqa: ANN001
    base = json.loads((root / "world.json").read_text())["base_manifests"]
    tiles = tiles_for(args.child_rows, base, args.replicas)
    if args.child == "features":
        child_features(root, tiles, feature_outputs(root, args.child_rows)[0], args.child_report)
    else:
        files = feature_files(*feature_outputs(root, args.child_rows))
        child_training(root, tiles, files, args.rounds, 2, args.child_report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
