"""The README's commands work as written right after ``make demo``.

A small demo state is built in a temporary ``CCP_HOME`` with the demo's own building blocks (the simulated
world ingested into ``demo/lake``, ``targeting init``, two trainings as the demo does, and the ``ccp.toml``
the demo writes), then every command line of the README's code blocks is run, in README order, from that
directory: ``targeting ...`` lines through the real command-line application, ``curl ...`` lines through
bash and curl against the real service started as ``make serve`` starts it (``targeting serve``). The
README is parsed here, so a README that drifts from the code fails this test.

Substitutions, and only these: the service listens on a free port instead of 8000; the README's example
manifest and container ids (from the full-size demo world) are replaced by ones from the list this test's
officer is served; ``$OFFICER_KEY``, ``$DS_KEY``, ``$AUDITOR_KEY``, ``$ADMIN_KEY`` are the keys the README's
``targeting keys create`` lines print, ``$LIST_ID`` is the list its first POST creates and ``$NEW_PASSWORD`` a
password of the reader's choosing. Other shell lines (``printf ... | targeting ...``) run through bash with the
installed ``targeting``. ``make`` and
``mlflow ui`` lines are not run (the suite itself, a long-running server). A line whose comment says
"exit 1" may exit 1.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import string
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from features import clock
from features.clock import use_clock
from targeting.cli import _register, app

_register()
README = Path(__file__).resolve().parents[2] / "README.md"
KEY_VARIABLES = {"officer": "OFFICER_KEY", "data_scientist": "DS_KEY", "auditor": "AUDITOR_KEY", "admin": "ADMIN_KEY"}
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Command:
    text: str
    block: int

    @property
    def program(self) -> str:
        return self.text.split(maxsplit=1)[0]


STORE_COMMANDS = frozenset({"ingest", "train", "models", "compare", "promote", "keys", "audit", "rules", "watchlist", "outcomes"})
"""Commands that must name the stores they use on stderr."""
SHELL_WORDS = frozenset({"targeting", "curl", "make", "mlflow", "printf", "export"})
"""First words of the README's command lines; a code block with any other line (a diagram) is not a shell block."""


def _incomplete(text: str) -> bool:
    """Whether a shell command continues on the next line (trailing backslash or an open quote)."""
    if text.endswith("\\"):
        return True
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return True
    return False


def readme_commands(text: str) -> list[Command]:
    """Commands of the README's shell code blocks (continuation lines and multi-line quoted bodies joined)."""
    commands: list[Command] = []
    for number, (language, body) in enumerate(re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.M | re.S)):
        if language not in ("", "sh", "bash", "shell", "console"):
            continue
        block, pending = [], ""
        for line in body.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = f"{pending}\n{line}" if pending else line
            if not _incomplete(pending):
                block.append(Command(pending, number))
                pending = ""
        if block and not pending and all(c.program in SHELL_WORDS for c in block):
            commands.extend(block)
    return commands


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CCP_HOME right after a (small) ``make demo``: demo/world, demo/lake, demo/var/ccp.db with the demo's web accounts,
    mlruns with versions 1 and 2, ccp.toml."""
    from targeting.cli.demo_run import DemoConfig, _env, _initialise_stores, _web_users, point_config_at_demo, simulate_and_ingest

    home = tmp_path_factory.mktemp("readme-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)
        mp.setenv("CCP_HOME", str(home))
        for name in ("CCP_LAKE_DIR", "CCP_DATABASE_URL", "CCP_MLFLOW_TRACKING_URI"):
            mp.delenv(name, raising=False)
        config = DemoConfig(workdir=Path("demo"), days=38, containers_per_day=700, start=date(2025, 7, 22))
        simulate_and_ingest(config)
        env = _env(config, _free_port())
        _initialise_stores(env)
        _web_users(env)  # the demo's web accounts
        point_config_at_demo(config, env, today=date(2025, 8, 28))  # the world's last day, the list's day
        for _ in range(2):  # the demo trains twice: versions 1 and 2
            with use_clock(clock.current()):  # ccp.toml's clock_at applies inside the command only
                trained = CliRunner().invoke(app, ["train", "--oracle", "demo/world/oracle.parquet", "--promote", "--threads", "1"])
            assert trained.exit_code == 0, trained.output
    return home


class Service:
    """``targeting serve`` (what ``make serve`` runs) on the demo's configuration, in a subprocess."""

    def __init__(self, home: Path) -> None:
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCP_")}
        env |= {"CCP_HOME": str(home), "CCP_PORT": str(self.port), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}  # no CCP_CLOCK_AT: ccp.toml's
        self.log = open(home / "serve.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "targeting.cli", "serve"], cwd=home, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (home / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("the service did not become ready in 90 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class ReadmeRunner:
    """Runs README commands in order from ``home``, keeping the keys and list id the README's variables name."""

    def __init__(self, home: Path, service: Service, examples: dict[str, str]) -> None:
        self.home, self.service, self.examples = home, service, examples
        self.variables: dict[str, str] = {"NEW_PASSWORD": "correct horse battery staple"}  # the README's user-chosen password
        self.ran: list[str] = []
        self.mapping: dict[str, str] = {}

    def run(self, command: Command) -> None:
        text = command.text.replace("127.0.0.1:8000", f"127.0.0.1:{self.service.port}")
        for example, real in self._ids().items():
            text = text.replace(example, real)
        if command.program == "targeting":
            self._targeting(text)
        else:
            self._shell(text)
        self.ran.append(command.text.splitlines()[0])

    def _targeting(self, text: str) -> None:
        args = shlex.split(string.Template(text).safe_substitute({**os.environ, **self.variables}), comments=True)[1:]
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(self.home)
            for name, value in self.variables.items():
                mp.setenv(name, value)
            with use_clock(clock.current()):  # ccp.toml's clock_at applies inside the command only
                result = CliRunner().invoke(app, args)
        allowed = (0, 1) if "exit 1" in text else (0,)
        assert result.exit_code in allowed, f"{text}\n{result.output}"
        headers = [line for line in result.stderr.splitlines() if line.startswith("using ")]
        assert all(line.endswith(f"[config {self.home / 'ccp.toml'}]") for line in headers), result.stderr
        if args[0] in STORE_COMMANDS:
            assert headers, f"{text}: names no store\n{result.stderr}"
        if args[:2] == ["keys", "create"]:
            role = args[args.index("--role") + 1]
            self.variables[KEY_VARIABLES[role]] = result.stdout.strip().splitlines()[-1]

    def _shell(self, text: str) -> None:
        """``curl`` (failing on HTTP errors) and other shell lines through bash, ``targeting`` being the installed command."""
        script = 'curl() { command curl --fail-with-body --max-time 120 "$@"; }\n' + text
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCP_")} | {"CCP_HOME": str(self.home), **self.variables}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        done = subprocess.run(["bash", "-c", script], cwd=self.home, env=env, capture_output=True, text=True, timeout=180)
        allowed = (0, 1) if "exit 1" in text else (0,)
        assert done.returncode in allowed, f"{text}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        if "LIST_ID" not in self.variables and "/inspection-lists" in text and "-X POST" in text:
            self.variables["LIST_ID"] = json.loads(done.stdout)["id"]

    def _ids(self) -> dict[str, str]:
        """The README's example ids mapped onto the served list (empty until the list exists)."""
        if self.mapping or "LIST_ID" not in self.variables:
            return self.mapping
        headers = {"Authorization": f"Bearer {self.variables['OFFICER_KEY']}"}
        base = f"http://127.0.0.1:{self.service.port}/v1/inspection-lists/{self.variables['LIST_ID']}"
        items = httpx.get(base, headers=headers, timeout=60).json()["items"]
        deferred = httpx.get(f"{base}/deferred", params={"limit": 1}, headers=headers, timeout=60).json()["items"][0]
        item = next((i for i in items if i["source"] == "MODEL"), items[0])
        real = {
            "outcome_manifest": item["manifest_id"],
            "outcome_container": item["container_number"],
            "deferred_manifest": deferred["manifest_id"],
            "risk_container": items[0]["container_number"],
        }
        self.mapping = {self.examples[name]: value for name, value in real.items()}
        self.mapping['"selection_source": "MODEL"'] = f'"selection_source": "{item["source"]}"'
        return self.mapping


def example_ids(commands: list[Command]) -> dict[str, str]:
    """The example ids the README's service commands name (they come from a full-size demo world)."""
    found: dict[str, str] = {}
    for command in commands:
        text = command.text
        if risk := re.search(r"/v1/containers/(\w+)/risk", text):
            found["risk_container"] = risk.group(1)
        if "/amendments" in text and '"action": "ADD"' in text:
            found["deferred_manifest"] = re.search(r'"manifest_id": "(\w+)"', text).group(1)
        if "/v1/inspection-outcomes" in text and "-X POST" in text:
            found["outcome_manifest"] = re.search(r'"manifest_id": "(\w+)"', text).group(1)
            found["outcome_container"] = re.search(r'"container_number": "(\w+)"', text).group(1)
    return found


def test_readme_commands_are_found_in_its_code_blocks() -> None:
    commands = [c.text.splitlines()[0] for c in readme_commands(README.read_text(encoding="utf-8"))]
    for expected in ("targeting keys create --role officer", "targeting audit verify", "targeting compare 3 4", "targeting models", "curl -s -X POST http://127.0.0.1:8000/v1/inspection-outcomes"):
        assert any(line.startswith(expected) for line in commands), expected


def test_every_readme_command_works_as_written_right_after_the_demo(demo_home: Path) -> None:
    commands = [c for c in readme_commands(README.read_text(encoding="utf-8")) if c.program not in ("make", "mlflow")]
    service = Service(demo_home)
    examples = example_ids(commands)
    assert set(examples) == {"risk_container", "deferred_manifest", "outcome_manifest", "outcome_container"}, examples
    runner = ReadmeRunner(demo_home, service, examples)
    try:
        for command in commands:
            runner.run(command)
    finally:
        service.stop()
    assert len(runner.ran) == len(commands) and len(commands) >= 30
    assert set(KEY_VARIABLES.values()) <= set(runner.variables) and "LIST_ID" in runner.variables


def test_the_readme_mlflow_ui_line_names_the_demo_store(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serve.settings import Settings

    monkeypatch.setenv("CCP_HOME", str(demo_home))
    lines = [c.text for c in readme_commands(README.read_text(encoding="utf-8")) if c.program == "mlflow"]
    assert lines, "the README shows how auditors browse runs"
    for line in lines:
        uri = re.search(r"--backend-store-uri (\S+)", line).group(1)
        assert f"sqlite:///{(demo_home / uri.removeprefix('sqlite:///')).resolve()}" == Settings().mlflow_tracking_uri


def test_the_makefile_serves_the_configured_stores() -> None:
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^serve:.*\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    assert recipe.strip() == "$(VENV)/bin/targeting serve"
    assert shutil.which("curl"), "the README's service examples use curl"
