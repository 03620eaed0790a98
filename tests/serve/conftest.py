"""Fixtures of the service tests: a real SQLite file in tmp_path, the real app, real keys."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from features.clock import AnchoredClock, use_clock
from serve.app import create_app
from serve.db import Database
from serve.security import Role
from serve.settings import Settings
from serve.store.keys import create_key

# The test modules import plain helpers from serve_helpers.py (pytest runs with --import-mode=importlib).
for _helpers in (Path(__file__).parent, Path(__file__).parent.parent / "features"):  # serve_helpers, ingest_samples
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))

KeyMaker = Callable[..., dict[str, str]]

from serve_helpers import NOW as TESTS_NOW  # noqa: E402
from serve_helpers import TODAY as TESTS_TODAY  # noqa: E402


@pytest.fixture(autouse=True)
def fixed_today() -> Iterator[AnchoredClock]:
    """Every service test runs on the same "today" (:data:`serve_helpers.TODAY`), whatever the machine's date.

    The process clock starts at :data:`serve_helpers.NOW` and then runs at the real pace,
    so durations and the order of events stay real; services started in a subprocess get
    the same instant through ``CCP_CLOCK_AT`` (:func:`serve_helpers.clock_env`).
    """
    with use_clock(AnchoredClock(TESTS_NOW)) as anchored:
        yield anchored


def build_service_lake(root: Path) -> Path:
    """A lake holding :func:`serve_helpers.service_lake_manifests` (what the service tests' outcomes name)."""
    import polars as pl

    from features.data.ingest import ingest
    from features.data.lake import Lake
    from serve_helpers import service_lake_manifests

    rows = service_lake_manifests()
    source = root / "manifests.csv"
    pl.DataFrame(rows, schema={name: pl.String for name in rows[0]}).write_csv(source)
    summary = ingest(Lake(root / "lake"), "manifests", [source], now=TESTS_NOW)
    assert summary.accepted == len(rows), summary
    return root / "lake"


@pytest.fixture(scope="session")
def service_lake_dir(tmp_path_factory) -> Path:
    """The session's lake of pool manifests (read-only)."""
    return build_service_lake(tmp_path_factory.mktemp("service-lake"))


@pytest.fixture
def settings(tmp_path, monkeypatch, service_lake_dir) -> Settings:
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'ccp.db'}", max_body_bytes=4096, lake_dir=service_lake_dir, auth_failure_flush_seconds=0
    )


@pytest.fixture
def app(settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def database(app) -> Database:
    return app.state.database


@pytest.fixture
def make_key(database) -> KeyMaker:
    """``make_key("officer", "NLRTM")`` -> Authorization headers of a new key."""

    def make(role: str, *ports: str) -> dict[str, str]:
        with database.write() as session:
            created = create_key(session, role=Role(role), ports=tuple(ports), created_by="test")
        return {"Authorization": f"Bearer {created.key}"}

    return make


# --------------------------------------------------------------------------- the end-to-end world (session)
#
# A small real world built once per session for the ``test_serve_e2e_*`` modules:
# simulated feeds -> a lake -> a champion trained, registered and promoted in an
# MLflow SQLite store. Only tests that ask for ``e2e_world`` pay for it. The
# world is placed around the tests' fixed "today" (serve_helpers.TODAY; it ends
# E2E_DAYS_AHEAD days after it) because ``GET /v1/containers/{c}/risk`` scores
# what is due at the port *now*; the clock, not the machine, says when "now" is.

from serve_helpers import OTHER_PORT as E2E_OTHER_PORT  # noqa: E402
from serve_helpers import PORT as E2E_PORT  # noqa: E402

E2E_DAYS = 120
E2E_DAYS_AHEAD = 9
E2E_MODEL = {"n_estimators": 60, "num_leaves": 15, "early_stopping_rounds": 20}


@dataclass(frozen=True)
class E2EWorld:
    """Where the session's world lives; treat it as read-only (use :meth:`private_copy` to change it)."""

    root: Path
    world_dir: Path
    lake_dir: Path
    mlruns_dir: Path
    start: date
    champion_version: str
    build_seconds: float

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.mlruns_dir / 'mlflow.db'}"

    def split(self):  # noqa: ANN201 - models.dataset.TimeSplit
        """30 warm-up days, then train 50 days, validate 15, test the rest (arrival dates)."""
        from models.dataset import TimeSplit

        s = self.start
        return TimeSplit(s + timedelta(days=30), s + timedelta(days=80), s + timedelta(days=95), s + timedelta(days=E2E_DAYS))

    def train_config(self):  # noqa: ANN201 - models.training.TrainConfig
        from models.training import TrainConfig

        return TrainConfig(split=self.split(), num_threads=1, model=dict(E2E_MODEL))

    def private_copy(self, dest: Path) -> E2EWorld:
        """A copy of the lake and the MLflow store that a test may change (new outcomes, retraining).

        Logged artifacts stay where the experiment points (the session's
        ``mlruns/artifacts``); new runs of the copy add their own run folders there.
        """
        shutil.copytree(self.lake_dir, dest / "lake")
        (dest / "mlruns").mkdir(parents=True)
        for store in self.mlruns_dir.glob("mlflow.db*"):  # the database and any -wal/-shm beside it
            shutil.copy2(store, dest / "mlruns" / store.name)
        return replace(self, root=dest, lake_dir=dest / "lake", mlruns_dir=dest / "mlruns")


def build_e2e_world(root: Path, *, seed: int = 11, containers_per_day: int = 300) -> E2EWorld:
    """Simulate, ingest, train, register and promote (see the section comment)."""
    from features.data.ingest import ingest
    from features.data.lake import Lake
    from models.tracking import configure
    from models.workflow import promote, train_and_register
    from targeting.sim.run import simulate_to_directory
    from targeting.sim.world import WorldConfig

    began = time.perf_counter()
    start = TESTS_TODAY - timedelta(days=E2E_DAYS - 1 - E2E_DAYS_AHEAD)
    config = WorldConfig(seed=seed, start=start, days=E2E_DAYS, containers_per_day=containers_per_day, illicit_rate=0.008)
    world_dir = root / "world"
    simulate_to_directory(config, world_dir)
    lake = Lake(root / "lake")
    after_end = datetime.combine(start + timedelta(days=E2E_DAYS + 30), datetime.min.time(), tzinfo=UTC)
    for table in ("manifests", "events", "outcomes", "alerts"):
        ingest(lake, table, [world_dir / f"{table}.parquet"], now=after_end)
    mlruns = root / "mlruns"
    mlruns.mkdir()
    world = E2EWorld(root, world_dir, root / "lake", mlruns, start, "", 0.0)
    client = configure(world.tracking_uri)
    _, logged = train_and_register(lake, client, world.train_config())
    decision = promote(lake, client, logged.version)
    assert decision.promoted, decision.message
    return replace(world, champion_version=logged.version, build_seconds=time.perf_counter() - began)


@pytest.fixture(scope="session")
def e2e_world(tmp_path_factory) -> E2EWorld:
    with use_clock(AnchoredClock(TESTS_NOW)):
        return build_e2e_world(tmp_path_factory.mktemp("e2e-world"))


@pytest.fixture(scope="session")
def e2e_engine(e2e_world, tmp_path_factory):  # noqa: ANN201 - targeting.lake_engine.LakeEngine
    """The engine over the session's world, shared (it is thread-safe and caches per decision day)."""
    from targeting.lake_engine import LakeEngine

    return LakeEngine(lake_dir=e2e_world.lake_dir, tracking_uri=e2e_world.tracking_uri, cache_dir=tmp_path_factory.mktemp("e2e-model-cache"))


@dataclass
class E2EService:
    """The real app over HTTP (TestClient) with a fresh store and one key per role."""

    client: TestClient
    app: FastAPI
    settings: Settings
    headers: dict[str, dict[str, str]]
    key_ids: dict[str, str]

    @property
    def database(self) -> Database:
        return self.app.state.database

    def as_(self, role: str) -> dict[str, str]:
        return self.headers[role]


def e2e_keys(database: Database) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Authorization headers and key ids of one key per role: officers of the e2e port and of the other port, data scientist, auditor, admin."""
    specs = {
        "officer_own": (Role.OFFICER, (E2E_PORT,)),
        "officer_other": (Role.OFFICER, (E2E_OTHER_PORT,)),
        "data_scientist": (Role.DATA_SCIENTIST, ()),
        "auditor": (Role.AUDITOR, ()),
        "admin": (Role.ADMIN, ()),
    }
    headers, ids = {}, {}
    with database.write() as session:
        for name, (role, ports) in specs.items():
            created = create_key(session, role=role, ports=ports, label=name, created_by="test")
            headers[name] = {"Authorization": f"Bearer {created.key}"}
            ids[name] = created.key_id
    return headers, ids


def e2e_settings(world: E2EWorld, store: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{store / 'ccp.db'}", lake_dir=world.lake_dir, mlflow_tracking_uri=world.tracking_uri)


@contextmanager
def e2e_service_for(world: E2EWorld, engine, store: Path) -> Iterator[E2EService]:  # noqa: ANN001
    """The app over ``engine`` with a new store under ``store``."""
    settings = e2e_settings(world, store)
    app = create_app(settings, engine=engine)
    headers, ids = e2e_keys(app.state.database)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield E2EService(client, app, settings, headers, ids)
    finally:
        app.state.database.dispose()


@pytest.fixture
def e2e_service(e2e_world, e2e_engine, tmp_path, monkeypatch) -> Iterator[E2EService]:
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    with e2e_service_for(e2e_world, e2e_engine, tmp_path) as service:
        yield service


@pytest.fixture
def e2e_service_over(monkeypatch) -> Callable[..., contextlib.AbstractContextManager[E2EService]]:
    """``with e2e_service_over(world, engine, store_dir) as service``: the app over another engine or world copy."""
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    return e2e_service_for
