"""The demo's exchange step: an export unit in another instance sends one alert and one pre-arrival notice to the
demo's import unit, which accepts them; the notice's container then heads its list for the arrival day.

:func:`prepare_exchange` writes both units' keys and exchange configurations (before the demo's service
starts: it points the service at its configuration); :func:`show_exchange` starts the partner instance
(``uvicorn`` on a free loopback port, its own store), sends the two messages and shows them arriving.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, UTC
from pathlib import Path

import httpx
import polars as pl
from rich.console import Console

from features import clock
from features.data.lake import Lake

IMPORT_UNIT, EXPORT_UNIT = "PCU-NLRTM", "PCU-ECGYE"


@dataclass(frozen=True)
class ExchangeDemo:
    root: Path
    partner_port: int
    partner_env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _toml(unit: tuple[str, str, str], peer: tuple[str, str, str], public_key: str, inbox: str, auto_accept: str) -> str:
    return (
        "retry_base_seconds = 0.5\nretry_max_seconds = 5.0\n\n"
        f'[[units]]\nid = "{unit[0]}"\nport = "{unit[1]}"\nrole = "{unit[2]}"\nkey_file = "{unit[0]}.pem"\n\n'
        f'[[peers]]\nid = "{peer[0]}"\nport = "{peer[1]}"\nrole = "{peer[2]}"\npublic_key = "{public_key}"\ninbox_url = "{inbox}"\nauto_accept = [{auto_accept}]\n'
    )


def prepare_exchange(workdir: Path, env: dict[str, str]) -> ExchangeDemo:
    """Keys and configurations of the two units; sets ``CCP_EXCHANGE_CONFIG`` in ``env`` (the demo's service is the import unit)."""
    from serve.app import open_store
    from serve.security import Role
    from serve.settings import Settings
    from serve.store.keys import create_key
    from targeting.exchange.signing import generate_private_key, public_key_text, write_private_key

    root = (workdir / "exchange").resolve()
    for sub in ("import", "export"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for old in (root / sub).glob("*"):
            old.unlink()
    keys = {IMPORT_UNIT: generate_private_key(), EXPORT_UNIT: generate_private_key()}
    write_private_key(keys[IMPORT_UNIT], root / "import" / f"{IMPORT_UNIT}.pem")
    write_private_key(keys[EXPORT_UNIT], root / "export" / f"{EXPORT_UNIT}.pem")
    partner_port = _free_port()
    importer, exporter = (IMPORT_UNIT, "NLRTM", "IMPORT"), (EXPORT_UNIT, "ECGYE", "EXPORT")
    (root / "import" / "exchange.toml").write_text(
        _toml(importer, exporter, public_key_text(keys[EXPORT_UNIT]), f"http://127.0.0.1:{partner_port}/v1/exchange/inbox", '"PRE_ARRIVAL_NOTICE"'))
    (root / "export" / "exchange.toml").write_text(
        _toml(exporter, importer, public_key_text(keys[IMPORT_UNIT]), f"http://127.0.0.1:{env['CCP_PORT']}/v1/exchange/inbox", ""))
    env["CCP_EXCHANGE_CONFIG"] = str(root / "import" / "exchange.toml")
    env["CCP_EXCHANGE_POLL_SECONDS"] = "0.2"
    partner_env = {k: v for k, v in env.items() if not k.startswith("CCP_")} | {
        "CCP_HOME": str(root / "export"), "CCP_DATABASE_URL": f"sqlite:///{root / 'export' / 'ccp.db'}", "CCP_LAKE_DIR": str(root / "export" / "lake"),
        "CCP_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'export' / 'mlflow.db'}", "CCP_EXCHANGE_CONFIG": str(root / "export" / "exchange.toml"),
        "CCP_EXCHANGE_POLL_SECONDS": "0.2",
    }
    database = open_store(Settings(home=root / "export", database_url=partner_env["CCP_DATABASE_URL"], lake_dir=root / "export" / "lake"))
    try:
        with database.write() as session:
            key = create_key(session, role=Role.OFFICER, ports=("ECGYE",), label="PCU Guayaquil (partner instance)", created_by="demo").key
    finally:
        database.dispose()
    partner_env["DEMO_OFFICER_KEY"] = key
    return ExchangeDemo(root, partner_port, partner_env)


def _wait(predicate, timeout: float = 30.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise SystemExit("the exchange demo step timed out")


def _arrival(lake_dir: Path, day: date) -> dict:
    """A container arriving at NLRTM on ``day`` (the demo world's), for the notice and the alert."""
    manifests = Lake(lake_dir).scan("manifests").filter(  # the lake's committed rows (Delta table), not every file on disk
        (pl.col("port_of_discharge") == "NLRTM") & (pl.col("eta").dt.date() == day)
    ).sort("manifest_id").collect()
    return manifests.row(manifests.height // 2, named=True)


def show_exchange(demo: ExchangeDemo, url: str, officer_key: str, lake_dir: Path, day: date, console: Console) -> None:
    """Start the partner instance, send an alert and a notice to the demo's unit, accept the alert, show the list of ``day``.

    ``day`` must not have a list yet (the demo passes the day before its list day).
    """
    log = open(demo.root / "export" / "service.log", "w")  # noqa: SIM115 - closed below
    args = [sys.executable, "-m", "uvicorn", "--factory", "serve.app:app_from_env", "--host", "127.0.0.1", "--port", str(demo.partner_port), "--log-level", "warning"]
    partner = subprocess.Popen(args, env={k: v for k, v in demo.partner_env.items() if k != "DEMO_OFFICER_KEY"}, stdout=log, stderr=subprocess.STDOUT)
    try:
        partner_url = f"http://127.0.0.1:{demo.partner_port}"
        _wait(lambda: _ok(partner_url + "/healthz"))
        exporter = httpx.Client(base_url=partner_url, headers={"Authorization": f"Bearer {demo.partner_env['DEMO_OFFICER_KEY']}"}, timeout=30, trust_env=False)
        importer = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {officer_key}"}, timeout=120, trust_env=False)
        arriving = _arrival(lake_dir, day)
        start = datetime.combine(day, dtime(0), tzinfo=UTC)
        until = (max(start, clock.now()) + timedelta(days=60)).isoformat()  # both services run on this process's clock
        alert = {"type": "ALERT", "sender": EXPORT_UNIT, "recipients": [IMPORT_UNIT], "tlp": "AMBER", "valid_from": (min(start, clock.now()) - timedelta(days=1)).isoformat(),
                 "valid_to": until, "body": {"kind": "PARTY", "party": {"role": "CONSIGNEE", "name": _spelling_variant(arriving["consignee_name"])},
                                              "severity": 4, "reason": "Consignee named in a seizure report at Guayaquil"}}
        notice = {"type": "PRE_ARRIVAL_NOTICE", "sender": EXPORT_UNIT, "recipients": [IMPORT_UNIT], "tlp": "AMBER", "valid_to": until,
                  "body": {"container_number": arriving["container_number"], "master_bl": arriving["master_bl"], "vessel_imo": arriving["vessel_imo"],
                           "voyage": arriving["voyage"], "eta": arriving["eta"].isoformat(), "port_of_loading": arriving["port_of_loading"],
                           "port_of_discharge": "NLRTM", "reasons": ["Scanned only at origin: dense anomaly behind the doors"], "severity": 5, "action_at_origin": "SCANNED"}}
        sent = [exporter.post("/v1/exchange/sent", json=m).raise_for_status().json()["message"] for m in (alert, notice)]
        for message in sent:
            console.print(f"{EXPORT_UNIT} (partner instance) sent {message['type']} {message['message_id']} to {IMPORT_UNIT}, signed with Ed25519")
        received = [_wait(lambda m=m: _json(importer, f"/v1/exchange/received/{m['message_id']}")) for m in sent]
        accepted = importer.post(f"/v1/exchange/received/{sent[0]['message_id']}/accept").raise_for_status().json()
        console.print(f"{IMPORT_UNIT} received both (signature verified); the analyst accepted the alert ({accepted['status']}); "
                      f"the notice was {received[1]['status'].lower()} by the peer policy")
        body = importer.post("/v1/ports/NLRTM/inspection-lists", json={"date": day.isoformat(), "capacity": 10, "exploration_share": 0.1})
        body = body.raise_for_status().json()
        console.print(f"{IMPORT_UNIT}'s list for {day} (the notice's arrival day), items from {EXPORT_UNIT}'s intelligence:")
        for item in body["items"]:
            for reason in (r for r in item["reasons"] if EXPORT_UNIT in r):
                console.print(f"  #{item['rank']} {item['container_number']} {item['source']}: {reason}", markup=False)
    finally:
        partner.terminate()
        partner.wait(timeout=15)
        log.close()


def _spelling_variant(name: str) -> str:
    """How another unit may spell the same trader: legal form written out or dotted, upper case, a comma."""
    for short, long in ((" BV", " B.V."), (" LTD", " LIMITED"), (" SA", " S.A."), (" GMBH", " G.m.b.H."), (" INC", " INCORPORATED")):
        if name.upper().endswith(short):
            return name.upper()[: -len(short)] + "," + long
    return name.upper().replace(" ", ", ", 1)


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _json(client: httpx.Client, path: str) -> dict | None:
    response = client.get(path)
    return response.json() if response.status_code == 200 else None


__all__ = ["ExchangeDemo", "prepare_exchange", "show_exchange"]
