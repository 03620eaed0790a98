"""The service on PostgreSQL with several uvicorn workers: outcomes, idempotency and the audit chain stay correct
across worker processes, and ``kill -9`` during an outcome burst loses no acknowledged outcome (fsync on).

A throwaway PostgreSQL server is started from the machine's binaries as in ``test_serve_postgres.py``, but with
``fsync=on`` and ``synchronous_commit=on`` (the defaults of a real deployment), because durability is what is tested.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

import test_serve_postgres as pg_helpers
from serve.app import open_store
from serve.audit import verify_chain
from serve.security import Role
from serve.settings import Settings
from serve.store.keys import create_key
from serve.tables import OutcomeRow
from serve_helpers import PORT, clock_env, outcome_body

pytestmark = pytest.mark.slow
WORKERS = 2


@pytest.fixture(scope="module")
def durable_admin_url() -> Iterator[str]:
    """A throwaway PostgreSQL server with fsync on; skipped (saying why) when it cannot be started."""
    pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    yield from pg_helpers.throwaway_server(
        "-c fsync=on -c synchronous_commit=on -c max_connections=200", skip_reason="no PostgreSQL server binaries (initdb, pg_ctl)"
    )


@pytest.fixture
def durable_pg_url(durable_admin_url) -> Iterator[str]:
    name = f"ccp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(durable_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        assert connection.execute(text("SHOW fsync")).scalar() == "on"
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(durable_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Service:
    """The store initialised once, then ``uvicorn --workers N`` serving it (in its own process group)."""

    def __init__(self, url: str, root: Path, lake_dir: Path, *, workers: int = WORKERS) -> None:
        self.url, self.root, self.lake_dir, self.workers = url, root, lake_dir, workers
        self.settings = Settings(database_url=url, audit_key_file=root / "audit.key", lake_dir=lake_dir)
        self.database = open_store(self.settings)  # migrations, audit key and seed once, before the workers start
        self.process: subprocess.Popen | None = None
        self.base = ""

    def key(self, role: Role, *ports: str) -> dict[str, str]:
        with self.database.write() as session:
            return {"Authorization": f"Bearer {create_key(session, role=role, ports=ports, created_by='test').key}"}

    def start(self) -> None:
        port = pg_helpers._free_port()
        env = {
            **os.environ, **clock_env(), "CCP_DATABASE_URL": self.url, "CCP_AUDIT_KEY_FILE": str(self.root / "audit.key"),
            "CCP_LAKE_DIR": str(self.lake_dir), "CCP_RATE_LIMITS": '{"officer": 10000, "data_scientist": 100, "auditor": 100, "admin": 100}',
        }
        env.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "serve.app:app_from_env", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(self.workers), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.root / "server.log", "a"), start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(self.root / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        """SIGKILL the server and its workers (the process group this test started)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stored(self) -> dict[str, int]:
        with self.database.read() as session:
            return dict(session.execute(select(OutcomeRow.idempotency_key, func.count()).group_by(OutcomeRow.idempotency_key)).all())


@pytest.fixture
def service(durable_pg_url, tmp_path, service_lake_dir) -> Iterator[Service]:
    running = Service(durable_pg_url, tmp_path, service_lake_dir)
    try:
        yield running
    finally:
        running.kill()
        running.database.dispose()


def test_outcomes_replays_and_the_chain_are_correct_across_workers(service):
    officer, auditor = service.key(Role.OFFICER, PORT), service.key(Role.AUDITOR)
    service.start()
    bodies = {f"k-{n}": outcome_body() for n in range(120)}

    def post(item: tuple[str, dict]) -> tuple[str, int, bytes]:
        idem_key, body = item
        with httpx.Client(base_url=service.base, timeout=30) as http:  # a new connection each time: any worker may answer
            response = http.post("/v1/inspection-outcomes", json=body, headers={**officer, "Idempotency-Key": idem_key})
        return idem_key, response.status_code, response.content

    items = list(bodies.items())
    with ThreadPoolExecutor(max_workers=12) as pool:
        first = {k: (s, c) for k, s, c in pool.map(post, items + items)}  # every key twice, concurrently
        replays = {k: (s, c) for k, s, c in pool.map(post, items)}
    assert {s for s, _ in first.values()} == {201}
    assert replays == first  # the same bytes, whichever worker stored it and whichever answers
    stored = service.stored()
    assert stored == {k: 1 for k in bodies}
    with httpx.Client(base_url=service.base, timeout=30) as http:
        clash = http.post("/v1/inspection-outcomes", json=bodies["k-0"], headers={**officer, "Idempotency-Key": "another-key"})
        assert clash.status_code == 409
        verified = http.get("/v1/audit/verify", headers=auditor).json()
    assert verified["ok"], str({k: v for k, v in verified.items() if k != "head_hash"})[:3000]
    with service.database.read() as session:
        chain = verify_chain(session)
    assert chain.ok and chain.rows_checked >= 3 * len(bodies)


def test_kill_9_during_an_outcome_burst_on_postgresql_loses_no_acknowledged_outcome(service):
    officer = service.key(Role.OFFICER, PORT)
    service.start()
    acknowledged: dict[str, tuple[dict, bytes]] = {}
    lock, stop = threading.Lock(), threading.Event()

    def burst(worker: int) -> None:
        with httpx.Client(base_url=service.base, timeout=10) as http:
            i = 0
            while not stop.is_set():
                i += 1
                idem_key, body = f"w{worker}-{i}", outcome_body()
                try:
                    response = http.post("/v1/inspection-outcomes", json=body, headers={**officer, "Idempotency-Key": idem_key})
                except httpx.TransportError:
                    return
                if response.status_code == 201:
                    with lock:
                        acknowledged[idem_key] = (body, response.content)

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(8)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 15
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        service.kill()  # mid-burst: requests are in flight in both workers
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
    assert len(acknowledged) >= 100
    stored = service.stored()
    assert all(stored.get(k) == 1 for k in acknowledged), "an acknowledged outcome is missing or stored twice"
    assert all(count == 1 for count in stored.values())
    with service.database.read() as session:
        assert verify_chain(session).ok
    service.start()
    with httpx.Client(base_url=service.base, timeout=10) as http:
        for idem_key, (body, content) in list(acknowledged.items())[:20]:
            replay = http.post("/v1/inspection-outcomes", json=body, headers={**officer, "Idempotency-Key": idem_key})
            assert (replay.status_code, replay.content) == (201, content)
