"""Helpers of the exchange tests: real instances of the service on loopback, each with its own store, lake, signing keys and exchange configuration.

:func:`build_network` writes, for each instance, Ed25519 keys of its units, an ``exchange.toml`` naming every
other instance's units as peers (their public keys and inbox URLs), an initialised store with API keys
(an officer per unit, an admin, an auditor) and, optionally, a lake of manifests. :class:`Instance` starts
and stops ``uvicorn --factory serve.app:app_from_env`` on its port (clock anchored at :data:`NOW`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from features import clock
from targeting.exchange.signing import generate_private_key, public_key_text, write_private_key

NOW = datetime(2025, 8, 28, 9, 30, tzinfo=UTC)
"""The tests' "now": this process and every started service run on a clock anchored here."""
REPO = Path(__file__).resolve().parents[2]

for _helpers in (REPO / "tests" / "features",):  # ingest_samples (exchange tests import this module by name)
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Instance:
    """One service instance: its units, files, API keys and (when started) its process."""

    name: str
    units: list[tuple[str, str, str]]
    home: Path
    port: int
    keys: dict[str, Path] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.home / 'ccp.db'}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCP_")}
        env.update({
            "CCP_HOME": str(self.home), "CCP_DATABASE_URL": self.database_url, "CCP_LAKE_DIR": str(self.home / "lake"),
            "CCP_EXCHANGE_CONFIG": str(self.home / "exchange.toml"), "CCP_EXCHANGE_POLL_SECONDS": "0.1",
            "CCP_MLFLOW_TRACKING_URI": f"sqlite:///{self.home / 'mlflow.db'}", clock.CLOCK_ENV: NOW.isoformat(),
        })
        return env

    def start(self, *, timeout: float = 60.0) -> None:
        log = open(self.home / "service.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "serve.app:app_from_env", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {(self.home / 'service.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0, trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start in {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def get(self, path: str, who: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, headers=self.headers[who], timeout=10.0, trust_env=False, **kwargs)

    def post(self, path: str, who: str | None, *, headers: dict[str, str] | None = None, **kwargs) -> httpx.Response:
        sent_headers = {**(self.headers[who] if who else {}), **(headers or {})}
        return httpx.post(self.url + path, headers=sent_headers, timeout=10.0, trust_env=False, **kwargs)


def _toml_units(instance: Instance) -> str:
    return "".join(
        f'[[units]]\nid = "{uid}"\nport = "{port}"\nrole = "{role}"\nkey_file = "keys/{uid}.pem"\n\n' for uid, port, role in instance.units
    )


def _toml_peers(instance: Instance, others: list[Instance], public: dict[str, str], auto_accept: dict[tuple[str, str], list[str]]) -> str:
    text = ""
    for other in others:
        for uid, port, role in other.units:
            accept = ", ".join(f'"{t}"' for t in auto_accept.get((instance.name, uid), []))
            text += (
                f'[[peers]]\nid = "{uid}"\nport = "{port}"\nrole = "{role}"\npublic_key = "{public[uid]}"\n'
                f'inbox_url = "{other.url}/v1/exchange/inbox"\nauto_accept = [{accept}]\n\n'
            )
    return text


def _init_store(instance: Instance) -> None:
    from serve.app import open_store
    from serve.security import Role
    from serve.settings import Settings
    from serve.store.keys import create_key

    settings = Settings(home=instance.home, database_url=instance.database_url, lake_dir=instance.home / "lake")
    database = open_store(settings)
    try:
        with database.write() as session:
            for uid, port, _ in instance.units:
                created = create_key(session, role=Role.OFFICER, ports=(port,), label=uid, created_by="test")
                instance.headers[f"officer:{port}"] = {"Authorization": f"Bearer {created.key}"}
            for role in (Role.ADMIN, Role.AUDITOR):
                created = create_key(session, role=role, ports=(), label=role.value, created_by="test")
                instance.headers[role.value] = {"Authorization": f"Bearer {created.key}"}
    finally:
        database.dispose()


def ingest_manifests(instance: Instance, rows: list[dict[str, str | None]]) -> None:
    """Ingest raw manifest rows into the instance's lake."""
    import polars as pl

    from features.data.ingest import ingest
    from features.data.lake import Lake

    source = instance.home / f"manifests-{len(list(instance.home.glob('manifests-*.csv')))}.csv"
    pl.DataFrame(rows, schema={name: pl.String for name in rows[0]}).write_csv(source)
    summary = ingest(Lake(instance.home / "lake"), "manifests", [source], now=NOW)
    assert summary.quarantined == 0, summary


def build_network(root: Path, specs: dict[str, list[tuple[str, str, str]]], auto_accept: dict[tuple[str, str], list[str]]) -> dict[str, Instance]:
    """Instances named as in ``specs`` (name -> units ``(id, port, role)``), configured as each other's peers.

    ``auto_accept[(instance name, sender unit id)]`` lists the message types that instance accepts
    automatically from that unit.
    """
    instances = {name: Instance(name, units, root / name, free_port()) for name, units in specs.items()}
    public: dict[str, str] = {}
    for instance in instances.values():
        for uid, _, _ in instance.units:
            key = generate_private_key()
            write_private_key(key, instance.home / "keys" / f"{uid}.pem")
            instance.keys[uid] = instance.home / "keys" / f"{uid}.pem"
            public[uid] = public_key_text(key)
    for instance in instances.values():
        others = [o for o in instances.values() if o is not instance]
        text = "retry_base_seconds = 0.2\nretry_max_seconds = 1.0\nsend_timeout_seconds = 2.0\n\n"
        (instance.home / "exchange.toml").write_text(text + _toml_units(instance) + _toml_peers(instance, others, public, auto_accept))
        _init_store(instance)
    return instances


def wait_for(predicate, *, timeout: float = 20.0, every: float = 0.2):  # noqa: ANN001, ANN201
    """Poll ``predicate`` until it returns something truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
