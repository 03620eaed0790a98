"""Benchmark: the write path under load (group commit), on loopback against a real uvicorn server.

Run: ``python -m bench.bench_writes [--seconds 6] [--writers 20] [--readers 20] [--flood 80] [--max-requests 200000]``.

Set-up (not timed): a lake of 2,000 manifests discharged at NLRTM, a fresh SQLite store (WAL,
``synchronous=FULL``), one officer key per client, two stored lists; the service as a real
``uvicorn --factory serve.app:app_from_env`` subprocess (one process). Rate limits are raised for
the run (``CCP_RATE_LIMITS``: 5,000/s per key) so the load generator measures the write path, not
the limiter; the default limit (100/s per key) is tested in the suite.

Phases, each bounded by ``--seconds`` and ``--max-requests``:

1. ``reads``: ``--readers`` keep-alive clients fetch stored lists (``GET /v1/inspection-lists/{id}``,
   each fetch checked against its seal and audited) as fast as they can;
2. ``writes``: ``--writers`` clients posting outcomes alone (``POST /v1/inspection-outcomes``, each
   with its own Idempotency-Key; 201 is sent only after the group commit that holds it): the CPU
   cost of a write;
3. ``reads + writes``: both together (the target);
4. ``reads + writes + flood``: the same, plus ``--flood`` connections sending requests without
   credentials (from a second process), which must get 401 without slowing the writes.

Printed per phase: errors (any status other than the expected 200 / 201 / 401, or a broken
connection), outcome write p50/p95/p99, acknowledged writes/s, reads/s, 401s/s, and the CPU
seconds the server process used (all threads, from ``/proc``; per request and as a share of one
core) beside those of the load generators, which share the same cores. At the end every
acknowledged outcome is looked up in the store (each must be there exactly once).
Targets: 0 errors, write p99 < 100 ms, >= 1,000 acknowledged writes/s, the flood cutting
acknowledged writes by less than 25 %. On a machine loaded by other work the wall figures fall;
the CPU per request stays comparable.

The clients are a minimal HTTP/1.1 client on asyncio streams (as in ``bench_service``): they share
the two cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench._measure import cpu_count, load_average, verdict

PORT = "NLRTM"
CONTAINER = "CSQU3054383"
MANIFESTS = 2000
TARGET_P99_MS = 100.0
TARGET_WRITES_PER_S = 1000.0
TARGET_FLOOD_CUT = 0.25
BENCH_RATE_LIMIT = 5000.0


# ----------------------------------------------------------------------------- set-up
def build_lake(root: Path) -> Path:
    """A lake of :data:`MANIFESTS` manifests discharged at :data:`PORT`, all with container :data:`CONTAINER`."""
    import polars as pl

    from features.data.ingest import ingest
    from features.data.lake import Lake

    sample = {
        "manifest_id": "M1", "container_number": CONTAINER, "container_type": "22G1", "reefer": "false", "seal_number": "SL123",
        "master_bl": "MAEU123", "house_bl": None, "vessel_imo": "9074729", "voyage": "001E", "carrier": "MAEU",
        "place_of_receipt": "COBUN", "port_of_loading": "COBUN", "transshipment_ports": None, "port_of_discharge": PORT,
        "place_of_delivery": PORT, "shipper_id": "S1", "shipper_name": "Frutas del Pacifico", "shipper_country": "CO",
        "consignee_id": "C1", "consignee_name": "Fresh Import BV", "consignee_country": "NL", "notify_id": None,
        "notify_name": None, "notify_country": None, "hs_code": "080390", "goods_description": "FRESH BANANAS",
        "packages": "1080", "gross_mass_kg": "21000", "verified_gross_mass_kg": "21150", "declared_value": "18000",
        "currency": "USD", "freight_payment": "PP", "booked_at": "2025-01-02T10:00:00Z", "filed_at": "2025-01-04T09:30:00+01:00",
        "amended_at": None, "amended_fields": None, "etd": "2025-01-05T18:00:00-05:00", "eta": "2025-01-20T06:00:00Z",
    }
    rows = [{**sample, "manifest_id": f"M-{n:05d}"} for n in range(MANIFESTS)]
    source = root / "manifests.csv"
    pl.DataFrame(rows, schema={name: pl.String for name in sample}).write_csv(source)
    summary = ingest(Lake(root / "lake"), "manifests", [source], now=datetime(2025, 3, 1, tzinfo=UTC))
    if summary.accepted != MANIFESTS:
        raise SystemExit(f"lake set-up failed: {summary}")
    return root / "lake"


def prepare_store(database_url: str, lake_dir: Path, clients: int) -> tuple[list[str], list[str]]:
    """Migrate the store, create ``clients`` officer keys and two stored lists; returns (keys, list ids)."""
    from serve.app import open_store
    from serve.audit import record_event
    from serve.seals import seal_detail
    from serve.security import Role
    from serve.settings import Settings
    from serve.store.keys import create_key
    from serve.store.lists import store_list
    from targeting.lists import InspectionList, ListItem

    database = open_store(Settings(database_url=database_url, lake_dir=lake_dir))
    try:
        with database.write() as session:
            keys = [create_key(session, role=Role.OFFICER, ports=(PORT,), label=f"bench-{i}", created_by="bench").key for i in range(clients)]
        list_ids = []
        for day in (1, 2):
            record = InspectionList(
                port=PORT, list_date=date(2025, 3, day), decision_at=datetime(2025, 2, 28, 18, tzinfo=UTC), capacity=2,
                nii_capacity=1, physical_capacity=1, exploration_share=0.1, seed=7, model_name="container-risk", model_version="1",
                model_artifact_sha256="a" * 64, ruleset_version=1, input_data_sha256="b" * 64, candidate_count=100,
                items=(
                    ListItem(1, CONTAINER, "M-00001", 0.9, "MODEL", 1.0, ("High risk route",), "PHYSICAL"),
                    ListItem(2, "TEXU3070079", "M-00002", 0.8, "RULE", 1.0, ("Reefer with bananas",), "NII"),
                ),
                deferred=(), mandatory_exceeds_capacity=False, warnings=(),
            )
            with database.write() as session:
                row = store_list(session, record, created_by="bench", watchlist_as_of=datetime(2025, 2, 28, 18, tzinfo=UTC), list_id=str(uuid.uuid4()))
                record_event(
                    session, action="list.create", actor="bench", port=row.port, object_type="inspection_list", object_id=row.id,
                    status_code=201, detail={"content_sha256": row.content_sha256, **seal_detail(row)},
                )
                list_ids.append(row.id)
        return keys, list_ids
    finally:
        database.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(database_url: str, lake_dir: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """The real service (one uvicorn process) on a free loopback port."""
    import httpx

    env = {
        **os.environ,
        "CCP_DATABASE_URL": database_url,
        "CCP_LAKE_DIR": str(lake_dir),
        "CCP_RATE_LIMITS": json.dumps({r: BENCH_RATE_LIMIT for r in ("officer", "data_scientist", "auditor", "admin")}),
    }
    env.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "serve.app:app_from_env", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process, port
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start in 60 s")


# ----------------------------------------------------------------------------- clients
@dataclass
class Tally:
    """What a phase's clients saw."""

    write_ms: list[float] = field(default_factory=list)
    reads: int = 0
    errors: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 request: (status, body). The service always answers with Content-Length."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length")
    return status, await reader.readexactly(length)


def outcome_request(key: str, idempotency_key: str, n: int) -> bytes:
    """A POST of a valid outcome; ``n`` makes its (manifest, exam type, inspection time) unique."""
    inspected = datetime(2025, 3, 1, tzinfo=UTC) + timedelta(seconds=n)
    body = json.dumps({
        "manifest_id": f"M-{n % MANIFESTS:05d}", "container_number": CONTAINER, "port": PORT,
        "inspected_at": inspected.isoformat(), "exam_type": "PHYSICAL", "result": "NO_FINDING", "seal_status": "INTACT",
        "examiner": "EX-1", "selection_source": "MODEL",
    }).encode()
    head = (
        f"POST /v1/inspection-outcomes HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
        f"Idempotency-Key: {idempotency_key}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _client(port: int, stop_at: float, budget: list[int], make: object, expect: int, tally: Tally, kind: str) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
    except OSError as exc:
        tally.errors.append(f"{kind}: connect {type(exc).__name__}")
        return
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            request, ident = make()  # type: ignore[operator]
            began = time.perf_counter()
            try:
                status, _ = await _exchange(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError) as exc:
                tally.errors.append(f"{kind}: {type(exc).__name__}")
                return
            if status != expect:
                tally.errors.append(f"{kind}: HTTP {status}")
            elif kind == "write":
                tally.write_ms.append((time.perf_counter() - began) * 1000)
                tally.acknowledged.append(ident)
            else:
                tally.reads += 1
    finally:
        writer.close()


async def _phase(port: int, keys: list[str], list_ids: list[str], writers: int, readers: int, seconds: float, budget: int, counter: list[int]) -> tuple[Tally, float]:
    tally = Tally()
    stop_at = time.perf_counter() + seconds
    left = [budget]
    tasks = []
    for i in range(readers):
        key = keys[writers + i]
        path = f"/v1/inspection-lists/{list_ids[i % len(list_ids)]}"
        request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
        tasks.append(_client(port, stop_at, left, lambda request=request: (request, ""), 200, tally, "read"))
    for i in range(writers):
        key = keys[i]

        def make(key: str = key) -> tuple[bytes, str]:
            counter[0] += 1
            ident = uuid.uuid4().hex
            return outcome_request(key, ident, counter[0]), ident

        tasks.append(_client(port, stop_at, left, make, 201, tally, "write"))
    began = time.perf_counter()
    await asyncio.gather(*tasks)
    return tally, time.perf_counter() - began


def _flood_process(port: int, connections: int, seconds: float, results: multiprocessing.Queue) -> None:
    """Unauthenticated requests on ``connections`` keep-alive connections for ``seconds``; puts (401s, other statuses, CPU seconds)."""

    async def run() -> tuple[int, int]:
        stop_at = time.perf_counter() + seconds
        counts = [0, 0]
        request = b"GET /v1/inspection-lists/0b6b2a58-8a7c-4a43-9ad2-0cf3a7e0f1a1 HTTP/1.1\r\nHost: bench\r\n\r\n"

        async def one() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                while time.perf_counter() < stop_at:
                    status, _ = await _exchange(reader, writer, request)
                    counts[0 if status == 401 else 1] += 1
            finally:
                writer.close()

        await asyncio.gather(*(one() for _ in range(connections)), return_exceptions=True)
        return counts[0], counts[1]

    rejected, other = asyncio.run(run())
    results.put((rejected, other, time.process_time()))


# ----------------------------------------------------------------------------- report
def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1), nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (Linux ``/proc/<pid>/stat``; threads included)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuUse:
    """CPU seconds used during a phase by the server and by the load generators (same two cores)."""

    server: float
    client: float
    flood: float = 0.0


def report(label: str, tally: Tally, wall: float, cpu: CpuUse, unauthenticated: int = 0) -> dict[str, float]:
    writes = len(tally.write_ms)
    requests = writes + tally.reads + len(tally.errors)
    figures = {
        "errors": len(tally.errors), "writes_per_s": writes / wall, "reads_per_s": tally.reads / wall,
        "p50": pct(tally.write_ms, 0.5), "p95": pct(tally.write_ms, 0.95), "p99": pct(tally.write_ms, 0.99),
        "server_cpu_ms_per_request": 1000 * cpu.server / max(1, requests + unauthenticated),
    }
    print(f"  {label} ({wall:.1f} s):", flush=True)
    print(f"    errors: {figures['errors']}" + (f"  (first: {tally.errors[0]})" if tally.errors else ""), flush=True)
    if writes:
        print(
            f"    outcome writes: {writes:,} acknowledged, {figures['writes_per_s']:,.0f}/s;"
            f" p50 {figures['p50']:.1f} ms  p95 {figures['p95']:.1f} ms  p99 {figures['p99']:.1f} ms",
            flush=True,
        )
    print(f"    list reads: {tally.reads:,}, {figures['reads_per_s']:,.0f}/s", flush=True)
    if unauthenticated:
        print(f"    unauthenticated requests answered 401: {unauthenticated:,}, {unauthenticated / wall:,.0f}/s", flush=True)
    print(
        f"    CPU: server {cpu.server:.2f} s ({cpu.server / wall:.0%} of one core), {figures['server_cpu_ms_per_request']:.3f} ms per request"
        f" ({requests + unauthenticated:,} requests); load clients {cpu.client:.2f} s"
        + (f", flood client {cpu.flood:.2f} s" if cpu.flood else ""),
        flush=True,
    )
    return figures


def stored_outcomes(database_url: str) -> dict[str, int]:
    """Idempotency key -> number of stored outcomes with it."""
    from sqlalchemy import func, select

    from serve.db import Database
    from serve.tables import OutcomeRow

    database = Database.from_url(database_url)
    try:
        with database.read() as session:
            return dict(session.execute(select(OutcomeRow.idempotency_key, func.count()).group_by(OutcomeRow.idempotency_key)).all())
    finally:
        database.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="Length of each phase (default 6).")
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--flood", type=int, default=80, help="Unauthenticated connections in the last phase (default 80).")
    parser.add_argument("--max-requests", type=int, default=200_000, help="Most requests per phase (default 200,000).")
    args, _ = parser.parse_known_args(argv)  # run_all passes every benchmark the same extra arguments
    print(f"bench_writes: {args.writers} writers, {args.readers} readers, {args.flood} flood connections, {cpu_count()} CPU(s), load average {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp:
        root = Path(tmp)
        lake_dir = build_lake(root)
        database_url = f"sqlite:///{root / 'ccp.db'}"
        keys, list_ids = prepare_store(database_url, lake_dir, args.writers + args.readers)
        process, port = start_server(database_url, lake_dir, root / "server.log")
        counter = [0]
        try:
            asyncio.run(_phase(port, keys, list_ids, args.writers, args.readers, 1.0, 2000, counter))  # warm-up, untimed
            warm = counter[0]
            figures = {}
            acknowledged: list[str] = []
            for label, writers, readers in (("reads", 0, args.readers), ("writes", args.writers, 0), ("reads + writes", args.writers, args.readers)):
                server_cpu, client_cpu = process_cpu_seconds(process.pid), time.process_time()
                tally, wall = asyncio.run(_phase(port, keys, list_ids, writers, readers, args.seconds, args.max_requests, counter))
                cpu = CpuUse(process_cpu_seconds(process.pid) - server_cpu, time.process_time() - client_cpu)
                figures[label] = report(label, tally, wall, cpu)
                acknowledged += tally.acknowledged
            queue: multiprocessing.Queue = multiprocessing.Queue()
            flood = multiprocessing.Process(target=_flood_process, args=(port, args.flood, args.seconds + 0.5, queue))
            flood.start()
            time.sleep(0.5)  # the flood's connections are open and busy
            server_cpu, client_cpu = process_cpu_seconds(process.pid), time.process_time()
            tally, wall = asyncio.run(_phase(port, keys, list_ids, args.writers, args.readers, args.seconds, args.max_requests, counter))
            cpu = CpuUse(process_cpu_seconds(process.pid) - server_cpu, time.process_time() - client_cpu)
            rejected, other, cpu.flood = queue.get(timeout=args.seconds + 30)
            flood.join(timeout=30)
            figures["flood"] = report(f"reads + writes + {args.flood}-connection unauthenticated flood", tally, wall, cpu, rejected)
            if other:
                tally.errors.append(f"flood: {other} answers other than 401")
                print(f"    ERROR: {other} flood requests were not answered 401", flush=True)
            acknowledged += tally.acknowledged
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        stored = stored_outcomes(database_url)
        missing = sum(1 for ident in acknowledged if stored.get(ident) != 1)
        print(f"  durability: {len(acknowledged):,} acknowledged outcomes (after {warm} warm-up), {missing} missing or duplicated in the store", flush=True)
        mixed, flooded = figures["reads + writes"], figures["flood"]
        read_cut = 1 - mixed["reads_per_s"] / figures["reads"]["reads_per_s"] if figures["reads"]["reads_per_s"] else 0.0
        flood_cut = 1 - flooded["writes_per_s"] / mixed["writes_per_s"] if mixed["writes_per_s"] else 1.0
        print("  targets:", flush=True)
        print(f"    errors 0: {mixed['errors'] + flooded['errors']} -> {verdict(mixed['errors'] + flooded['errors'] == 0)}", flush=True)
        print(f"    write p99 < {TARGET_P99_MS:.0f} ms: {mixed['p99']:.1f} ms (flood {flooded['p99']:.1f} ms) -> {verdict(max(mixed['p99'], flooded['p99']) < TARGET_P99_MS)}", flush=True)
        print(f"    >= {TARGET_WRITES_PER_S:,.0f} acknowledged writes/s: {mixed['writes_per_s']:,.0f}/s -> {verdict(mixed['writes_per_s'] >= TARGET_WRITES_PER_S)}", flush=True)
        print(f"    flood cuts acknowledged writes by < {TARGET_FLOOD_CUT:.0%}: cut {flood_cut:.0%} -> {verdict(flood_cut < TARGET_FLOOD_CUT)}", flush=True)
        print(f"    list reads/s with the writers: {read_cut:.0%} fewer than reads alone (for information; same 2 cores)", flush=True)
        print(
            f"    server CPU per request: list read {figures['reads']['server_cpu_ms_per_request']:.3f} ms,"
            f" outcome write {figures['writes']['server_cpu_ms_per_request']:.3f} ms,"
            f" mixed {mixed['server_cpu_ms_per_request']:.3f} ms (for information)",
            flush=True,
        )
        print(f"    every acknowledged write stored once: {verdict(missing == 0)}", flush=True)
        print(f"  load average at the end: {load_average()}", flush=True)
        log_text = (root / "server.log").read_text()
        errors = [line for line in log_text.splitlines() if "Traceback" in line or "ERROR" in line]
        if errors:
            print(f"  server log has {len(errors)} error line(s); the first traceback ends:", flush=True)
            first = log_text[log_text.index("Traceback"):].split("\n\n")[0] if "Traceback" in log_text else errors[0]
            print("    " + "\n    ".join(first.splitlines()[-6:]), flush=True)
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
