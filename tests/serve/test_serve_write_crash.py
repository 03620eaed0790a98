"""kill -9 of a real SQLite-backed server while outcomes are written, retried, lists read and unauthenticated
requests flood it: every acknowledged outcome is stored exactly once, replays answer the same bytes, the chain holds."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

import test_serve_postgres_workers as harness
from serve.audit import verify_chain
from serve.security import Role
from serve_helpers import PORT, insert_list, outcome_body

pytestmark = pytest.mark.slow


def test_kill_9_under_writes_retries_reads_and_a_flood_loses_no_acknowledged_outcome(tmp_path, service_lake_dir):
    service = harness.Service(f"sqlite:///{tmp_path / 'ccp.db'}", tmp_path, service_lake_dir, workers=1)
    try:
        officer = service.key(Role.OFFICER, PORT)
        list_id = insert_list(service.database)
        service.start()
        acknowledged: dict[str, tuple[dict, bytes]] = {}
        lock, stop = threading.Lock(), threading.Event()

        def writer(worker: int) -> None:
            with httpx.Client(base_url=service.base, timeout=10) as http:
                i = 0
                while not stop.is_set():
                    i += 1
                    idem_key, body = f"w{worker}-{i}", outcome_body()
                    try:
                        for _ in range(2 if i % 3 == 0 else 1):  # every third outcome is retried at once (a lost response)
                            response = http.post("/v1/inspection-outcomes", json=body, headers={**officer, "Idempotency-Key": idem_key})
                    except httpx.TransportError:
                        return
                    if response.status_code == 201:
                        with lock:
                            acknowledged[idem_key] = (body, response.content)

        def reader() -> None:
            with httpx.Client(base_url=service.base, timeout=10) as http:
                while not stop.is_set():
                    try:
                        http.get(f"/v1/inspection-lists/{list_id}", headers=officer)
                    except httpx.TransportError:
                        return

        def flood() -> None:
            with httpx.Client(base_url=service.base, timeout=10) as http:
                while not stop.is_set():
                    try:
                        http.get("/v1/rules")
                    except httpx.TransportError:
                        return

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
        threads += [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=flood) for _ in range(6)]
        try:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 15
            while len(acknowledged) < 150 and time.monotonic() < deadline:
                time.sleep(0.02)
            service.kill()
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
    finally:
        service.kill()
        service.database.dispose()
