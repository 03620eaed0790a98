"""kill -9 of a real uvicorn server during an outcome burst: every acknowledged outcome survives, exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from serve.app import open_store
from serve.audit import verify_chain
from serve.security import Role
from serve.settings import Settings
from serve.store.keys import create_key
from serve.store.outcomes import export_outcomes
from serve_helpers import PORT, clock_env, outcome_body

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(url: str, cwd: Path, lake_dir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, **clock_env(), "CCP_DATABASE_URL": url, "CCP_MAX_BODY_BYTES": "4096", "CCP_LAKE_DIR": str(lake_dir)}
    env.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "serve.app:app_from_env", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # generous: start-up is slow on a loaded machine
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_acknowledged_outcomes_survive_kill_9(tmp_path, service_lake_dir):
    url = f"sqlite:///{tmp_path / 'ccp.db'}"
    database = open_store(Settings(database_url=url))
    with database.write() as session:
        key = create_key(session, role=Role.OFFICER, ports=(PORT,), created_by="test").key
    auth = {"Authorization": f"Bearer {key}"}

    server, base = _start(url, tmp_path, service_lake_dir)
    acknowledged: dict[str, tuple[dict, bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def burst(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=5) as http:
            i = 0
            while not stop.is_set():
                i += 1
                idem_key = f"w{worker}-{i}"
                body = outcome_body()
                try:
                    response = http.post("/v1/inspection-outcomes", json=body, headers={**auth, "Idempotency-Key": idem_key})
                except httpx.TransportError:
                    return
                if 200 <= response.status_code < 300:
                    with lock:
                        acknowledged[idem_key] = (body, response.content)

    workers = [threading.Thread(target=burst, args=(w,)) for w in range(6)]
    try:
        for t in workers:
            t.start()
        deadline = time.monotonic() + 8
        while len(acknowledged) < 150 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(server.pid, signal.SIGKILL)  # mid-burst: requests are in flight
        server.wait(timeout=10)
    finally:
        stop.set()
        for t in workers:
            t.join(timeout=10)
        _stop(server)
    assert len(acknowledged) >= 100

    server, base = _start(url, tmp_path, service_lake_dir)
    try:
        frame = export_outcomes(database)
        manifests = frame["manifest_id"].to_list()
        assert len(manifests) == len(set(manifests))
        assert {body["manifest_id"] for body, _ in acknowledged.values()} <= set(manifests)
        with httpx.Client(base_url=base, timeout=5) as http:
            for idem_key, (body, content) in list(acknowledged.items())[:25]:
                replay = http.post("/v1/inspection-outcomes", json=body, headers={**auth, "Idempotency-Key": idem_key})
                assert (replay.status_code, replay.content) == (201, content)

            def chunks():
                for _ in range(10):
                    yield b"x" * 1000

            too_big = http.post("/v1/inspection-outcomes", content=chunks(), headers={**auth, "Idempotency-Key": "big"})
            assert too_big.status_code == 413
        assert len(export_outcomes(database)) == len(manifests)
        with database.read() as session:
            assert verify_chain(session).ok
    finally:
        _stop(server)
        database.dispose()
