"""kill -9 of a real uvicorn server running the real engine, during a burst of outcome POSTs and list creations.

After a restart: every acknowledged outcome is stored exactly once, every acknowledged list is
fetchable with the very body that was returned, nothing half-written is visible, the audit chain
is intact, and a list created before the kill replays identically.
"""

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
import polars as pl
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from features.data.lake import Lake
from serve.app import open_store
from serve.audit import verify_chain
from serve.security import Role
from serve.settings import Settings
from serve.store.keys import create_key
from serve.store.lists import load_record
from serve.store.outcomes import export_outcomes
from serve.store.rulesets import ruleset_snapshot
from serve.store.watchlist import watchlist_frame_at
from serve.tables import AuditEvent, StoredList
from serve_helpers import PORT, TODAY, clock_env, outcome_body
from targeting.cli import _register, app as cli_app
from targeting.lake_engine import engine_from_settings

pytestmark = pytest.mark.slow
_register()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(world, database_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        **clock_env(),
        "CCP_DATABASE_URL": database_url,
        "CCP_LAKE_DIR": str(world.lake_dir),
        "CCP_MLFLOW_TRACKING_URI": world.tracking_uri,
        "CCP_ENGINE_FACTORY": "targeting.lake_engine:engine_from_settings",
    }
    env.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
    return env


def _start(env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "serve.app:app_from_env", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:  # store, engine and champion
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not become ready")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_acknowledged_outcomes_and_lists_survive_kill_9_of_the_engine_server(e2e_world, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    url = f"sqlite:///{tmp_path / 'ccp.db'}"
    database = open_store(Settings(database_url=url))
    with database.write() as session:
        key = create_key(session, role=Role.OFFICER, ports=(PORT,), created_by="test").key
    auth = {"Authorization": f"Bearer {key}"}
    env = _env(e2e_world, url)
    list_date = TODAY.isoformat()  # the tests' "today" (the server's clock starts at it through CCP_CLOCK_AT)
    due = Lake(e2e_world.lake_dir).scan("manifests").filter(pl.col("port_of_discharge") == PORT)
    manifests = iter(due.select("manifest_id", "container_number").collect().iter_rows())

    server, base = _start(env, tmp_path)
    lists: dict[str, dict] = {}
    outcomes: dict[str, tuple[dict, bytes]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    with httpx.Client(base_url=base, timeout=60, headers=auth) as http:
        before = http.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": list_date, "capacity": 10, "exploration_share": 0.2})
        assert before.status_code == 201, before.text
    lists[before.json()["id"]] = before.json()

    def post_outcomes(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=10, headers=auth) as client:
            i = 0
            while not stop.is_set():
                i += 1
                idem_key = f"w{worker}-{i}"
                with lock:
                    manifest_id, container = next(manifests)
                body = outcome_body(manifest_id=manifest_id, container_number=container)
                try:
                    response = client.post("/v1/inspection-outcomes", json=body, headers={"Idempotency-Key": idem_key})
                except httpx.TransportError:
                    return
                if 200 <= response.status_code < 300:
                    with lock:
                        outcomes[idem_key] = (body, response.content)

    def create_lists() -> None:
        with httpx.Client(base_url=base, timeout=60, headers=auth) as client:
            capacity = 4
            while not stop.is_set():
                capacity += 1
                try:
                    response = client.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": list_date, "capacity": capacity})
                except httpx.TransportError:
                    return
                if response.status_code == 201:
                    with lock:
                        lists[response.json()["id"]] = response.json()

    workers = [threading.Thread(target=post_outcomes, args=(w,)) for w in range(5)] + [threading.Thread(target=create_lists)]
    try:
        for t in workers:
            t.start()
        deadline = time.monotonic() + 20
        while (len(outcomes) < 120 or len(lists) < 3) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(server.pid, signal.SIGKILL)  # mid-burst: outcome POSTs and a list build are in flight
        server.wait(timeout=10)
    finally:
        stop.set()
        for t in workers:
            t.join(timeout=30)
        _stop(server)
    assert len(outcomes) >= 60 and len(lists) >= 2

    server, base = _start(env, tmp_path)
    try:
        frame = export_outcomes(database)
        manifests = frame["manifest_id"].to_list()
        assert len(manifests) == len(set(manifests))
        assert {body["manifest_id"] for body, _ in outcomes.values()} <= set(manifests)
        with httpx.Client(base_url=base, timeout=30, headers=auth) as http:
            for idem_key, (body, content) in list(outcomes.items())[:20]:
                replay = http.post("/v1/inspection-outcomes", json=body, headers={"Idempotency-Key": idem_key})
                assert (replay.status_code, replay.content) == (201, content)
            succession = ("current", "superseded_by")  # later lists of the same port-day supersede earlier ones
            for list_id, body in lists.items():
                fetched = http.get(f"/v1/inspection-lists/{list_id}")
                assert fetched.status_code == 200
                assert {k: v for k, v in fetched.json().items() if k not in succession} == {k: v for k, v in body.items() if k not in succession}
        assert len(export_outcomes(database)) == len(manifests)
    finally:
        _stop(server)

    with database.read() as session:
        stored = session.scalars(select(StoredList)).all()
        for row in stored:
            load_record(row)  # every stored list passes its integrity check: nothing half-written
        created = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "list.create", AuditEvent.status_code == 201))
        assert created == len(stored) >= len(lists)
        assert verify_chain(session).ok
        replay_inputs = {
            row.id: (load_record(row), ruleset_snapshot(session, row.ruleset_version), watchlist_frame_at(session, row.watchlist_as_of))
            for row in stored
            if row.id in lists
        }
    database.dispose()

    cli_env = {k: v for k, v in env.items() if k.startswith("CCP_")}
    replayed = CliRunner().invoke(cli_app, ["audit", "replay", before.json()["id"]], env=cli_env)
    assert replayed.exit_code == 0, replayed.output
    assert f"replay identical: {before.json()['content_sha256']}" in " ".join(replayed.output.split())
    engine = engine_from_settings(Settings(database_url=url, lake_dir=e2e_world.lake_dir, mlflow_tracking_uri=e2e_world.tracking_uri))
    for list_id, (record, ruleset, watchlist) in replay_inputs.items():
        assert engine.replay(record, ruleset=ruleset, watchlist=watchlist).content_sha256() == lists[list_id]["content_sha256"]
