"""The service tests run on one fixed "today", in-process and in the services they start, whatever the machine's date."""

from __future__ import annotations

import subprocess
import sys

from features import clock
from serve.db import utcnow
from serve_helpers import NOW, TODAY, clock_env


def test_service_tests_run_on_the_fixed_today():
    assert clock.today() == TODAY and utcnow().date() == TODAY
    assert NOW <= utcnow() < NOW.replace(hour=NOW.hour + 1)  # anchored at NOW, then running at the real pace


def test_a_service_started_by_a_test_has_the_same_today():
    code = "from features import clock; print(clock.today().isoformat())"
    out = subprocess.run([sys.executable, "-c", code], env={**clock_env(), "PATH": ""}, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == TODAY.isoformat()
