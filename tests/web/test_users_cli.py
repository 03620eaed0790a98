"""``targeting users``: people are created, listed, disabled and given new passwords on the command line, passwords from standard input."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from targeting.cli import _register, app

_register()


@pytest.fixture(scope="module")
def initialised(tmp_path_factory):  # noqa: ANN201 - Path
    """One ``CCP_HOME`` with its stores created (``targeting init``), shared by the module's tests (each uses its own usernames)."""
    home = tmp_path_factory.mktemp("users-home")
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, home)
        assert CliRunner().invoke(app, ["init"]).exit_code == 0
    return home


def _point_at(mp: pytest.MonkeyPatch, home) -> None:  # noqa: ANN001 - Path
    mp.chdir(home)
    for name in ("CCP_DATABASE_URL", "CCP_LAKE_DIR", "CCP_MLFLOW_TRACKING_URI"):
        mp.delenv(name, raising=False)
    mp.setenv("CCP_HOME", str(home))


@pytest.fixture
def home(initialised, monkeypatch):  # noqa: ANN201 - Path
    _point_at(monkeypatch, initialised)
    return initialised


def run(*args: str, stdin: str | None = None):  # noqa: ANN201 - click Result
    return CliRunner().invoke(app, ["users", *args], input=stdin)


def test_users_are_created_from_a_password_on_standard_input_and_listed(home) -> None:
    created = run("create", "--username", "ana", "--role", "officer", "--port", "nlrtm", "--language", "pt", stdin="correct horse battery\n")
    again = run("create", "--username", "ana", "--role", "officer", "--port", "NLRTM", stdin="correct horse battery\n")
    assert again.exit_code == 2 and "'ana' already exists" in again.stderr
    assert created.exit_code == 0, created.output
    assert "created user ana (officer, NLRTM)" in created.stdout
    listed = run("list")
    assert listed.exit_code == 0 and "ana officer NLRTM pt active" in " ".join(listed.stdout.split())


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--username", "bo", "--role", "officer", "--port", "NLRTM"], "correct horse battery\n", "username: 3-12 characters"),
        (["--username", "eva", "--role", "officer", "--port", "NLRTM"], "short\n", "password: at least 10 characters"),
        (["--username", "eva", "--role", "officer"], "correct horse battery\n", "an officer user needs at least one --port"),
        (["--username", "eva", "--role", "auditor", "--port", "NLRTM"], "correct horse battery\n", "is not port-scoped"),
        (["--username", "eva", "--role", "boss"], "correct horse battery\n", "unknown role 'boss'"),
    ],
)
def test_bad_users_are_refused_with_the_reason(home, args, stdin, message) -> None:
    result = run("create", *args, stdin=stdin)
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_disabling_and_resetting_a_password_end_the_users_sessions(home) -> None:
    from serve.app import open_store
    from serve.settings import Settings
    from serve.web.sessions import find_session, open_session

    assert run("create", "--username", "rui", "--role", "auditor", stdin="correct horse battery\n").exit_code == 0
    database = open_store(Settings())
    try:
        with database.write() as session:
            token, _ = open_session(session, "rui")
        assert run("reset-password", "rui", stdin="another long password\n").exit_code == 0
        with database.read() as session:
            assert find_session(session, token) is None
        with database.write() as session:
            token, _ = open_session(session, "rui")
        assert run("disable", "rui").exit_code == 0
        with database.read() as session:
            assert find_session(session, token) is None
        assert "rui auditor - en disabled" in " ".join(run("list").stdout.split())
        assert run("disable", "nobody").exit_code == 2
    finally:
        database.dispose()


def test_the_readmes_user_commands_work_as_written(home) -> None:
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"^```console\n(.*?)^```", readme, flags=re.M | re.S) if "targeting users create" in b)
    env = {**os.environ, "NEW_PASSWORD": "a new long password", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for line in block.strip().splitlines():
        done = subprocess.run(["bash", "-c", line], cwd=home, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
    assert "maria officer NLRTM pt active" in " ".join(run("list").stdout.split())


def test_account_changes_are_sealed_so_audit_verify_passes_and_names_a_user_edited_in_the_database(tmp_path, monkeypatch) -> None:
    import sqlite3

    _point_at(monkeypatch, tmp_path)
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    assert run("create", "--username", "rui", "--role", "officer", "--port", "NLRTM", stdin="correct horse battery\n").exit_code == 0
    assert run("create", "--username", "lea", "--role", "auditor", stdin="correct horse battery\n").exit_code == 0
    assert run("reset-password", "rui", stdin="another long password\n").exit_code == 0
    assert run("disable", "lea").exit_code == 0
    verified = CliRunner().invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output

    with sqlite3.connect(tmp_path / "var" / "ccp.db") as db:
        db.execute("UPDATE web_users SET role = 'admin', ports = '[]' WHERE username = 'rui'")
    tampered = CliRunner().invoke(app, ["audit", "verify"])
    assert tampered.exit_code != 0
    assert "web_user:rui was modified after it was recorded" in " ".join(tampered.output.split())
