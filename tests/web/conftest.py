"""Fixtures of the browser tests: a real small world, a real uvicorn server on loopback, the system's Chromium.

The world (simulated feeds -> lake -> champion in MLflow) is built by the
service tests' own builder (``tests/serve/conftest.py::build_e2e_world``)
around the tests' fixed "today"; the server runs in a subprocess whose clock
starts at the same instant (``CCP_CLOCK_AT``). Chromium is the Debian package
(``/usr/bin/chromium``; ``make test`` installs it): nothing downloads a browser.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from features.clock import AnchoredClock, use_clock

SERVE_TESTS = Path(__file__).parent.parent / "serve"
for _helpers in (SERVE_TESTS, Path(__file__).parent):  # serve_helpers, web_helpers
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))
_spec = importlib.util.spec_from_file_location("serve_tests_conftest", SERVE_TESTS / "conftest.py")
serve_conftest = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = serve_conftest  # dataclasses look their module up
_spec.loader.exec_module(serve_conftest)

from serve_helpers import NOW, OTHER_PORT, PORT, clock_env, insert_list, sample_list  # noqa: E402
from web_helpers import PASSWORD  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
USERS = {
    "ana": ("officer", (PORT,)),
    "bruno": ("officer", (OTHER_PORT,)),  # locked out by test_wrong_passwords_lock_the_account_and_are_audited
    "bea": ("officer", (OTHER_PORT,)),  # the other port's officer for tests that must sign in whatever ran before
    "carla": ("auditor", ()),
    "lena": ("officer", (PORT,)),
}


@pytest.fixture(autouse=True)
def fixed_today() -> Iterator[AnchoredClock]:
    """The tests' clock starts at the service tests' "now" (the server subprocess gets it as ``CCP_CLOCK_AT``)."""
    with use_clock(AnchoredClock(NOW)) as anchored:
        yield anchored


@pytest.fixture(scope="session")
def web_world(tmp_path_factory):  # noqa: ANN201 - E2EWorld
    with use_clock(AnchoredClock(NOW)):
        return serve_conftest.build_e2e_world(tmp_path_factory.mktemp("web-world"))


@dataclass(frozen=True)
class WebServer:
    """A running service: its base URL, its database URL and a list of another port."""

    url: str
    database_url: str
    other_port_list: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_store(database_url: str, lake_dir: Path) -> str:
    """Migrate the store, create the users and store a list of the other port (a real record); its id."""
    from serve.app import open_store
    from serve.security import Role
    from serve.settings import Settings
    from serve.web.accounts import create_user

    database = open_store(Settings(database_url=database_url, lake_dir=lake_dir))
    try:
        with database.write() as session:
            for name, (role, ports) in USERS.items():
                create_user(session, username=name, password=PASSWORD, role=Role(role), ports=ports, created_by="test")
        return insert_list(database, sample_list(OTHER_PORT))
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def web_server(web_world, tmp_path_factory) -> Iterator[WebServer]:
    """uvicorn serving the real app over the world on 127.0.0.1 (a subprocess, stopped at the end)."""
    root = tmp_path_factory.mktemp("web-server")
    database_url = f"sqlite:///{root / 'ccp.db'}"
    with use_clock(AnchoredClock(NOW)):
        other = _prepare_store(database_url, web_world.lake_dir)
    port = _free_port()
    env = {**os.environ, **clock_env(), "CCP_DATABASE_URL": database_url, "CCP_LAKE_DIR": str(web_world.lake_dir),
           "CCP_MLFLOW_TRACKING_URI": web_world.tracking_uri, "CCP_MODEL_CACHE_DIR": str(root / "model-cache"),
           "CCP_ENGINE_FACTORY": "targeting.lake_engine:engine_from_settings", "CCP_HOST": "127.0.0.1", "CCP_PORT": str(port),
           "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    log = open(root / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "serve.app:app_from_env", "--host", "127.0.0.1",
                                "--port", str(port), "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield WebServer(url, database_url, other)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201 - playwright Browser
    """Chromium for one test module: Playwright's sync API runs an event loop in this thread while it is open,
    so it is closed before another module (one that calls ``asyncio.run``) runs on the same process."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs the Debian package chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, web_server):  # noqa: ANN201 - Callable[[], playwright Page]
    """``new_page()``: a page in a fresh browser context (its own cookies), 1366x900 like a laptop."""
    contexts = []

    def make():  # noqa: ANN202
        context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=web_server.url, locale="en-GB")
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
