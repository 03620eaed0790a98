"""The end-to-end demo: simulate a port world, ingest it, train and promote a champion, then run the
daily loop through the real HTTP service (started and stopped here): a port officer's inspection list with
reasons, outcomes posted back, retraining on them, and an auditor's checks.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
from rich.console import Console
from rich.table import Table

from models.calibration import NOT_RATED, chance_text
from targeting.cli.exchange_demo import prepare_exchange, show_exchange

console = Console(width=170)
PORT = "NLRTM"
EXPORT_PORT = "PECLL"
"""The source port whose export control unit gets a list of departures (a port with export control in the default world)."""


@dataclass(frozen=True)
class DemoConfig:
    workdir: Path
    days: int = 240
    containers_per_day: int = 700
    seed: int = 7
    capacity: int = 15
    mlruns: Path = Path("mlruns")
    start: date = date(2025, 1, 1)
    """First arrival day of the simulated world (the officer's list is for its last day)."""
    write_config: bool = True
    """Point ``CCP_HOME/ccp.toml`` at the demo's stores (unless it is a configuration the demo did not write)."""


DEMO_CONFIG_MARK = "# written by `targeting demo`"


def point_config_at_demo(config: DemoConfig, env: dict[str, str], *, today: date | None = None) -> str:
    """Write ``ccp.toml`` in ``CCP_HOME`` naming the demo's stores, so every command (and ``make serve``) uses them.

    ``today`` (the world's last day, the officer's list day) becomes every command's and the service's clock
    (``clock_at``, 18:00 UTC), since the simulated world lies in the past. A ``ccp.toml`` the demo did not write
    (a real unit's) is left untouched; returns what was done.
    """
    from targeting.config import CONFIG_FILE_NAME, home_directory, write_config_file

    home = home_directory()
    existing = home / CONFIG_FILE_NAME
    if existing.is_file() and DEMO_CONFIG_MARK not in existing.read_text(encoding="utf-8"):
        return f"{existing} was not written by the demo: left as it is (set CCP_HOME or edit it to use the demo's stores)"

    def relative(path: Path) -> str:
        path = path.resolve()
        return str(path.relative_to(home)) if path.is_relative_to(home) else str(path)

    lake = relative(Path(env["CCP_LAKE_DIR"]))
    database = relative(Path(env["CCP_DATABASE_URL"].removeprefix("sqlite:///")))
    mlflow = relative(Path(env["CCP_MLFLOW_TRACKING_URI"].removeprefix("sqlite:///")))
    values = {"lake_dir": lake, "database_url": f"sqlite:///{database}", "mlflow_tracking_uri": f"sqlite:///{mlflow}"}
    if today is not None:
        values["clock_at"] = f"{today.isoformat()}T18:00:00+00:00"
    path = write_config_file(home, values)
    path.write_text(path.read_text(encoding="utf-8").replace("# ccp-targeting configuration", f"{DEMO_CONFIG_MARK}; ccp-targeting configuration", 1), encoding="utf-8")
    return f"wrote {path}: every `targeting` command and `make serve` run from {home} now use the demo's stores"


def _step(title: str) -> None:
    console.rule(f"[bold]{title}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(config: DemoConfig, port: int) -> dict[str, str]:
    work = config.workdir.resolve()
    return {
        **os.environ,
        "CCP_DATABASE_URL": f"sqlite:///{work / 'var' / 'ccp.db'}",
        "CCP_LAKE_DIR": str(work / "lake"),
        "CCP_MLFLOW_TRACKING_URI": f"sqlite:///{config.mlruns.resolve() / 'mlflow.db'}",
        "CCP_HOST": "127.0.0.1",
        "CCP_PORT": str(port),
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
    }


def simulate_and_ingest(config: DemoConfig) -> tuple[Path, dict]:
    """Simulate the world into ``workdir/world`` and ingest its four feeds into ``workdir/lake``."""
    from features.data.ingest import ingest
    from features.data.lake import Lake
    from targeting.sim.run import simulate_to_directory
    from targeting.sim.world import WorldConfig

    world_dir = config.workdir / "world"
    world = WorldConfig(seed=config.seed, start=config.start, days=config.days, containers_per_day=config.containers_per_day)
    with console.status("simulating the port world"):
        summary = simulate_to_directory(world, world_dir)
    console.print(
        f"world: {summary['manifests']:,} manifests, {summary['events']:,} events, {summary['outcomes']:,} historical inspections, "
        f"{summary['alerts']} alerts; base rate {summary['base_rate']:.3%}; {sum(summary['faults'].values())} rows malformed on purpose"
    )
    lake = Lake(config.workdir / "lake")
    end = datetime.combine(world.start + timedelta(days=config.days + 30), datetime.min.time(), tzinfo=UTC)
    table = Table(title="ingest summary")
    for column in ("table", "input rows", "accepted", "unchanged", "quarantined", "top quarantine reason"):
        table.add_column(column)
    for name in ("manifests", "events", "outcomes", "alerts", "pre_export_notifications"):  # notifications: precursor controls
        result = ingest(lake, name, [world_dir / f"{name}.parquet"], now=end)
        top = max(result.reasons.items(), key=lambda kv: kv[1])[0] if result.reasons else "-"
        table.add_row(name, f"{result.input_rows:,}", f"{result.accepted:,}", f"{result.unchanged:,}", f"{result.quarantined:,}", top)
    console.print(table)
    return world_dir, summary


def train_and_promote(world_dir: Path, env: dict[str, str], *, label: str) -> None:
    """Train through the CLI (as a data scientist would), promote if not worse, and print the metric table."""
    _run([sys.executable, "-m", "targeting.cli", "train", "--oracle", str(world_dir / "oracle.parquet"), "--promote"], env, label)


def _run(args: list[str], env: dict[str, str], label: str) -> None:
    console.print(f"[dim]$ targeting {' '.join(args[3:])}[/dim]")
    completed = subprocess.run(args, env=env, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"{label} failed with exit code {completed.returncode}")


def _settings_for(env: dict[str, str]):  # noqa: ANN202 - serve.settings.Settings
    from serve.settings import Settings

    return Settings(database_url=env["CCP_DATABASE_URL"], lake_dir=Path(env["CCP_LAKE_DIR"]), mlflow_tracking_uri=env["CCP_MLFLOW_TRACKING_URI"])


def _initialise_stores(env: dict[str, str]) -> None:
    """Create the operational store and the MLflow store the demo uses (commands refuse missing stores)."""
    from targeting.cli.stores import initialise_stores

    initialise_stores(_settings_for(env))


def _keys(env: dict[str, str]) -> dict[str, str]:
    from serve.app import open_store
    from serve.security import Role
    from serve.store.keys import create_key

    settings = _settings_for(env)
    database = open_store(settings)
    try:
        with database.write() as session:
            keys = {
                "officer": create_key(session, role=Role.OFFICER, ports=(PORT,), label="PCU Rotterdam", created_by="demo").key,
                "other_officer": create_key(session, role=Role.OFFICER, ports=("BEANR",), label="PCU Antwerp", created_by="demo").key,
                "export_officer": create_key(session, role=Role.OFFICER, ports=(EXPORT_PORT,), label="PCU Callao", created_by="demo").key,
                "data_scientist": create_key(session, role=Role.DATA_SCIENTIST, label="targeting team", created_by="demo").key,
                "auditor": create_key(session, role=Role.AUDITOR, label="inspectorate", created_by="demo").key,
            }
    finally:
        database.dispose()
    return keys


DEMO_USERS = (("rotterdam", "officer", (PORT,), "en"), ("antwerp", "officer", ("BEANR",), "fr"), ("analyst", "data_scientist", (), "en"),
              ("auditor", "auditor", (), "es"))
"""People who sign in to the web pages: username, role, ports, language."""


def _web_users(env: dict[str, str]) -> dict[str, str]:
    """Create the demo's web users with fresh random passwords; ``username -> password`` (printed once)."""
    import secrets

    from serve.app import open_store
    from serve.security import Role
    from serve.web.accounts import create_user

    database = open_store(_settings_for(env))
    passwords = {}
    try:
        with database.write() as session:
            for username, role, ports, language in DEMO_USERS:
                passwords[username] = secrets.token_urlsafe(9)
                create_user(session, username=username, password=passwords[username], role=Role(role), ports=ports, language=language,
                            created_by="demo")
    finally:
        database.dispose()
    return passwords


def print_web_users(passwords: dict[str, str]) -> None:
    """The demo accounts, for the README's last Quickstart step."""
    table = Table(title="web accounts (passwords shown once; `targeting users reset-password NAME` sets a new one)")
    for column in ("username", "password", "role", "ports", "language"):
        table.add_column(column, no_wrap=True)
    for username, role, ports, language in DEMO_USERS:
        table.add_row(username, passwords[username], role, ", ".join(ports) or "all", language)
    console.print(table)


class Server:
    """The real service in a subprocess (``targeting serve``) on a free loopback port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{env['CCP_PORT']}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        log = open(Path(self.env["CCP_LAKE_DIR"]).parent / "server.log", "w")
        self.process = subprocess.Popen([sys.executable, "-m", "targeting.cli", "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the service exited early; see {log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit("the service did not become ready in 90 s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _client(server: Server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=120)


def latest_export_day(lake_dir: Path, port: str, until: date, *, at_least: int = 10) -> date:
    """The latest day up to ``until`` with at least ``at_least`` departures from ``port`` in the lake (else the busiest day).

    The simulated world only holds voyages that arrive within it, so departures thin out over its last
    weeks: the export list is for the most recent day with real traffic at the source port.
    """
    from features.candidates import Direction, candidates_for_days
    from features.data.lake import Lake

    lake = Lake(lake_dir)
    days = (
        candidates_for_days(lake.scan("manifests"), lake.scan("events"), direction=Direction.EXPORT, ports=[port], end=until + timedelta(days=1))
        .group_by(pl.col("decision_at").dt.date().alias("day"))
        .len()
        .collect()
    )
    if days.height == 0:
        return until
    busy = days.filter(pl.col("len") >= at_least)
    return busy["day"].max() if busy.height else days.sort(["len", "day"], descending=True)["day"][0]


def print_list(body: dict) -> None:
    direction = body.get("direction", "IMPORT")
    table = Table(title=f"inspection list {body['id']} - {body['port']} {direction} {body['list_date']} (model v{body['model_version']}, rules v{body['ruleset_version']})")
    for column in ("rank", "container", "source", "risk band", "chance of a finding", "reasons"):
        table.add_column(column, overflow="fold")
    for item in body["items"]:
        table.add_row(
            str(item["rank"]),
            item["container_number"],
            item["source"],
            (item.get("risk_band") or NOT_RATED).replace("_", " ").lower(),
            chance_text(item.get("risk_probability")) or "not rated",
            "\n".join(f"- {r}" for r in item["reasons"]),
        )
    console.print(table)
    console.print(f"{body['candidate_count']} candidates; {body['deferred_count']} deferred (reported with scores); seed {body['seed']}")
    for warning in body.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")


def add_officer_pick(server: Server, key: str, body: dict) -> dict:
    """The officer adds the best-scored deferred candidate to the list, with a reason; returns it as a list item."""
    with _client(server, key) as client:
        deferred = client.get(f"/v1/inspection-lists/{body['id']}/deferred", params={"limit": 1})
        deferred.raise_for_status()
        pick = deferred.json()["items"][0]
        amendment = {"action": "ADD", "manifest_id": pick["manifest_id"], "exam_type": "PHYSICAL", "reason": "Seal number at the gate differs from the manifest"}
        response = client.post(f"/v1/inspection-lists/{body['id']}/amendments", json=amendment)
        response.raise_for_status()
        added = response.json()
    console.print(f"the officer adds {added['container_number']} (deferred) with a reason: {added['reason']!r}; the served list itself is unchanged")
    return {"rank": len(body["items"]) + 1, "manifest_id": added["manifest_id"], "container_number": added["container_number"],
            "exam_type": added["exam_type"], "source": added["source"]}


def post_outcomes(server: Server, key: str, body: dict, items: list[dict], oracle: pl.DataFrame) -> int:
    """Record the exams of ``items`` (the list's and the officer's): the simulator's truth decides what an inspection finds."""
    truth = {r["manifest_id"]: r for r in oracle.filter(pl.col("manifest_id").is_in([i["manifest_id"] for i in items])).iter_rows(named=True)}
    list_day = date.fromisoformat(body["list_date"])
    posted, seizures = 0, 0
    with _client(server, key) as client:
        for item in items:
            row = truth.get(item["manifest_id"], {})
            found = bool(row.get("illicit"))
            outcome = {
                "manifest_id": item["manifest_id"],
                "container_number": item["container_number"],
                "port": body["port"],
                "inspected_at": datetime.combine(list_day, datetime.min.time(), tzinfo=UTC).replace(hour=14).isoformat(),
                "exam_type": item.get("exam_type") or "PHYSICAL",
                "result": "SEIZURE" if found else "NO_FINDING",
                "seizure_category": row.get("category") if found else None,
                "quantity_kg": float(row.get("quantity_kg") or 0.0) if found else None,
                "concealment_method": row.get("concealment") if found else None,
                "seal_status": "INTACT",
                "examiner": f"EX-{body['port']}-001",
                "selection_source": item["source"],
                "direction": body.get("direction") or "IMPORT",
            }
            key_header = {"Idempotency-Key": f"demo-{body['id']}-{item['rank']}"}
            response = client.post("/v1/inspection-outcomes", json=outcome, headers=key_header)
            response.raise_for_status()
            replay = client.post("/v1/inspection-outcomes", json=outcome, headers=key_header)
            assert replay.json() == response.json(), "idempotent replay must return the stored response"
            posted += 1
            seizures += int(found)
    console.print(f"posted {posted} outcomes ({seizures} seizures); each POST replayed once with the same Idempotency-Key: same response, stored once")
    with _client(server, key) as client:
        day = {"since": list_day.isoformat(), "until": (list_day + timedelta(days=1)).isoformat()}
        report = client.get(f"/v1/ports/{body['port']}/hit-rates", params=day).json()
    console.print("hit rate per selection source that day: " + ", ".join(
        f"{r['selection_source']} {r['seizures']}/{r['inspections']}" for r in report["sources"]
    ))
    return posted


def run_demo(config: DemoConfig) -> None:
    """The whole loop; see the module docstring."""
    for sub in ("world", "lake", "var"):
        shutil.rmtree(config.workdir / sub, ignore_errors=True)
    config.workdir.mkdir(parents=True, exist_ok=True)
    config.mlruns.mkdir(parents=True, exist_ok=True)
    env = _env(config, _free_port())

    _step("1. simulate a port world and ingest it (bad rows are quarantined with their reasons)")
    world_dir, summary = simulate_and_ingest(config)
    _initialise_stores(env)
    oracle = pl.read_parquet(world_dir / "oracle.parquet")
    list_day = date.fromisoformat(summary["config"]["start"]) + timedelta(days=config.days - 1)

    _step("2. data scientist: train, register and promote a champion (metrics beside baselines)")
    train_and_promote(world_dir, env, label="training")

    _step("3. start the service and issue API keys (machines) and web accounts (people)")
    exchange = prepare_exchange(config.workdir, env)  # the service is also unit PCU-NLRTM of an exchange network
    keys = _keys(env)
    passwords = _web_users(env)
    with Server(env) as server:
        console.print(f"service ready at {server.url}")
        _step(f"4. port officer ({PORT}): the daily inspection list for {list_day}")
        with _client(server, keys["officer"]) as officer:
            response = officer.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": list_day.isoformat(), "capacity": config.capacity, "exploration_share": 0.2})
            response.raise_for_status()
            body = response.json()
            print_list(body)
            fetched = officer.get(f"/v1/inspection-lists/{body['id']}")
            csv = officer.get(f"/v1/inspection-lists/{body['id']}/export.csv")
            console.print(f"fetched the stored list: HTTP {fetched.status_code}; CSV export: {len(csv.text.splitlines()) - 1} rows")
        export_day = latest_export_day(Path(env["CCP_LAKE_DIR"]), EXPORT_PORT, list_day)
        _step(f"4b. export control unit ({EXPORT_PORT}): the list of containers loading on {export_day}")
        with _client(server, keys["export_officer"]) as exporter:
            ask = {"date": export_day.isoformat(), "capacity": 5, "exploration_share": 0.2, "direction": "EXPORT"}
            response = exporter.post(f"/v1/ports/{EXPORT_PORT}/inspection-lists", json=ask)
            response.raise_for_status()
            print_list(response.json())
        _step(f"4c. intelligence exchange: PCU-ECGYE (another instance) sends an alert and a pre-arrival notice to {PORT}")
        show_exchange(exchange, server.url, keys["officer"], Path(env["CCP_LAKE_DIR"]), list_day - timedelta(days=1), console)
        with _client(server, keys["other_officer"]) as other:
            console.print(f"an officer of BEANR asking for this {PORT} list gets HTTP {other.get(f'/v1/inspection-lists/' + body['id']).status_code} (no data)")
        officer_pick = add_officer_pick(server, keys["officer"], body)

        _step("5. the unit records its exam outcomes (idempotent POSTs)")
        post_outcomes(server, keys["officer"], body, [*body["items"], officer_pick], oracle)

        _step("6. data scientist: retrain on the new outcomes and promote if not worse")
        train_and_promote(world_dir, env, label="retraining")
        with _client(server, keys["data_scientist"]) as scientist:
            info = scientist.post("/v1/models/reload").json()
            console.print(f"service reloaded the champion: version {info.get('version')} (sha256 {str(info.get('artifact_sha256'))[:16]}…)")

        _step("7. auditor: audit trail, chain verification and replay of the served list")
        with _client(server, keys["auditor"]) as auditor:
            events = auditor.get("/v1/audit/events", params={"limit": 200}).json()
            verify = auditor.get("/v1/audit/verify").json()
            items = events.get("items", events if isinstance(events, list) else [])
            console.print(f"{len(items)} audit events visible; chain verification: {verify}")
            denied = auditor.post(f"/v1/ports/{PORT}/inspection-lists", json={"date": list_day.isoformat(), "capacity": 5}).status_code
            console.print(f"an auditor trying to create a list gets HTTP {denied} (read-only)")
    _run([sys.executable, "-m", "targeting.cli", "audit", "replay", body["id"]], env, "replay")
    console.rule("[bold green]demo complete")
    if config.write_config:
        console.print(point_config_at_demo(config, env, today=list_day))
    console.print(f"Service data in {config.workdir}/var, lake in {config.workdir}/lake.")
    print_web_users(passwords)
    console.print("[bold]Next: run `make serve`, open http://127.0.0.1:8000/ in a browser and sign in with one of the accounts above.[/bold]")
