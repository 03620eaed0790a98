"""Units without a network link: the same signed messages as JSON Lines files, through the real command line."""

from __future__ import annotations

import json
from datetime import timedelta

from exchange_helpers import NOW, build_network

from serve.app import open_store
from serve.settings import Settings
from serve.store.exchange import IN, create_outgoing, get_message
from targeting.exchange.messages import parse_message
from targeting.exchange.network import load_network


def cli(instance, *args: str):  # noqa: ANN001, ANN201 - click.testing.Result
    """``targeting exchange ARGS`` in this process with the instance's configuration (the real command)."""
    from typer.testing import CliRunner

    from targeting.cli import _register, app

    _register()
    env = {k: v for k, v in instance.env().items() if k.startswith("CCP_")}
    return CliRunner().invoke(app, ["exchange", *args], env=env, catch_exceptions=False)


def test_exported_file_is_imported_once_verified_and_a_tampered_or_replayed_line_is_refused(tmp_path):
    net = build_network(tmp_path / "net", {"A": [("PCU-ECGYE", "ECGYE", "EXPORT")], "B": [("PCU-NLRTM", "NLRTM", "IMPORT")]}, {})
    a, b = net["A"], net["B"]
    message = parse_message({
        "schema_version": "1.0", "message_id": "PCU-ECGYE:FILE-0001", "type": "ALERT", "sender": "PCU-ECGYE", "recipients": ["PCU-NLRTM"],
        "created_at": NOW.isoformat(), "valid_from": NOW.isoformat(), "valid_to": (NOW + timedelta(days=9)).isoformat(), "tlp": "AMBER",
        "body": {"kind": "CONTAINER", "value": "CSQU3054383", "severity": 4, "reason": "Tip-off"},
    })
    database = open_store(Settings(home=a.home, database_url=a.database_url, lake_dir=a.home / "lake"))
    with database.write() as session:
        create_outgoing(session, message, load_network(a.home / "exchange.toml"), actor="test")
    database.dispose()

    exported = cli(a, "export", str(tmp_path / "out.jsonl"))
    assert exported.exit_code == 0, exported.output
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["message"]["message_id"] == "PCU-ECGYE:FILE-0001"
    tampered = json.loads(lines[0])
    tampered["message"]["body"]["severity"] = 1
    (tmp_path / "tampered.jsonl").write_text(json.dumps(tampered) + "\n")

    first = cli(b, "import", str(tmp_path / "out.jsonl"))
    assert first.exit_code == 0 and "1 received, 0 refused" in first.output, first.output
    again = cli(b, "import", str(tmp_path / "out.jsonl"))
    assert again.exit_code == 1 and "refused (replay)" in again.output
    bad = cli(b, "import", str(tmp_path / "tampered.jsonl"))
    assert bad.exit_code == 1 and "refused (bad_signature)" in bad.output
    database = open_store(Settings(home=b.home, database_url=b.database_url, lake_dir=b.home / "lake"))
    with database.read() as session:
        assert get_message(session, "PCU-ECGYE:FILE-0001", IN).status == "RECEIVED"
    database.dispose()
