"""Benchmark: the HTTP service with the real engine, on loopback, over a port-day of 5,000 candidates.

Run: ``python -m bench.bench_service [--quick | --scale 0.1] [--rebuild] [--creates 30] [--fetches 2000] [--clients 20]``.

Data (prepared once and cached under ``bench/out/service-<parameters>/``, not timed): a simulated
world with one port (``NLRTM``) receiving about 5,000 x ``--scale`` containers a day (500 with ``--quick``),
ingested into a lake; a champion trained (default model parameters), registered and promoted in
an MLflow SQLite store. The list day is the test-period day whose candidate count is closest to
that daily volume.

The service runs as a real ``uvicorn --factory serve.app:app_from_env`` subprocess with
``CCP_ENGINE_FACTORY=targeting.lake_engine:engine_from_settings`` and a fresh SQLite store.

Figures:

1. list creation end to end over HTTP (``POST /v1/ports/NLRTM/inspection-lists``, capacity 75 =
   1.5 %, 15 physical + 60 NII, 10 % random slice): the first request of the day (it builds the
   day's cached state) reported separately, then p50/p95 over ``--creates`` sequential requests.
   Target p95 < 500 ms.
2. fetching stored lists (``GET /v1/inspection-lists/{id}``: the list, its reasons and the count of its deferred
   candidates) with ``--clients`` concurrent keep-alive clients, ``--fetches`` requests in total:
   p50/p99. Target p99 < 50 ms. Every fetch is audited (checked at the end). For scale, the same
   clients then hit ``/healthz`` and ``/v1/models`` (the floor of the HTTP stack and key check on
   this machine) and fetch the lists whole with ``?include=deferred`` (~640 kB each; after one
   untimed fetch of each, which builds its body). The clients are a minimal keep-alive HTTP/1.1
   client on asyncio streams: they run on the same cores as the server, and a general-purpose
   client (httpx) would spend about 1 ms of CPU per request there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench._measure import cpu_count, load_average, verdict

OUT = Path(__file__).resolve().parent / "out"
PORT = "NLRTM"
TARGET_CREATE_P95_MS = 500.0
TARGET_FETCH_P99_MS = 50.0
WARMUP_DAYS = 30


@dataclass(frozen=True)
class Scale:
    containers_per_day: int
    days: int
    seed: int = 21

    @property
    def key(self) -> str:
        return f"service-c{self.containers_per_day}-d{self.days}-s{self.seed}"


PORT_DAY = 5000


def scale_of(share: float) -> Scale:
    """``share`` of the full port-day (1 = 5,000 containers a day at the port)."""
    return Scale(containers_per_day=max(50, round(PORT_DAY * share)), days=60 if share >= 0.5 else 50)


FULL = scale_of(1.0)
QUICK = scale_of(0.1)


@dataclass(frozen=True)
class Prepared:
    root: Path
    list_date: date
    candidates: int
    model_version: str

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlruns' / 'mlflow.db'}"


# ----------------------------------------------------------------------------- data
def prepare(scale: Scale, rebuild: bool) -> Prepared:
    """Simulate, ingest, train and promote once; cached by parameters."""
    root = OUT / scale.key
    ready = root / "READY.json"
    if ready.exists() and not rebuild:
        meta = json.loads(ready.read_text())
        return Prepared(root, date.fromisoformat(meta["list_date"]), meta["candidates"], meta["model_version"])
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    import polars as pl

    from features.data.ingest import ingest
    from features.data.lake import Lake
    from models.dataset import TimeSplit
    from models.tracking import configure
    from models.training import TrainConfig
    from models.workflow import promote, train_and_register
    from targeting.policy import candidates_for
    from targeting.sim.run import simulate_to_directory
    from targeting.sim.world import WorldConfig

    began = time.perf_counter()
    start = date(2025, 1, 1)
    config = WorldConfig(seed=scale.seed, start=start, days=scale.days, ports=(PORT,), containers_per_day=scale.containers_per_day)
    print(f"  preparing data: simulating {scale.days} days x {scale.containers_per_day:,} containers/day at {PORT} ...", flush=True)
    simulate_to_directory(config, root / "world")
    print(f"  ingesting ... ({time.perf_counter() - began:.0f} s)", flush=True)
    lake = Lake(root / "lake")
    now = datetime.combine(start + timedelta(days=scale.days + 30), datetime.min.time(), tzinfo=UTC)
    for table in ("manifests", "events", "outcomes", "alerts"):
        ingest(lake, table, [root / "world" / f"{table}.parquet"], now=now)
    rest = scale.days - WARMUP_DAYS
    split = TimeSplit(
        start + timedelta(days=WARMUP_DAYS),
        start + timedelta(days=WARMUP_DAYS + int(rest * 0.6)),
        start + timedelta(days=WARMUP_DAYS + int(rest * 0.8)),
        start + timedelta(days=scale.days),
    )
    print(f"  training and promoting a champion ... ({time.perf_counter() - began:.0f} s)", flush=True)
    (root / "mlruns").mkdir()
    client = configure(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    _, logged = train_and_register(lake, client, TrainConfig(split=split))
    assert promote(lake, client, logged.version).promoted
    manifests = lake.scan("manifests")
    counts = {
        day: candidates_for(manifests, PORT, day).select(pl.len()).collect().item()
        for day in (split.valid_end + timedelta(days=i) for i in range((split.test_end - split.valid_end).days))
    }
    list_date = min(counts, key=lambda d: (abs(counts[d] - scale.containers_per_day), d))
    meta = {"list_date": list_date.isoformat(), "candidates": counts[list_date], "model_version": logged.version}
    ready.write_text(json.dumps(meta))
    print(f"  prepared in {time.perf_counter() - began:.0f} s", flush=True)
    return Prepared(root, list_date, counts[list_date], logged.version)


# ----------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(prepared: Prepared, store: Path) -> tuple[subprocess.Popen, str, dict[str, str], Path]:
    """The real service on a free loopback port; returns the process, its URL, the env and its log."""
    import httpx

    env = {
        **os.environ,
        "CCP_DATABASE_URL": f"sqlite:///{store / 'ccp.db'}",
        "CCP_LAKE_DIR": str(prepared.lake_dir),
        "CCP_MLFLOW_TRACKING_URI": prepared.tracking_uri,
        "CCP_ENGINE_FACTORY": "targeting.lake_engine:engine_from_settings",
        "CCP_MAX_PAGE_SIZE": "200",
        # one key drives every client here: lift its rate limit (default 100/s per key) so the service is measured
        "CCP_RATE_LIMITS": json.dumps({role: 100_000 for role in ("officer", "data_scientist", "auditor", "admin")}),
    }
    env.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
    port = _free_port()
    log = store / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "serve.app:app_from_env", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return process, base, env, log
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    process.kill()
    raise SystemExit("the server did not become ready in 180 s")


def make_key(database_url: str) -> str:
    from serve.app import open_store
    from serve.security import Role
    from serve.settings import Settings
    from serve.store.keys import create_key

    database = open_store(Settings(database_url=database_url))
    try:
        with database.write() as session:
            return create_key(session, role=Role.OFFICER, ports=(PORT,), label="bench", created_by="bench").key
    finally:
        database.dispose()


def audited_fetches(database_url: str) -> int:
    from sqlalchemy import func, select

    from serve.db import Database
    from serve.tables import AuditEvent

    database = Database.from_url(database_url)
    try:
        with database.read() as session:
            return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "list.fetch", AuditEvent.result == "ok")) or 0
    finally:
        database.dispose()


# ----------------------------------------------------------------------------- measurements
def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def measure_creates(base: str, key: str, list_date: date, n: int) -> tuple[float, list[float], list[dict]]:
    import httpx

    body = {"date": list_date.isoformat(), "capacity": 75, "nii_capacity": 60, "physical_capacity": 15, "exploration_share": 0.1}
    created = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300) as client:
        def one() -> float:
            began = time.perf_counter()
            response = client.post(f"/v1/ports/{PORT}/inspection-lists", json=body)
            elapsed = time.perf_counter() - began
            if response.status_code != 201:
                raise SystemExit(f"list creation failed: HTTP {response.status_code} {response.text[:500]}")
            created.append(response.json())
            return elapsed

        warmup = one()
        timings = [one() for _ in range(n)]
    return warmup, timings, created


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, int]:
    """One keep-alive HTTP/1.1 GET on an open connection: (status, body length). Precondition: the
    server answers with ``Content-Length`` (the service never streams these responses)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length")
    await reader.readexactly(length)
    return status, length


async def _fetch_all(base: str, key: str, paths: list[str], total: int, clients: int) -> tuple[list[float], int]:
    """``clients`` keep-alive connections GET ``paths`` round robin until ``total`` requests are done.

    A minimal HTTP/1.1 client on asyncio streams: a general-purpose client
    (httpx) spends about 1 ms of CPU per request, on the same two cores the
    server needs, and would measure itself more than the service.
    """
    host, port = base.removeprefix("http://").split(":")
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(paths[i % len(paths)])
    timings: list[float] = []
    sizes = [0]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port), limit=2**20)
        try:
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
                began = time.perf_counter()
                status, length = await _get(reader, writer, request)
                timings.append(time.perf_counter() - began)
                if status != 200:
                    raise SystemExit(f"fetch of {path} failed: HTTP {status}")
                sizes[0] = max(sizes[0], length)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return timings, sizes[0]


def measure_fetches(base: str, key: str, paths: list[str], total: int, clients: int) -> tuple[list[float], float, int]:
    """``total`` GETs of ``paths`` (round robin) by ``clients`` concurrent keep-alive clients: latencies, wall time, largest body."""
    began = time.perf_counter()
    timings, size = asyncio.run(_fetch_all(base, key, paths, total, clients))
    return timings, time.perf_counter() - began, size


# ----------------------------------------------------------------------------- run
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Small scale: 500 containers a day (same as --scale 0.1), fewer requests.")
    parser.add_argument("--scale", type=float, default=None, help="Share of the 5,000-container port-day (default 1; below 1: fewer requests).")
    parser.add_argument("--rebuild", action="store_true", help="Re-simulate, re-ingest and retrain the cached world.")
    parser.add_argument("--creates", type=int, default=None, help="Timed list creations (default 30; 10 with --quick).")
    parser.add_argument("--fetches", type=int, default=None, help="Fetches in total (default 2000; 300 with --quick).")
    parser.add_argument("--clients", type=int, default=20, help="Concurrent fetching clients.")
    args = parser.parse_args(argv)
    share = 0.1 if args.quick else (args.scale if args.scale is not None else 1.0)
    if not 0 < share <= 2:
        parser.error("--scale must be in (0, 2]")
    scale = scale_of(share)
    small = share < 1
    creates = args.creates or (10 if small else 30)
    fetches = args.fetches or (300 if small else 2000)

    print(f"bench_service: {scale.containers_per_day:,} containers/day at {PORT}, {cpu_count()} CPU(s), load average {load_average()}", flush=True)
    prepared = prepare(scale, args.rebuild)
    print(f"  list day {prepared.list_date}: {prepared.candidates:,} candidates; champion version {prepared.model_version}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        store = Path(tmp)
        database_url = f"sqlite:///{store / 'ccp.db'}"
        key = make_key(database_url)
        began = time.perf_counter()
        process, base, _, log = start_server(prepared, store)
        print(f"  server ready in {time.perf_counter() - began:.1f} s (uvicorn subprocess, real engine, SQLite store)", flush=True)
        try:
            warmup, timings, created = measure_creates(base, key, prepared.list_date, creates)
            sample = created[-1]
            print(
                f"  list creation: {sample['candidate_count']:,} candidates -> {len(sample['items'])} items + {sample['deferred_count']:,} deferred",
                flush=True,
            )
            p50, p95 = pct(timings, 0.50) * 1000, pct(timings, 0.95) * 1000
            print(f"    first request of the day (builds the day's state): {warmup * 1000:8.0f} ms", flush=True)
            print(
                f"    {len(timings)} requests: p50 {p50:6.0f} ms  p95 {p95:6.0f} ms  max {max(timings) * 1000:6.0f} ms"
                f"   target p95 < {TARGET_CREATE_P95_MS:.0f} ms: {verdict(p95 < TARGET_CREATE_P95_MS)}",
                flush=True,
            )
            paths = [f"/v1/inspection-lists/{c['id']}" for c in created]
            before = audited_fetches(database_url)
            fetch_timings, wall, size = measure_fetches(base, key, paths, fetches, args.clients)
            audited = audited_fetches(database_url) - before
            f50, f99 = pct(fetch_timings, 0.50) * 1000, pct(fetch_timings, 0.99) * 1000
            print(f"  fetching stored lists ({size / 1e3:,.0f} kB each), {args.clients} concurrent clients:", flush=True)
            print(
                f"    {len(fetch_timings)} requests in {wall:.1f} s ({len(fetch_timings) / wall:,.0f}/s): p50 {f50:6.1f} ms  p99 {f99:6.1f} ms"
                f"  max {max(fetch_timings) * 1000:6.1f} ms   target p99 < {TARGET_FETCH_P99_MS:.0f} ms: {verdict(f99 < TARGET_FETCH_P99_MS)}",
                flush=True,
            )
            print(f"    audited fetches: {audited} of {len(fetch_timings)}", flush=True)
            if audited != len(fetch_timings):
                print("    ERROR: not every fetch was audited", flush=True)
                return 1
            floor = max(200, fetches // 4)
            references = (
                ("GET /healthz (no key, no store)", ["/healthz"]),
                ("GET /v1/models (key check only)", ["/v1/models"]),
                ("GET the lists ?include=deferred (whole record)", [f"{p}?include=deferred" for p in paths]),
            )
            for label, reference_paths in references:
                measure_fetches(base, key, sorted(set(reference_paths)), len(set(reference_paths)), 1)  # first builds, untimed
                timings_ref, wall_ref, size_ref = measure_fetches(base, key, reference_paths, floor, args.clients)
                print(
                    f"    reference, same clients, {label}: {len(timings_ref) / wall_ref:,.0f}/s  p50 {pct(timings_ref, 0.5) * 1000:6.1f} ms"
                    f"  p99 {pct(timings_ref, 0.99) * 1000:6.1f} ms  ({size_ref / 1e3:,.0f} kB)",
                    flush=True,
                )
            print(f"  load average at the end: {load_average()}", flush=True)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        errors = [line for line in log.read_text().splitlines() if "Traceback" in line or "ERROR" in line]
        if errors:
            print(f"  server log has {len(errors)} error line(s), first: {errors[0][:200]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
